//! A store that cannot write while the server runs. Every request gets a
//! stored answer or a clear error, streams end with the error, and every
//! acknowledged task is there once the store writes again.
//!
//! * A full disk: the data directory on a small tmpfs, filled (needs root
//!   for the mount).
//! * A read-only database: its files made immutable under load (needs root
//!   and a filesystem that honours the flag for open files, such as ext4).
//!
//! Skipped with a notice where that is not possible.

use crate::common::{fill, serve_math, task_state, Tmpfs};
use crate::outage::{send_task, stream_task, under_load, Outcome, CALL_TIMEOUT};
use abacus::client::JsonRpcClient as Client;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn a_full_disk_gives_clear_errors_and_loses_nothing_acknowledged() {
    let Some(fs) = Tmpfs::mount("4m") else {
        eprintln!("skipped: mounting a tmpfs is not permitted here");
        return;
    };
    let (url, stop, handle) = serve_math(
        |config| {
            config.store_kind = abacus::store::StoreKind::Sqlite;
            config.data_dir = fs.path().join("data");
        },
        None,
    )
    .await;
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
        match tokio::time::timeout(CALL_TIMEOUT, stream_task(&client, 1000 + n)).await {
            Ok(Outcome::Stored(id)) => acknowledged.push(id),
            Ok(Outcome::StoreError) => stream_errors += 1,
            Ok(Outcome::Other(end)) => panic!("stream {n} on a full disk: {end}"),
            Err(_) => panic!("stream {n} on a full disk hung"),
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

fn chattr(flag: &str, paths: &[PathBuf]) -> bool {
    Command::new("chattr")
        .arg(flag)
        .args(paths)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Paths made immutable (`chattr +i`, which binds root too) on demand, and
/// mutable again on drop: the temporary directory must stay removable.
struct Immutable {
    paths: Vec<PathBuf>,
}

impl Immutable {
    fn set(&self) {
        assert!(chattr("+i", &self.paths), "chattr +i {:?}", self.paths);
    }

    fn clear(&self) {
        assert!(chattr("-i", &self.paths), "chattr -i {:?}", self.paths);
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = chattr("-i", &self.paths);
    }
}

/// Whether making a file immutable in `dir` refuses writes through a
/// descriptor opened before (ext4 does; tmpfs does not).
fn immutable_stops_open_writers(dir: &Path) -> bool {
    use std::io::Write;
    let probe = dir.join("probe");
    let Ok(mut file) = std::fs::File::create(&probe) else {
        return false;
    };
    let guard = Immutable {
        paths: vec![probe.clone()],
    };
    let refused = chattr("+i", &guard.paths) && file.write_all(b"x").is_err();
    drop(guard);
    let _ = std::fs::remove_file(&probe);
    refused
}

/// A remount read-only would be closer to a failing disk, but the kernel
/// refuses it (EBUSY) while SQLite holds its files open for writing, so the
/// database file, its WAL and the data directory are made immutable instead:
/// every write fails (EPERM) while reads go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_gives_clear_errors_and_recovers() {
    // The build's disk rather than the temporary directory, often a tmpfs.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    if !immutable_stops_open_writers(dir.path()) {
        eprintln!(
            "skipped: needs root, chattr and a filesystem whose immutable flag stops open writers"
        );
        return;
    }
    let data = dir.path().join("data");
    let (base, stop, handle) = serve_math(
        |config| {
            config.store_kind = abacus::store::StoreKind::Sqlite;
            config.data_dir = data.clone();
            // The build disk's usage must not decide readiness here.
            config.health_disk_max = 0.0;
        },
        None,
    )
    .await;
    let db = data.join("abacus.db");
    // Not the `-shm` index: SQLite maps it, and a write fault on a mapped
    // immutable file is a SIGBUS rather than an error.
    let files = Immutable {
        paths: vec![db.with_extension("db-wal"), db, data],
    };

    let report = under_load(
        &base,
        Duration::from_secs(4),
        || files.set(),
        || files.clear(),
    )
    .await;
    report.print("read-only sqlite");
    report.assert_sound();

    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}
