//! SQLite backend tests.

use super::super::conformance::{self, task, Fixture};
use super::*;
use crate::store::{TaskOwner, TaskStore};
use rusqlite::Connection;
use std::io::{BufRead, BufReader};

async fn fixture() -> Option<Fixture> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteTaskStore::open(dir.path().join("abacus.db"))
        .await
        .expect("open sqlite store");
    Some(Fixture::new(store, dir))
}

conformance::task_store_conformance!(fixture());
conformance::task_log_conformance!(fixture());

#[tokio::test]
async fn migrations_are_recorded_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("abacus.db");
    drop(SqliteTaskStore::open(&path).await.expect("open"));
    drop(SqliteTaskStore::open(&path).await.expect("open again"));
    let conn = Connection::open(&path).expect("open raw");
    assert_eq!(
        versions(&conn),
        [
            ("tasks".to_string(), 1),
            ("tasks".to_string(), 2),
            ("tasks".to_string(), 3),
            ("tasks".to_string(), 4)
        ]
    );
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
}

/// Every recorded (component, version), in order.
fn versions(conn: &Connection) -> Vec<(String, i64)> {
    conn.prepare("SELECT component, version FROM schema_versions ORDER BY component, version")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("versions")
}

/// A file written by a build that kept one version list for every
/// component: opening it records the versions per component and runs
/// nothing again (which would fail: the tables exist).
#[tokio::test]
async fn legacy_version_list_is_adopted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("abacus.db");
    let old = task("old", "ctx", a2a::TaskState::Completed, 1);
    {
        let conn = Connection::open(&path).expect("create");
        conn.execute_batch(&Sqlite::statements().task_schema)
            .expect("task schema");
        conn.execute_batch(
            "CREATE TABLE schema_migrations (
                version INTEGER PRIMARY KEY, applied_us INTEGER NOT NULL
            );
            INSERT INTO schema_migrations VALUES (1, 0), (2, 0), (3, 0);",
        )
        .expect("legacy ledger");
        conn.execute(
            "INSERT INTO tasks VALUES (?1, ?2, 'TASK_STATE_COMPLETED', ?3, 0, ?4)",
            rusqlite::params![
                old.id,
                old.context_id,
                crate::store::status_key(old.status.timestamp),
                crate::store::encode_task(&old).expect("encode")
            ],
        )
        .expect("old task");
    }
    let store = SqliteTaskStore::open(&path)
        .await
        .expect("open legacy file");
    assert_eq!(
        store
            .get("old", &TaskOwner::anonymous())
            .await
            .expect("get"),
        Some(old)
    );
    drop(store);
    let conn = Connection::open(&path).expect("open raw");
    assert_eq!(
        versions(&conn),
        [
            ("tasks".to_string(), 1),
            ("tasks".to_string(), 2),
            ("tasks".to_string(), 3),
            ("tasks".to_string(), 4)
        ]
    );
}

/// The heartbeat goes through the writer and keeps one row.
#[tokio::test]
async fn heartbeat_writes_one_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("abacus.db");
    let store = SqliteTaskStore::open(&path).await.expect("open");
    store.heartbeat().await.expect("first beat");
    store.heartbeat().await.expect("second beat");
    let (rows, beat): (i64, i64) = Connection::open(&path)
        .and_then(|c| {
            c.query_row("SELECT count(*), max(beat_us) FROM heartbeat", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })
        .expect("read heartbeat");
    assert_eq!(rows, 1);
    assert!(beat > 0, "{beat}");
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("abacus.db");
    drop(SqliteTaskStore::open(&path).await.expect("open"));
    Connection::open(&path)
        .and_then(|c| c.execute("INSERT INTO schema_versions VALUES ('tasks', 999, 0)", []))
        .expect("bump version");
    let err = SqliteTaskStore::open(&path).await.expect_err("must refuse");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[tokio::test]
async fn not_a_database_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("abacus.db");
    std::fs::write(
        &path,
        b"this is not a sqlite file, just some bytes...........",
    )
    .expect("write");
    assert!(SqliteTaskStore::open(&path).await.is_err());
}

#[tokio::test]
async fn missing_directory_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no/such/dir/abacus.db");
    assert!(SqliteTaskStore::open(&path).await.is_err());
}

#[tokio::test]
async fn open_creates_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = super::super::StoreConfig {
        kind: super::super::StoreKind::Sqlite,
        data_dir: dir.path().join("nested/data"),
        ..Default::default()
    };
    let stores = super::super::open(&config).await.expect("open");
    assert_eq!(stores.tasks.kind(), "sqlite");
    assert_eq!(stores.backend.kind(), "sqlite");
    assert!(config.sqlite_path().exists());
}

pub(crate) const KILL_ENV: &str = "ABACUS_STORE_KILL9_DB";

/// Child half of [`saves_survive_kill_9`]: saves tasks forever from 8
/// concurrent tasks, printing `saved <id>` after each `save` returned.
/// Does nothing unless started by that test.
#[test]
fn kill9_child() {
    let Ok(path) = std::env::var(KILL_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = SqliteTaskStore::open(&path).await.expect("open");
        let mut workers = Vec::new();
        for w in 0..8 {
            let store = store.clone();
            workers.push(tokio::spawn(async move {
                // Bounded in case the parent never kills us.
                for i in 0..20_000 {
                    let t = task(&format!("k{w}-{i}"), "kill", a2a::TaskState::Working, i);
                    store.save(&t, &TaskOwner::anonymous()).await.expect("save");
                    println!("saved {}", t.id);
                }
            }));
        }
        for w in workers {
            let _ = w.await;
        }
    });
}

/// Runs the test `child` of `module` (the caller's `module_path!()`) in a
/// child process with `KILL_ENV` set to `path`, reads the ids it prints
/// after `prefix` (one per acknowledged write) until 300 have come,
/// SIGKILLs it and returns every id it had acknowledged.
pub(crate) async fn acknowledged_before_kill_9(
    module: &str,
    child: &str,
    path: &std::path::Path,
    prefix: &'static str,
) -> Vec<String> {
    let test_name = match module.split_once("::") {
        Some((_crate, rest)) => format!("{rest}::{child}"),
        None => child.to_string(),
    };
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            test_name.as_str(),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL_ENV, path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    tokio::task::spawn_blocking(move || {
        let mut acked = Vec::new();
        let mut lines = BufReader::new(stdout).lines();
        while acked.len() < 300 {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(id) = line.strip_prefix(prefix) {
                        acked.push(id.to_string());
                    }
                }
                _ => break,
            }
        }
        // SIGKILL mid-stream, then collect what it had printed already.
        child.kill().expect("kill");
        for line in lines.map_while(Result::ok) {
            if let Some(id) = line.strip_prefix(prefix) {
                acked.push(id.to_string());
            }
        }
        let _ = child.wait();
        acked
    })
    .await
    .expect("reader")
}

/// Every save acknowledged before `kill -9` is in the file afterwards.
#[tokio::test]
async fn saves_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("abacus.db");
    let acked = acknowledged_before_kill_9(module_path!(), "kill9_child", &path, "saved ").await;
    assert!(
        acked.len() >= 300,
        "child acknowledged only {}",
        acked.len()
    );
    let store = SqliteTaskStore::open(&path).await.expect("reopen");
    for id in &acked {
        assert!(
            store
                .get(id, &TaskOwner::anonymous())
                .await
                .expect("get")
                .is_some(),
            "acknowledged task {id} lost"
        );
    }
}
