//! Behaviour every task store must show, run by each backend's tests
//! through [`task_store_conformance!`].

use super::{ListQuery, StoreError, TaskOwner, TaskPage, TaskStore};
use crate::protocol::Principal;
use a2a::{Artifact, Message, Part, Role, Task, TaskState, TaskStatus};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A store under test plus whatever must live as long as it (temp dir,
/// database schema).
pub struct Fixture {
    pub store: Arc<dyn TaskStore>,
    _guard: Box<dyn Any + Send>,
}

impl Fixture {
    pub fn new(store: impl TaskStore, guard: impl Any + Send) -> Self {
        Self {
            store: Arc::new(store),
            _guard: Box::new(guard),
        }
    }
}

/// Generates one `#[tokio::test]` per conformance check; `$fixture` is an
/// expression yielding `Option<Fixture>` (`None` skips, e.g. no database).
macro_rules! task_store_conformance {
    ($fixture:expr) => {
        #[tokio::test]
        async fn conformance_round_trip() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::round_trip(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn conformance_owners_are_kept_apart() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::owners_are_kept_apart(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn conformance_upsert_replaces() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::upsert_replaces(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn conformance_list_filters() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::list_filters(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn conformance_pagination() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::pagination(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn conformance_invalid_page_token() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::invalid_page_token(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn conformance_concurrent_saves() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::concurrent_saves(f.store.clone()).await;
            }
        }

        #[tokio::test]
        async fn conformance_ping() {
            if let Some(f) = $fixture.await {
                f.store.ping().await.expect("ping");
                f.store.heartbeat().await.expect("heartbeat");
                assert!(!f.store.kind().is_empty());
            }
        }
    };
}
pub(crate) use task_store_conformance;

/// A timestamp `secs` seconds (plus some nanoseconds, to check precision)
/// after a fixed instant.
pub fn ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 123_456_789)
        .single()
        .expect("valid timestamp")
}

/// A plain task with a status timestamp `secs` after a fixed instant.
pub fn task(id: &str, context: &str, state: TaskState, secs: i64) -> Task {
    Task {
        id: id.to_string(),
        context_id: context.to_string(),
        status: TaskStatus {
            state,
            message: None,
            timestamp: Some(ts(secs)),
        },
        artifacts: None,
        history: None,
        metadata: None,
    }
}

fn rich_task() -> Task {
    let mut part_meta = HashMap::new();
    part_meta.insert("k".to_string(), json!({"nested": [1, 2.5, null, "x"]}));
    let mut data = Part::data(json!({"expr": "2+2", "value": 4, "exact": "1/3"}));
    data.metadata = Some(part_meta);
    let mut file = Part::url("https://example.invalid/a.png");
    file.filename = Some("a.png".into());
    file.media_type = Some("image/png".into());
    let user = Message {
        message_id: "m1".into(),
        context_id: Some("ctx-rich".into()),
        task_id: Some("rich".into()),
        role: Role::User,
        parts: vec![Part::text("what is 2 + 2? ünïcödé ✓"), file],
        metadata: None,
        extensions: None,
        reference_task_ids: None,
    };
    let agent = Message {
        message_id: "m2".into(),
        context_id: Some("ctx-rich".into()),
        task_id: Some("rich".into()),
        role: Role::Agent,
        parts: vec![data, Part::raw(vec![0, 1, 2, 254, 255])],
        metadata: None,
        extensions: None,
        reference_task_ids: None,
    };
    let mut meta = HashMap::new();
    meta.insert(
        "numbers".to_string(),
        json!([0, -1, 1.5, 1e-7, 12345678901234i64, u64::MAX, 0.1]),
    );
    meta.insert("nul".to_string(), json!("a\u{0}b"));
    meta.insert("empty".to_string(), json!({}));
    Task {
        id: "rich".into(),
        context_id: "ctx-rich".into(),
        status: TaskStatus {
            state: TaskState::Completed,
            message: Some(agent.clone()),
            timestamp: Some(ts(42)),
        },
        artifacts: Some(vec![Artifact {
            artifact_id: "a1".into(),
            name: Some("answer".into()),
            description: Some("the result".into()),
            parts: vec![Part::text("4")],
            metadata: Some(meta.clone()),
            extensions: None,
        }]),
        history: Some(vec![user, agent]),
        metadata: Some(meta),
    }
}

pub async fn round_trip(store: &dyn TaskStore) {
    let t = rich_task();
    store.save(&t, &TaskOwner::anonymous()).await.expect("save");
    assert_eq!(
        store
            .get(&t.id, &TaskOwner::anonymous())
            .await
            .expect("get"),
        Some(t.clone())
    );
    assert_eq!(
        store
            .get("no-such-task", &TaskOwner::anonymous())
            .await
            .expect("get missing"),
        None
    );
    let mut bare = task("bare", "ctx-bare", TaskState::Submitted, 0);
    bare.status.timestamp = None;
    store
        .save(&bare, &TaskOwner::anonymous())
        .await
        .expect("save bare");
    assert_eq!(
        store
            .get("bare", &TaskOwner::anonymous())
            .await
            .expect("get bare"),
        Some(bare)
    );
}

/// A task is seen, listed and replaced only by its owner (principal and
/// tenant); to everyone else it does not exist.
pub async fn owners_are_kept_apart(store: &dyn TaskStore) {
    let alice = TaskOwner::new(&Principal::new("alice"), None);
    let bob = TaskOwner::new(&Principal::new("bob"), None);
    let alice_acme = TaskOwner::new(&Principal::new("alice"), Some("acme"));
    let mut t = task("own-a", "ctx-own", TaskState::Working, 1);
    store.save(&t, &alice).await.expect("save");
    assert_eq!(
        store.get("own-a", &alice).await.expect("get"),
        Some(t.clone())
    );
    for other in [&bob, &alice_acme, &TaskOwner::anonymous()] {
        assert_eq!(
            store.get("own-a", other).await.expect("get"),
            None,
            "{other:?}"
        );
        let page = list(store, |q| {
            q.owner = other.clone();
            q.context_id = Some("ctx-own".into());
        })
        .await;
        assert_eq!(page.total_size, 0, "{other:?}");
    }
    let mine = list(store, |q| {
        q.owner = alice.clone();
        q.context_id = Some("ctx-own".into());
    })
    .await;
    assert_eq!(ids(&mine), ["own-a"]);
    // Another owner's save of the same id (a newer status) changes nothing.
    let mut forged = t.clone();
    forged.status.state = TaskState::Canceled;
    forged.status.timestamp = Some(ts(9));
    store
        .save(&forged, &bob)
        .await
        .expect("save is not an error");
    assert_eq!(
        store.get("own-a", &alice).await.expect("get"),
        Some(t.clone())
    );
    assert_eq!(store.get("own-a", &bob).await.expect("get"), None);
    // The owner still can.
    t.status.state = TaskState::Completed;
    t.status.timestamp = Some(ts(10));
    store.save(&t, &alice).await.expect("save");
    assert_eq!(store.get("own-a", &alice).await.expect("get"), Some(t));
}

pub async fn upsert_replaces(store: &dyn TaskStore) {
    let mut t = task("up", "ctx-old", TaskState::Working, 1);
    store.save(&t, &TaskOwner::anonymous()).await.expect("save");
    t.context_id = "ctx-new".into();
    t.status.state = TaskState::Completed;
    t.status.timestamp = Some(ts(2));
    t.artifacts = Some(vec![Artifact {
        artifact_id: "a".into(),
        name: None,
        description: None,
        parts: vec![Part::text("done")],
        metadata: None,
        extensions: None,
    }]);
    store
        .save(&t, &TaskOwner::anonymous())
        .await
        .expect("save again");
    assert_eq!(
        store.get("up", &TaskOwner::anonymous()).await.expect("get"),
        Some(t)
    );
    let old = list(store, |q| q.context_id = Some("ctx-old".into())).await;
    assert_eq!(old.total_size, 0);
    let new = list(store, |q| q.context_id = Some("ctx-new".into())).await;
    assert_eq!(ids(&new), ["up"]);
    let working = list(store, |q| q.state = Some(TaskState::Working)).await;
    assert!(!ids(&working).contains(&"up".to_string()));
}

async fn list(store: &dyn TaskStore, f: impl FnOnce(&mut ListQuery)) -> TaskPage {
    let mut q = ListQuery {
        page_size: 1000,
        ..ListQuery::default()
    };
    f(&mut q);
    store.list(&q).await.expect("list")
}

fn ids(page: &TaskPage) -> Vec<String> {
    page.tasks.iter().map(|t| t.id.clone()).collect()
}

pub async fn list_filters(store: &dyn TaskStore) {
    let fixtures = [
        ("f1", "ctx-a", TaskState::Working, 10),
        ("f2", "ctx-a", TaskState::Completed, 20),
        ("f3", "ctx-b", TaskState::Completed, 30),
        ("f4", "ctx-b", TaskState::Failed, 40),
        ("f5", "ctx-a", TaskState::Completed, 50),
    ];
    for (id, ctx, state, secs) in fixtures {
        store
            .save(&task(id, ctx, state, secs), &TaskOwner::anonymous())
            .await
            .expect("save");
    }
    let all = list(store, |_| {}).await;
    assert_eq!(ids(&all), ["f5", "f4", "f3", "f2", "f1"]);
    assert_eq!(all.total_size, 5);
    assert_eq!(all.next_page_token, None);

    let a = list(store, |q| q.context_id = Some("ctx-a".into())).await;
    assert_eq!(ids(&a), ["f5", "f2", "f1"]);
    assert_eq!(a.total_size, 3);

    let done = list(store, |q| q.state = Some(TaskState::Completed)).await;
    assert_eq!(ids(&done), ["f5", "f3", "f2"]);

    let a_done = list(store, |q| {
        q.context_id = Some("ctx-a".into());
        q.state = Some(TaskState::Completed);
    })
    .await;
    assert_eq!(ids(&a_done), ["f5", "f2"]);

    // Strictly after: the task exactly at the instant is excluded.
    let recent = list(store, |q| q.status_after = Some(ts(30))).await;
    assert_eq!(ids(&recent), ["f5", "f4"]);
    let recent_b = list(store, |q| {
        q.status_after = Some(ts(30) - chrono::Duration::nanoseconds(1));
        q.context_id = Some("ctx-b".into());
    })
    .await;
    assert_eq!(ids(&recent_b), ["f4", "f3"]);

    let none = list(store, |q| q.context_id = Some("ctx-none".into())).await;
    assert_eq!((none.tasks.len(), none.total_size), (0, 0));
    assert_eq!(none.next_page_token, None);
}

pub async fn pagination(store: &dyn TaskStore) {
    let mut expected = Vec::new();
    for i in 0..25 {
        // Groups of three share a timestamp (ties ordered by id); two tasks
        // have no timestamp and come last.
        let mut t = task(
            &format!("p{:02}", 24 - i),
            "ctx-page",
            TaskState::Working,
            i / 3,
        );
        if i < 2 {
            t.status.timestamp = None;
        }
        store.save(&t, &TaskOwner::anonymous()).await.expect("save");
        expected.push(t);
    }
    store
        .save(
            &task("other", "ctx-other", TaskState::Working, 5),
            &TaskOwner::anonymous(),
        )
        .await
        .expect("save other");
    expected.sort_by(|a, b| {
        b.status
            .timestamp
            .cmp(&a.status.timestamp)
            .then_with(|| a.id.cmp(&b.id))
    });
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = store
            .list(&ListQuery {
                context_id: Some("ctx-page".into()),
                page_size: 10,
                page_token: token.take(),
                ..ListQuery::default()
            })
            .await
            .expect("list page");
        pages += 1;
        assert_eq!(page.total_size, 25);
        assert!(page.tasks.len() <= 10);
        seen.extend(page.tasks);
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    let unique: HashSet<&str> = seen.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(unique.len(), 25, "a task was returned twice");
    assert_eq!(seen, expected);
}

pub async fn invalid_page_token(store: &dyn TaskStore) {
    store
        .save(
            &task("tok", "ctx-tok", TaskState::Working, 1),
            &TaskOwner::anonymous(),
        )
        .await
        .expect("save");
    for bad in ["garbage", "", "10", "v1.x.74", "v1.1.7", "v1.1.zz"] {
        let result = store
            .list(&ListQuery {
                page_size: 10,
                page_token: Some(bad.to_string()),
                ..ListQuery::default()
            })
            .await;
        assert!(
            matches!(result, Err(StoreError::InvalidPageToken)),
            "token {bad:?} gave {result:?}"
        );
    }
}

pub async fn concurrent_saves(store: Arc<dyn TaskStore>) {
    let mut workers = Vec::new();
    for w in 0..10 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            for i in 0..10 {
                let t = task(&format!("c{w}-{i}"), "ctx-conc", TaskState::Working, i);
                store
                    .save(&t, &TaskOwner::anonymous())
                    .await
                    .expect("concurrent save");
            }
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
    for w in 0..10 {
        for i in 0..10 {
            let id = format!("c{w}-{i}");
            assert!(
                store
                    .get(&id, &TaskOwner::anonymous())
                    .await
                    .expect("get")
                    .is_some(),
                "{id} missing"
            );
        }
    }
    let page = store
        .list(&ListQuery {
            context_id: Some("ctx-conc".into()),
            page_size: 1000,
            ..ListQuery::default()
        })
        .await
        .expect("list");
    assert_eq!((page.tasks.len(), page.total_size), (100, 100));
}
