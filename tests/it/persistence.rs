//! The real `abacus` binary on a real database: tasks survive `kill -9`,
//! and readiness follows the database going away and coming back.

use crate::common::{abacus_serve, free_port};
use serde_json::{json, Value};
use std::process::{Child, Stdio};
use std::time::Duration;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start(port: u16, args: &[&str]) -> Proc {
    let child = abacus_serve(port)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    let client = abacus::client::JsonRpcClient::new(&format!("http://127.0.0.1:{port}/"));
    for _ in 0..200 {
        if client
            .get(&format!("http://127.0.0.1:{port}/health"))
            .await
            .is_ok()
        {
            return proc;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("abacus did not start on port {port}");
}

async fn completed_tasks(client: &abacus::client::JsonRpcClient, n: usize) -> Vec<Value> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let q = format!("factorial {}", 20 + i);
        let r = client
            .call(
                "SendMessage",
                abacus::client::JsonRpcClient::text_params(&q),
            )
            .await
            .unwrap();
        let task = r["result"]["task"].clone();
        assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
        tasks.push(task);
    }
    tasks
}

async fn survives_kill_9(store_args: &[&str]) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let client = abacus::client::JsonRpcClient::new(&url);
    let mut server = start(port, store_args).await;
    let tasks = completed_tasks(&client, 12).await;
    // SIGKILL: no shutdown hook runs.
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    drop(server);

    let _server = start(port, store_args).await;
    let client = abacus::client::JsonRpcClient::new(&url);
    for before in &tasks {
        let id = before["id"].as_str().unwrap();
        let r = client.call("GetTask", json!({"id": id})).await.unwrap();
        let after = &r["result"];
        assert_eq!(after["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
        assert_eq!(after["artifacts"], before["artifacts"], "artifacts of {id}");
        assert_eq!(after["history"], before["history"], "history of {id}");
    }
}

#[tokio::test]
async fn sqlite_tasks_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    survives_kill_9(&["--store", "sqlite", "--data-dir", &data]).await;
}

#[tokio::test]
async fn postgres_tasks_survive_kill_9() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("DATABASE_URL not set: skipping the PostgreSQL restart test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    survives_kill_9(&[
        "--store",
        "postgres",
        "--database-url",
        &url,
        "--data-dir",
        &data,
    ])
    .await;
}

/// A TCP proxy to PostgreSQL that can be cut and restored.
struct Proxy {
    port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
    upstream: String,
}

impl Proxy {
    fn start(port: u16, upstream: String) -> Self {
        let mut p = Proxy {
            port,
            task: None,
            upstream,
        };
        p.up();
        p
    }

    fn up(&mut self) {
        let (port, upstream) = (self.port, self.upstream.clone());
        self.task = Some(tokio::spawn(async move {
            let listener = loop {
                match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                    Ok(l) => break l,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                conns.spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        }));
    }

    /// Closes the listener and every proxied connection.
    fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn readiness(port: u16) -> u16 {
    let client = abacus::client::JsonRpcClient::new(&format!("http://127.0.0.1:{port}/"));
    match client
        .get(&format!("http://127.0.0.1:{port}/health/detailed"))
        .await
    {
        Ok(_) => 200,
        Err(abacus::client::ClientError::Status(s, _)) => s.as_u16(),
        Err(e) => panic!("readiness probe failed: {e}"),
    }
}

async fn wait_for(port: u16, want: u16) -> bool {
    for _ in 0..60 {
        if readiness(port).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[tokio::test]
async fn readiness_follows_the_database() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("DATABASE_URL not set: skipping the readiness test");
        return;
    };
    // postgres://user:pass@host:port/db -> route it through the proxy
    let (head, tail) = url.rsplit_once('@').unwrap();
    let (hostport, db) = tail.split_once('/').unwrap();
    let proxy_port = free_port();
    let mut proxy = Proxy::start(proxy_port, hostport.to_string());
    let proxied = format!("{head}@127.0.0.1:{proxy_port}/{db}");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = start(
        port,
        &[
            "--store",
            "postgres",
            "--database-url",
            &proxied,
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
    )
    .await;
    assert!(wait_for(port, 200).await, "not ready with the database up");
    proxy.down();
    assert!(
        wait_for(port, 503).await,
        "still ready with the database gone"
    );
    proxy.up();
    assert!(
        wait_for(port, 200).await,
        "not ready again after the database came back"
    );
    proxy.down();
}
