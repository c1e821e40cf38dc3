//! Readiness against a real full disk: a server whose data directory is a
//! small tmpfs, filled until ENOSPC and freed again.

use crate::common::{fill, get, Tmpfs};
use abacus::agent::{Agent, RequestContext, TaskUpdater};
use abacus::card::CardBuilder;
use abacus::protocol::types::{A2AError, Part};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Echo;

#[async_trait::async_trait]
impl Agent for Echo {
    async fn execute(&self, _: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        up.reply(up.agent_message(vec![Part::text("ok")])).await
    }
}

async fn readiness(url: &str) -> (u16, Value) {
    let (status, body) = get(url).await.expect("GET /health/detailed");
    let report = serde_json::from_str(&body).expect("a JSON report");
    (status, report)
}

/// Polls until `/health/detailed` answers `want`; that report and how long.
async fn wait_for(url: &str, want: u16) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let (status, report) = readiness(url).await;
        if status == want {
            return (report, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no {want} within 30 s, last {status}: {report}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_full_data_directory_makes_the_server_unready_until_freed() {
    let Some(tmpfs) = Tmpfs::mount("2m") else {
        eprintln!("skipped: mounting a tmpfs is not permitted here");
        return;
    };
    let data_dir: PathBuf = tmpfs.path().join("data");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = abacus::config::Config {
        port: addr.port(),
        store_kind: abacus::store::StoreKind::Sqlite,
        data_dir: data_dir.clone(),
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server =
        abacus::Server::new(Echo, CardBuilder::new("echo", "answers ok").build()).config(config);
    let handle = tokio::spawn(server.run_on(listener, async move {
        let _ = rx.await;
    }));
    let url = format!("http://{addr}/health/detailed");

    let (report, _) = wait_for(&url, 200).await;
    let disk = &report["checks"]["system_resources"]["details"]["disk"];
    let canonical = std::fs::canonicalize(&data_dir).expect("canonicalize");
    assert_eq!(disk["path"], serde_json::json!(canonical), "{report}");
    assert_eq!(
        disk["total_bytes"],
        2 << 20,
        "the tmpfs is measured: {report}"
    );
    assert_eq!(report["checks"]["database"]["healthy"], true, "{report}");

    let filled = Instant::now();
    let filler = fill(tmpfs.path());
    let written = std::fs::metadata(&filler).expect("filler").len();
    let (report, to_503) = wait_for(&url, 503).await;
    let checks = &report["checks"];
    assert_eq!(checks["system_resources"]["healthy"], false, "{report}");
    assert!(
        checks["system_resources"]["status"]
            .as_str()
            .is_some_and(|s| s.contains("disk usage")),
        "{report}"
    );
    // The heartbeat hits the full disk at its next write (at most 5 s on).
    let (report, database_failed) = loop {
        let (status, report) = readiness(&url).await;
        assert_eq!(status, 503, "{report}");
        if report["checks"]["database"]["healthy"] == false {
            break (report, filled.elapsed());
        }
        assert!(
            filled.elapsed() < Duration::from_secs(20),
            "the heartbeat kept succeeding on a full disk: {report}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let store_status = report["checks"]["database"]["status"].to_string();

    std::fs::remove_file(&filler).expect("free the space");
    let (report, to_200) = wait_for(&url, 200).await;
    assert_eq!(report["checks"]["database"]["healthy"], true, "{report}");
    println!(
        "filled {written} bytes; 503 after {to_503:?} (disk), database failing after \
         {database_failed:?} ({store_status}); 200 again {to_200:?} after freeing"
    );

    let _ = tx.send(());
    handle.await.unwrap().unwrap();
}
