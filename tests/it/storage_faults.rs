//! A store that cannot write: the data directory on a small tmpfs, filled
//! while the server runs. Every request gets a stored answer or a clear
//! error, streams end with the error, and every acknowledged task is there
//! once space is freed. Needs root (mount); skipped with a notice otherwise.

use crate::common::{fill, task_state, Tmpfs};
use abacus::client::Client;
use abacus::math::{Limits, MathAgent};
use abacus::protocol::server_error::STORE_UNAVAILABLE;
use futures_util::StreamExt;
use serde_json::json;
use std::time::Duration;

/// What one SendMessage of a task question came to.
enum Outcome {
    /// A completed task: the server says it is stored.
    Stored(String),
    /// The store's clear error.
    StoreError,
    /// Anything else (a lie or a wrong error).
    Other(String),
}

async fn send_task(client: &Client, n: usize) -> Outcome {
    let reply = client
        .call(
            "SendMessage",
            Client::text_params(&format!("fibonacci {}", 1000 + n)),
        )
        .await;
    let Ok(reply) = reply else {
        return Outcome::Other(format!("{reply:?}"));
    };
    if reply["error"]["code"] == STORE_UNAVAILABLE {
        assert_eq!(reply["error"]["data"][0]["reason"], "STORE_UNAVAILABLE");
        return Outcome::StoreError;
    }
    match task_state(&reply).as_str() {
        "TASK_STATE_COMPLETED" => {
            Outcome::Stored(reply["result"]["task"]["id"].as_str().unwrap().to_string())
        }
        _ => Outcome::Other(reply.to_string()),
    }
}

#[tokio::test]
async fn a_full_disk_gives_clear_errors_and_loses_nothing_acknowledged() {
    let Some(fs) = Tmpfs::mount("4m") else {
        eprintln!("skipped: mounting a tmpfs is not permitted here");
        return;
    };
    let (listener, mut config) = crate::common::bound_memory_config().await;
    config.store_kind = abacus::store::StoreKind::Sqlite;
    config.data_dir = fs.path().join("data");
    let url = format!("http://127.0.0.1:{}/", config.port);
    let server =
        abacus::Server::new(MathAgent::new(Limits::default()), MathAgent::card()).config(config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run_on(listener, async move {
        let _ = stopped.await;
    }));
    let client = Client::new(&url);
    // Up and storing.
    let mut acknowledged = Vec::new();
    match send_task(&client, 0).await {
        Outcome::Stored(id) => acknowledged.push(id),
        _ => panic!("the server does not store tasks on an empty disk"),
    }

    let filler = fill(fs.path());
    let (mut sent, mut errors) = (0, 0);
    for n in 1..=40 {
        sent += 1;
        match tokio::time::timeout(Duration::from_secs(10), send_task(&client, n)).await {
            Ok(Outcome::Stored(id)) => acknowledged.push(id),
            Ok(Outcome::StoreError) => errors += 1,
            Ok(Outcome::Other(reply)) => panic!("request {n} on a full disk: {reply}"),
            Err(_) => panic!("request {n} on a full disk hung"),
        }
    }
    assert!(errors > 0, "a full disk never failed a write ({sent} sent)");

    // A stream on a full disk ends with the store's error as its last event.
    let mut stream_errors = 0;
    for n in 0..5 {
        let params = Client::text_params(&format!("fibonacci {}", 2000 + n));
        let mut events = client.stream("SendStreamingMessage", params).await.unwrap();
        let mut last = serde_json::Value::Null;
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(ev) = events.next().await {
                last = ev.unwrap();
            }
        })
        .await;
        assert!(drained.is_ok(), "stream {n} on a full disk hung");
        if last["error"]["code"] == STORE_UNAVAILABLE {
            stream_errors += 1;
        } else {
            let state = &last["result"]["statusUpdate"]["status"]["state"];
            assert_eq!(
                state, "TASK_STATE_COMPLETED",
                "stream {n} ended with {last}"
            );
            let id = last["result"]["statusUpdate"]["taskId"].as_str().unwrap();
            acknowledged.push(id.to_string());
        }
    }

    // Space again: service resumes without a restart, and nothing
    // acknowledged is lost.
    std::fs::remove_file(filler).unwrap();
    let mut resumed = false;
    for n in 100..140 {
        if let Outcome::Stored(id) = send_task(&client, n).await {
            acknowledged.push(id);
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(resumed, "the server did not recover after space was freed");
    let mut lost = 0;
    for id in &acknowledged {
        let r = client.call("GetTask", json!({"id": id})).await.unwrap();
        if task_state(&r) != "TASK_STATE_COMPLETED" {
            lost += 1;
            eprintln!("acknowledged task {id} lost: {r}");
        }
    }
    eprintln!(
        "full disk: sent {sent} + 5 streams, acknowledged {}, clear errors {errors} + {stream_errors} streams, lost {lost}",
        acknowledged.len()
    );
    assert_eq!(lost, 0);
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}
