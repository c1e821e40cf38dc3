//! Behaviour every task store must show, run by each backend's tests
//! through [`task_store_conformance!`].

use super::{
    Claim, ExpiredLease, Lease, LeaseHolder, ListQuery, LoggedEvent, LoggedTask, StoreError,
    TaskOwner, TaskPage, TaskStore,
};
use crate::protocol::Principal;
use a2a::{
    Artifact, Message, Part, Role, StreamResponse, Task, TaskArtifactUpdateEvent, TaskState,
    TaskStatus, TaskStatusUpdateEvent,
};
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

/// Generates one `#[tokio::test]` per check of the event log and leases
/// ([`TaskStore::append`] and the methods after it), as
/// [`task_store_conformance!`] does.
macro_rules! task_log_conformance {
    ($fixture:expr) => {
        #[tokio::test]
        async fn conformance_log_round_trip() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::log_round_trip(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn conformance_append_conflicts() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::append_conflicts(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn conformance_concurrent_appends() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::concurrent_appends(f.store.clone()).await;
            }
        }

        #[tokio::test]
        async fn conformance_log_owners() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::log_owners(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn conformance_claims() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::claims(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn conformance_renew_and_release() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::renew_and_release(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn conformance_expired_leases() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::expired_leases(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn conformance_prune_events() {
            if let Some(f) = $fixture.await {
                $crate::store::conformance::prune_events(&*f.store).await;
            }
        }
    };
}
pub(crate) use task_log_conformance;

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

/// A lease end `secs` after the fixed instant, whole microseconds (the SQL
/// stores keep leases to the microsecond).
pub fn lease_ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 250_000)
        .single()
        .expect("valid timestamp")
}

/// Event `seq` of task `t`: a status update to `state` for odd numbers, an
/// artifact update for even ones.
pub fn event(t: &Task, seq: u64, state: TaskState) -> LoggedEvent {
    let event = if seq % 2 == 1 {
        StreamResponse::StatusUpdate(TaskStatusUpdateEvent {
            task_id: t.id.clone(),
            context_id: t.context_id.clone(),
            status: TaskStatus {
                state,
                message: None,
                timestamp: Some(ts(seq as i64)),
            },
            metadata: None,
        })
    } else {
        StreamResponse::ArtifactUpdate(TaskArtifactUpdateEvent {
            task_id: t.id.clone(),
            context_id: t.context_id.clone(),
            artifact: Artifact {
                artifact_id: format!("a{seq}"),
                name: None,
                description: None,
                parts: vec![Part::text(format!("part {seq} ✓"))],
                metadata: None,
                extensions: None,
            },
            append: Some(true),
            last_chunk: None,
            metadata: None,
        })
    };
    LoggedEvent { seq, event }
}

/// Events `from..=to` of `t`.
pub fn events(t: &Task, from: u64, to: u64) -> Vec<LoggedEvent> {
    (from..=to)
        .map(|seq| event(t, seq, TaskState::Working))
        .collect()
}

fn seqs(events: &[LoggedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

fn same_events(got: &[LoggedEvent], want: &[LoggedEvent]) {
    assert_eq!(seqs(got), seqs(want));
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.event, w.event, "event {}", g.seq);
    }
}

fn hold(replica: &str, secs: i64) -> Lease<'_> {
    Lease::Hold {
        replica,
        until: lease_ts(secs),
    }
}

fn holder(replica: &str, secs: i64) -> Option<LeaseHolder> {
    Some(LeaseHolder {
        replica: replica.to_string(),
        until: lease_ts(secs),
    })
}

async fn logged(store: &dyn TaskStore, id: &str) -> LoggedTask {
    store
        .get_logged(id, &TaskOwner::anonymous())
        .await
        .expect("get_logged")
        .unwrap_or_else(|| panic!("{id} missing"))
}

async fn all_events(store: &dyn TaskStore, id: &str) -> Vec<LoggedEvent> {
    store
        .events_after(id, &TaskOwner::anonymous(), 0, 10_000)
        .await
        .expect("events_after")
}

/// Appends are numbered, read back in order and in slices; the task is the
/// state after the last; `save` keeps the log and lease.
pub async fn log_round_trip(store: &dyn TaskStore) {
    let anon = TaskOwner::anonymous();
    let mut t = rich_task();
    t.status.state = TaskState::Working;
    let first = events(&t, 1, 3);
    store
        .append(&t, &anon, 0, &first, hold("r1", 100))
        .await
        .expect("append 1..3");
    let got = logged(store, &t.id).await;
    assert_eq!((got.task.clone(), got.seq), (t.clone(), 3));
    assert_eq!(got.lease, holder("r1", 100));

    t.status.state = TaskState::Completed;
    t.status.timestamp = Some(ts(50));
    let second = vec![
        event(&t, 4, TaskState::Working),
        event(&t, 5, TaskState::Completed),
    ];
    store
        .append(&t, &anon, 3, &second, Lease::Release)
        .await
        .expect("append 4..5");
    let got = logged(store, &t.id).await;
    assert_eq!((got.task, got.seq, got.lease), (t.clone(), 5, None));
    let all: Vec<LoggedEvent> = first.iter().chain(&second).cloned().collect();
    same_events(&all_events(store, &t.id).await, &all);
    let slice = store
        .events_after(&t.id, &anon, 2, 2)
        .await
        .expect("events_after");
    same_events(&slice, &all[2..4]);
    assert!(store
        .events_after(&t.id, &anon, 5, 10)
        .await
        .expect("events_after the end")
        .is_empty());
    assert!(store
        .events_after("no-such-task", &anon, 0, 10)
        .await
        .expect("events_after missing")
        .is_empty());
    assert!(store
        .get_logged("no-such-task", &anon)
        .await
        .expect("get_logged missing")
        .is_none());

    // No events: the task and lease are written, the log stays.
    t.status.timestamp = Some(ts(60));
    store
        .append(&t, &anon, 5, &[], hold("r2", 200))
        .await
        .expect("append nothing");
    let got = logged(store, &t.id).await;
    assert_eq!((got.task, got.seq), (t.clone(), 5));
    assert_eq!(got.lease, holder("r2", 200));
    assert_eq!(seqs(&all_events(store, &t.id).await), [1, 2, 3, 4, 5]);

    // `save` keeps the log and the lease of a stored task...
    t.status.timestamp = Some(ts(70));
    store.save(&t, &anon).await.expect("save");
    let got = logged(store, &t.id).await;
    assert_eq!((got.task, got.seq), (t.clone(), 5));
    assert_eq!(got.lease, holder("r2", 200));
    assert_eq!(seqs(&all_events(store, &t.id).await), [1, 2, 3, 4, 5]);
    // ...and a task it creates has none.
    let fresh = task("log-fresh", "ctx-log", TaskState::Working, 1);
    store.save(&fresh, &anon).await.expect("save fresh");
    let got = logged(store, "log-fresh").await;
    assert_eq!((got.task, got.seq, got.lease), (fresh.clone(), 0, None));
    // A saved task's log starts at 0.
    store
        .append(&fresh, &anon, 0, &events(&fresh, 1, 1), Lease::Release)
        .await
        .expect("append to a saved task");
    assert_eq!(logged(store, "log-fresh").await.seq, 1);
}

fn is_conflict(result: Result<(), StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict(_)))
}

/// An append that does not continue the stored log writes nothing.
pub async fn append_conflicts(store: &dyn TaskStore) {
    let anon = TaskOwner::anonymous();
    let t = task("conf", "ctx-conf", TaskState::Working, 1);
    let first = events(&t, 1, 2);
    store
        .append(&t, &anon, 0, &first, hold("r1", 100))
        .await
        .expect("append");
    let mut other = t.clone();
    other.status.state = TaskState::Failed;
    other.status.timestamp = Some(ts(9));
    for after in [0, 1, 3, 7] {
        let result = store
            .append(
                &other,
                &anon,
                after,
                &events(&other, after + 1, after + 2),
                hold("r2", 300),
            )
            .await;
        assert!(is_conflict(result), "after {after}");
        let got = logged(store, "conf").await;
        assert_eq!((got.task, got.seq), (t.clone(), 2), "after {after}");
        assert_eq!(got.lease, holder("r1", 100), "after {after}");
        same_events(&all_events(store, "conf").await, &first);
    }
    // A task not yet stored ends at 0.
    let missing = task("conf-missing", "ctx-conf", TaskState::Working, 1);
    let result = store
        .append(&missing, &anon, 3, &events(&missing, 4, 4), Lease::Release)
        .await;
    assert!(is_conflict(result));
    assert_eq!(store.get("conf-missing", &anon).await.expect("get"), None);
    assert!(all_events(store, "conf-missing").await.is_empty());
    // The right position still works.
    store
        .append(&other, &anon, 2, &events(&other, 3, 3), Lease::Release)
        .await
        .expect("append at the end");
    assert_eq!(logged(store, "conf").await.seq, 3);
}

/// Of appends racing from one position exactly one wins, and the log is
/// the winner's.
pub async fn concurrent_appends(store: Arc<dyn TaskStore>) {
    for (round, after) in [(0, 0u64), (1, 3)] {
        let racers = (0..8).map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut t = task("race", "ctx-race", TaskState::Working, i64::from(w));
                t.metadata = Some(HashMap::from([("writer".to_string(), json!(w))]));
                let evs = events(&t, after + 1, after + 3);
                let result = store
                    .append(&t, &TaskOwner::anonymous(), after, &evs, Lease::Release)
                    .await;
                (w, t, evs, result)
            })
        });
        let mut winners = Vec::new();
        for racer in racers.collect::<Vec<_>>() {
            let (w, t, evs, result) = racer.await.expect("racer");
            match result {
                Ok(()) => winners.push((t, evs)),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("round {round} writer {w}: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        let (t, evs) = winners.remove(0);
        let got = logged(&*store, "race").await;
        assert_eq!((got.task, got.seq), (t, after + 3), "round {round}");
        let log = all_events(&*store, "race").await;
        same_events(&log[log.len() - 3..], &evs);
        assert_eq!(seqs(&log), (1..=after + 3).collect::<Vec<_>>());
    }
}

/// Another owner's task is invisible to the log's reads, a conflict for
/// appends and missing for claims.
pub async fn log_owners(store: &dyn TaskStore) {
    let alice = TaskOwner::new(&Principal::new("alice"), None);
    let bob = TaskOwner::new(&Principal::new("bob"), None);
    let alice_acme = TaskOwner::new(&Principal::new("alice"), Some("acme"));
    let t = task("log-own", "ctx-log-own", TaskState::Working, 1);
    let evs = events(&t, 1, 2);
    store
        .append(&t, &alice, 0, &evs, hold("r1", 100))
        .await
        .expect("append");
    for other in [&bob, &alice_acme, &TaskOwner::anonymous()] {
        assert!(store
            .get_logged("log-own", other)
            .await
            .expect("get_logged")
            .is_none());
        assert!(store
            .events_after("log-own", other, 0, 10)
            .await
            .expect("events_after")
            .is_empty());
        for after in [0, 2] {
            let result = store
                .append(
                    &t,
                    other,
                    after,
                    &events(&t, after + 1, after + 1),
                    Lease::Release,
                )
                .await;
            assert!(is_conflict(result), "{other:?} after {after}");
        }
        let claim = store
            .claim("log-own", other, "r2", lease_ts(500), lease_ts(400))
            .await
            .expect("claim");
        assert!(matches!(claim, Claim::Missing), "{other:?}: {claim:?}");
    }
    let got = store
        .get_logged("log-own", &alice)
        .await
        .expect("get_logged")
        .expect("alice's task");
    assert_eq!((got.task, got.seq), (t.clone(), 2));
    assert_eq!(got.lease, holder("r1", 100));
    let log = store
        .events_after("log-own", &alice, 0, 10)
        .await
        .expect("events_after");
    same_events(&log, &evs);
}

/// Leases are taken when free, expired or already ours; never from an
/// unexpired holder, never on terminal tasks.
pub async fn claims(store: &dyn TaskStore) {
    let anon = TaskOwner::anonymous();
    let t = task("claim", "ctx-claim", TaskState::Working, 1);
    store
        .append(&t, &anon, 0, &events(&t, 1, 1), Lease::Release)
        .await
        .expect("append");
    let claim = |replica: &'static str, until: i64, now: i64| {
        store.claim("claim", &anon, replica, lease_ts(until), lease_ts(now))
    };
    match claim("r1", 100, 10).await.expect("claim free") {
        Claim::Acquired(got) => {
            assert_eq!((got.task, got.seq), (t.clone(), 1));
            assert_eq!(got.lease, holder("r1", 100));
        }
        other => panic!("free: {other:?}"),
    }
    match claim("r2", 200, 50).await.expect("claim held") {
        Claim::Held(got) => assert_eq!(got.lease, holder("r1", 100)),
        other => panic!("held: {other:?}"),
    }
    // Not yet over at its very end.
    assert!(matches!(
        claim("r2", 200, 100).await.expect("claim at the end"),
        Claim::Held(_)
    ));
    assert_eq!(logged(store, "claim").await.lease, holder("r1", 100));
    // The holder may claim again (and extend).
    match claim("r1", 150, 60).await.expect("claim own") {
        Claim::Acquired(got) => assert_eq!(got.lease, holder("r1", 150)),
        other => panic!("own: {other:?}"),
    }
    // Expired: another replica takes it.
    match claim("r2", 300, 151).await.expect("claim expired") {
        Claim::Acquired(got) => {
            assert_eq!((got.task, got.seq), (t.clone(), 1));
            assert_eq!(got.lease, holder("r2", 300));
        }
        other => panic!("expired: {other:?}"),
    }
    assert_eq!(logged(store, "claim").await.lease, holder("r2", 300));

    // A terminal task: no lease taken, whatever it holds.
    let mut done = task("claim-done", "ctx-claim", TaskState::Completed, 2);
    store
        .append(&done, &anon, 0, &events(&done, 1, 2), Lease::Release)
        .await
        .expect("append done");
    match store
        .claim("claim-done", &anon, "r1", lease_ts(100), lease_ts(10))
        .await
        .expect("claim terminal")
    {
        Claim::Terminal(got) => assert_eq!((got.task, got.seq, got.lease), (done.clone(), 2, None)),
        other => panic!("terminal: {other:?}"),
    }
    done.id = "claim-done-held".into();
    store
        .append(&done, &anon, 0, &[], hold("r3", 20))
        .await
        .expect("append done, held");
    match store
        .claim("claim-done-held", &anon, "r1", lease_ts(100), lease_ts(50))
        .await
        .expect("claim terminal, expired")
    {
        Claim::Terminal(got) => assert_eq!(got.lease, holder("r3", 20)),
        other => panic!("terminal, expired: {other:?}"),
    }
    assert_eq!(
        logged(store, "claim-done-held").await.lease,
        holder("r3", 20)
    );
    assert!(matches!(
        store
            .claim("no-such-task", &anon, "r1", lease_ts(100), lease_ts(10))
            .await
            .expect("claim missing"),
        Claim::Missing
    ));
}

/// `renew_leases` extends exactly one replica's leases; `release_lease`
/// frees only its own.
pub async fn renew_and_release(store: &dyn TaskStore) {
    let anon = TaskOwner::anonymous();
    for (id, replica) in [
        ("rn-a", "rn1"),
        ("rn-b", "rn1"),
        ("rn-c", "rn2"),
        ("rn-d", ""),
    ] {
        let t = task(id, "ctx-renew", TaskState::Working, 1);
        let lease = if replica.is_empty() {
            Lease::Release
        } else {
            hold(replica, 10)
        };
        store
            .append(&t, &anon, 0, &events(&t, 1, 1), lease)
            .await
            .expect("append");
    }
    assert_eq!(
        store
            .renew_leases("rn1", lease_ts(40))
            .await
            .expect("renew"),
        2
    );
    assert_eq!(logged(store, "rn-a").await.lease, holder("rn1", 40));
    assert_eq!(logged(store, "rn-b").await.lease, holder("rn1", 40));
    assert_eq!(logged(store, "rn-c").await.lease, holder("rn2", 10));
    assert_eq!(logged(store, "rn-d").await.lease, None);
    assert_eq!(
        store
            .renew_leases("nobody", lease_ts(40))
            .await
            .expect("renew"),
        0
    );

    // Another replica's release changes nothing.
    store
        .release_lease("rn-a", "rn2")
        .await
        .expect("release other");
    assert_eq!(logged(store, "rn-a").await.lease, holder("rn1", 40));
    store.release_lease("rn-a", "rn1").await.expect("release");
    assert_eq!(logged(store, "rn-a").await.lease, None);
    store
        .release_lease("no-such-task", "rn1")
        .await
        .expect("release missing");
    assert_eq!(
        store
            .renew_leases("rn1", lease_ts(50))
            .await
            .expect("renew"),
        1
    );
    assert_eq!(logged(store, "rn-b").await.lease, holder("rn1", 50));
    // A released task's log and state are as they were.
    assert_eq!(logged(store, "rn-a").await.seq, 1);
}

/// Only leases that ended before `now`, of tasks still running.
pub async fn expired_leases(store: &dyn TaskStore) {
    let alice = TaskOwner::new(&Principal::new("alice"), Some("acme"));
    let fixtures = [
        ("ex-old", TaskState::Working, Some(("r1", 10))),
        ("ex-older", TaskState::InputRequired, Some(("r2", 5))),
        ("ex-edge", TaskState::Working, Some(("r1", 20))),
        ("ex-new", TaskState::Working, Some(("r1", 30))),
        ("ex-done", TaskState::Completed, Some(("r1", 10))),
        ("ex-free", TaskState::Working, None),
    ];
    for (id, state, lease) in fixtures {
        let t = task(id, "ctx-exp", state, 1);
        let lease = match lease {
            Some((replica, secs)) => hold(replica, secs),
            None => Lease::Release,
        };
        store
            .append(&t, &alice, 0, &events(&t, 1, 1), lease)
            .await
            .expect("append");
    }
    let mut expired = store
        .expired_leases(lease_ts(20), 100)
        .await
        .expect("expired_leases");
    expired.sort_by(|a, b| a.task_id.cmp(&b.task_id));
    let want = |id: &str, replica: &str| ExpiredLease {
        task_id: id.to_string(),
        owner: alice.clone(),
        replica: replica.to_string(),
    };
    assert_eq!(expired, [want("ex-old", "r1"), want("ex-older", "r2")]);
    assert_eq!(
        store
            .expired_leases(lease_ts(40), 2)
            .await
            .expect("expired_leases, limited")
            .len(),
        2
    );
    assert_eq!(
        store
            .expired_leases(lease_ts(40), 100)
            .await
            .expect("expired_leases, later")
            .len(),
        4
    );
    assert!(store
        .expired_leases(lease_ts(0), 100)
        .await
        .expect("expired_leases, earlier")
        .is_empty());
}

/// Pruning drops the events appended before the cut, and only those.
pub async fn prune_events(store: &dyn TaskStore) {
    let anon = TaskOwner::anonymous();
    let t = task("prune", "ctx-prune", TaskState::Working, 1);
    let u = task("prune-other", "ctx-prune", TaskState::Working, 1);
    store
        .append(&t, &anon, 0, &events(&t, 1, 2), Lease::Release)
        .await
        .expect("append");
    store
        .append(&u, &anon, 0, &events(&u, 1, 1), Lease::Release)
        .await
        .expect("append other");
    assert_eq!(
        store
            .prune_events(Utc::now() - chrono::Duration::hours(1))
            .await
            .expect("prune nothing"),
        0
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let cut = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let later = events(&t, 3, 4);
    store
        .append(&t, &anon, 2, &later, Lease::Release)
        .await
        .expect("append later");
    assert_eq!(store.prune_events(cut).await.expect("prune"), 3);
    let log = all_events(store, "prune").await;
    same_events(&log, &later);
    let slice = store
        .events_after("prune", &anon, 1, 10)
        .await
        .expect("events_after");
    assert_eq!(seqs(&slice), [3, 4]);
    assert!(all_events(store, "prune-other").await.is_empty());
    // The task keeps its place in the log.
    assert_eq!(logged(store, "prune").await.seq, 4);
    assert_eq!(store.prune_events(cut).await.expect("prune again"), 0);
}
