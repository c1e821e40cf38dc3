//! SQLite push store tests.

use super::*;
use crate::store::push::conformance::{self, config, notification, PushFixture};
use crate::store::sqlite::tests::{acknowledged_before_kill_9, KILL_ENV};
use crate::store::{Backend, SqliteSync, StoreConfig, StoreKind};
use std::collections::HashMap;
use std::path::Path;

async fn open_at(path: &Path) -> (SqlitePushStore, SqliteDatabase) {
    let db = SqliteDatabase::open(path, SqliteSync::Normal)
        .await
        .expect("open database");
    let store = SqlitePushStore::open(&db).await.expect("open push store");
    (store, db)
}

async fn fixture() -> Option<PushFixture> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _db) = open_at(&dir.path().join("abacus.db")).await;
    Some(PushFixture::new(store, dir))
}

conformance::push_store_conformance!(fixture());

/// The recorded versions of the push schema.
fn versions(path: &Path) -> Vec<i64> {
    Connection::open(path)
        .and_then(|conn| {
            conn.prepare(
                "SELECT version FROM schema_versions WHERE component = 'push' ORDER BY version",
            )?
            .query_map([], |r| r.get(0))?
            .collect()
        })
        .expect("versions")
}

#[tokio::test]
async fn outbox_and_configs_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("abacus.db");
    let me = TaskOwner::anonymous();
    let hook = config("task-1", "hook", "https://h.example");
    let batch = [notification("e1", "hook", 1), notification("e2", "hook", 2)];
    {
        let (store, _db) = open_at(&path).await;
        store.put_config(&me, &hook).await.expect("put");
        store.enqueue(&batch).await.expect("enqueue");
    }
    let (store, _db) = open_at(&path).await;
    assert_eq!(store.pending(0, 10).await.expect("pending"), batch.to_vec());
    assert_eq!(
        store.list_configs(&me, "task-1").await.expect("list"),
        vec![hook]
    );
    assert_eq!(versions(&path), [1, 2, 3]);
}

/// A statement failing half-way through a batch (here a trigger) leaves
/// nothing of the batch, while the writes sharing its transaction commit.
#[tokio::test]
async fn a_failing_batch_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, db) = open_at(&dir.path().join("abacus.db")).await;
    db.write(|conn| {
        conn.execute_batch(
            "CREATE TRIGGER push_boom BEFORE INSERT ON push_outbox
             WHEN new.event_id = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .map_err(|e| StoreError::sqlite("trigger", e))
    })
    .await
    .expect("trigger");
    let bad = [
        notification("e1", "hook", 1),
        notification("boom", "hook", 2),
    ];
    let good = [notification("e3", "hook", 3)];
    let (failed, other) = tokio::join!(store.enqueue(&bad), store.enqueue(&good));
    assert!(failed.is_err());
    other.expect("the other batch");
    let left: Vec<_> = store.pending(0, 10).await.expect("pending");
    assert_eq!(left, good.to_vec());
}

#[tokio::test]
async fn open_follows_the_sqlite_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StoreConfig {
        kind: StoreKind::Sqlite,
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let stores = crate::store::open(&config).await.expect("open");
    assert_eq!(stores.push.kind(), "sqlite");
    assert!(matches!(stores.backend, Backend::Sqlite(_)));
    let again = super::super::open(&stores.backend).await.expect("push");
    stores
        .push
        .enqueue(&[notification("e1", "hook", 1)])
        .await
        .expect("enqueue");
    // Both handles see the same tables.
    assert_eq!(again.depth().await.expect("depth"), 1);
    assert_eq!(versions(&config.sqlite_path()), [1, 2, 3]);
}

/// Child half of [`enqueued_notifications_survive_kill_9`]: enqueues
/// events (each to two configs) forever from 8 concurrent tasks, printing
/// `enqueued <event id>` after each `enqueue` returned. Does nothing unless
/// started by that test.
#[test]
fn outbox_kill9_child() {
    let Ok(path) = std::env::var(KILL_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (store, _db) = open_at(Path::new(&path)).await;
        let mut workers = Vec::new();
        for w in 0..8_i64 {
            let store = store.clone();
            workers.push(tokio::spawn(async move {
                // Bounded in case the parent never kills us.
                for i in 0..20_000 {
                    let event = format!("k{w}-{i}");
                    let seq = w * 100_000 + i;
                    let batch = [
                        notification(&event, "a", seq),
                        notification(&event, "b", seq),
                    ];
                    store.enqueue(&batch).await.expect("enqueue");
                    println!("enqueued {event}");
                }
            }));
        }
        for w in workers {
            let _ = w.await;
        }
    });
}

/// Every enqueue acknowledged before `kill -9` is in the file afterwards,
/// and no batch is there in part.
#[tokio::test]
async fn enqueued_notifications_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("abacus.db");
    let acked =
        acknowledged_before_kill_9(module_path!(), "outbox_kill9_child", &path, "enqueued ").await;
    assert!(
        acked.len() >= 300,
        "child acknowledged only {}",
        acked.len()
    );
    let (store, _db) = open_at(&path).await;
    let mut configs: HashMap<String, Vec<String>> = HashMap::new();
    for n in store.pending(i64::MIN, usize::MAX).await.expect("pending") {
        configs
            .entry(n.event_id.clone())
            .or_default()
            .push(n.config_id().to_owned());
    }
    for id in &acked {
        assert!(configs.contains_key(id), "acknowledged event {id} lost");
    }
    for (id, got) in &configs {
        assert_eq!(got, &["a", "b"], "event {id} stored in part");
    }
}
