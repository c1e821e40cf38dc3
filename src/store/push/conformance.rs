//! Behaviour every push store must show, run by each backend's tests
//! through [`push_store_conformance!`].

use super::{Notification, OutboxClaim, PushStore, Takeover};
use crate::protocol::types::{AuthenticationInfo, TaskPushNotificationConfig};
use crate::protocol::Principal;
use crate::store::{StoreError, TaskOwner};
use chrono::{DateTime, TimeZone, Utc};
use std::any::Any;
use std::sync::Arc;

/// A push store under test plus whatever must live as long as it (temp
/// dir, database schema, task store).
pub struct PushFixture {
    pub store: Arc<dyn PushStore>,
    _guard: Box<dyn Any + Send + Sync>,
}

impl PushFixture {
    pub fn new(store: impl PushStore, guard: impl Any + Send + Sync) -> Self {
        Self {
            store: Arc::new(store),
            _guard: Box::new(guard),
        }
    }
}

/// Generates one `#[tokio::test]` per check; `$fixture` is an expression
/// yielding `Option<PushFixture>` (`None` skips, e.g. no database).
macro_rules! push_store_conformance {
    ($fixture:expr) => {
        #[tokio::test]
        async fn push_conformance_config_crud() {
            if let Some(f) = $fixture.await {
                $crate::store::push::conformance::config_crud(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn push_conformance_owners_are_kept_apart() {
            if let Some(f) = $fixture.await {
                $crate::store::push::conformance::owners_are_kept_apart(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn push_conformance_delete_drops_the_configs_outbox() {
            if let Some(f) = $fixture.await {
                $crate::store::push::conformance::delete_drops_the_configs_outbox(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn push_conformance_enqueue_pending_settle() {
            if let Some(f) = $fixture.await {
                $crate::store::push::conformance::enqueue_pending_settle(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn push_conformance_duplicates_are_ignored() {
            if let Some(f) = $fixture.await {
                $crate::store::push::conformance::duplicates_are_ignored(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn push_conformance_created_at_round_trips() {
            if let Some(f) = $fixture.await {
                $crate::store::push::conformance::created_at_round_trips(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn push_conformance_trace_context_round_trips() {
            if let Some(f) = $fixture.await {
                $crate::store::push::conformance::trace_context_round_trips(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn push_conformance_configs_without_id_are_refused() {
            if let Some(f) = $fixture.await {
                $crate::store::push::conformance::configs_without_id_are_refused(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn push_conformance_concurrent_writes() {
            if let Some(f) = $fixture.await {
                $crate::store::push::conformance::concurrent_writes(f.store.clone()).await;
            }
        }

        #[tokio::test]
        async fn push_conformance_claims_move_between_replicas() {
            if let Some(f) = $fixture.await {
                $crate::store::push::conformance::claims_move_between_replicas(&*f.store).await;
            }
        }

        #[tokio::test]
        async fn push_conformance_concurrent_claims_are_disjoint() {
            if let Some(f) = $fixture.await {
                $crate::store::push::conformance::concurrent_claims_are_disjoint(f.store.clone())
                    .await;
            }
        }
    };
}
pub(crate) use push_store_conformance;

/// A config `id` of task `task_id`.
pub fn config(task_id: &str, id: &str, url: &str) -> TaskPushNotificationConfig {
    TaskPushNotificationConfig {
        url: url.into(),
        id: Some(id.into()),
        task_id: task_id.into(),
        token: None,
        authentication: None,
        tenant: None,
    }
}

/// An instant at microsecond precision (what the SQL backends keep),
/// `secs` after a fixed one.
pub fn micros(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 123_456_000)
        .single()
        .expect("valid timestamp")
}

/// A notification of the anonymous owner's `task-1` for config `config_id`.
pub fn notification(event_id: &str, config_id: &str, seq: i64) -> Notification {
    Notification {
        seq,
        event_id: event_id.into(),
        owner: TaskOwner::anonymous(),
        task_id: "task-1".into(),
        config: config("task-1", config_id, "https://hooks.example.com/a2a"),
        payload: format!(r#"{{"statusUpdate":{{"taskId":"task-1","seq":{seq}}}}}"#),
        created_at: micros(seq),
        traceparent: None,
        tracestate: None,
    }
}

fn owner(principal: &str, tenant: Option<&str>) -> TaskOwner {
    TaskOwner::new(&Principal::new(principal), tenant)
}

async fn ids(store: &dyn PushStore, owner: &TaskOwner, task_id: &str) -> Vec<String> {
    store
        .list_configs(owner, task_id)
        .await
        .expect("list configs")
        .into_iter()
        .map(|c| c.id.unwrap_or_default())
        .collect()
}

/// (event id, config id) of every pending notification, in order.
async fn pending_keys(store: &dyn PushStore) -> Vec<(String, String)> {
    store
        .pending(i64::MIN, 1_000)
        .await
        .expect("pending")
        .into_iter()
        .map(|n| (n.event_id.clone(), n.config_id().to_owned()))
        .collect()
}

fn keys(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(e, c)| (e.to_string(), c.to_string()))
        .collect()
}

pub async fn config_crud(store: &dyn PushStore) {
    let me = TaskOwner::anonymous();
    assert!(store.list_configs(&me, "t").await.expect("list").is_empty());
    assert_eq!(store.get_config(&me, "t", "z").await.expect("get"), None);

    // Creation order, not id order.
    let z = config("t", "z", "https://a.example/z");
    let mut a = config("t", "a", "https://a.example/a");
    a.token = Some("secret-token".into());
    a.authentication = Some(AuthenticationInfo {
        scheme: "Bearer".into(),
        credentials: Some("créds ✓".into()),
    });
    let m = config("t", "m", "https://a.example/m");
    for c in [&z, &a, &m] {
        store.put_config(&me, c).await.expect("put");
    }
    assert_eq!(ids(store, &me, "t").await, ["z", "a", "m"]);
    assert_eq!(
        store.get_config(&me, "t", "a").await.expect("get"),
        Some(a.clone())
    );

    // Replacing keeps the original position.
    let z2 = config("t", "z", "https://b.example/z");
    store.put_config(&me, &z2).await.expect("replace");
    assert_eq!(
        store.list_configs(&me, "t").await.expect("list"),
        vec![z2.clone(), a.clone(), m.clone()]
    );
    assert_eq!(
        store.get_config(&me, "t", "z").await.expect("get"),
        Some(z2)
    );

    // Configs belong to their task.
    store
        .put_config(&me, &config("t2", "z", "https://c.example"))
        .await
        .expect("other task");
    assert_eq!(ids(store, &me, "t2").await, ["z"]);
    assert_eq!(ids(store, &me, "t").await, ["z", "a", "m"]);
    assert_eq!(store.get_config(&me, "t2", "a").await.expect("get"), None);

    // A deleted and re-created config goes to the end.
    assert!(store.delete_config(&me, "t", "z").await.expect("delete"));
    store
        .put_config(&me, &config("t", "z", "https://d.example"))
        .await
        .expect("re-create");
    assert_eq!(ids(store, &me, "t").await, ["a", "m", "z"]);
    assert!(!store.kind().is_empty());
}

pub async fn owners_are_kept_apart(store: &dyn PushStore) {
    let alice = owner("alice", None);
    let bob = owner("bob", None);
    let alice_acme = owner("alice", Some("acme"));
    let hook = config("t", "hook", "https://alice.example");
    store.put_config(&alice, &hook).await.expect("put");

    for other in [&bob, &alice_acme, &TaskOwner::anonymous()] {
        assert_eq!(
            store.get_config(other, "t", "hook").await.expect("get"),
            None
        );
        assert!(store
            .list_configs(other, "t")
            .await
            .expect("list")
            .is_empty());
        assert!(!store
            .delete_config(other, "t", "hook")
            .await
            .expect("delete"));
    }
    assert_eq!(
        store.get_config(&alice, "t", "hook").await.expect("get"),
        Some(hook.clone())
    );

    // The same task and config id of another owner is another config, and
    // deleting it leaves alice's config and notifications alone.
    let bobs = config("t", "hook", "https://bob.example");
    store.put_config(&bob, &bobs).await.expect("bob's");
    let mut mine = notification("e1", "hook", 1);
    mine.owner = alice.clone();
    mine.task_id = "t".into();
    let mut his = notification("e2", "hook", 2);
    his.owner = bob.clone();
    his.task_id = "t".into();
    store.enqueue(&[mine.clone(), his]).await.expect("enqueue");
    assert!(store
        .delete_config(&bob, "t", "hook")
        .await
        .expect("delete"));
    assert_eq!(
        store.list_configs(&alice, "t").await.expect("list"),
        vec![hook]
    );
    assert_eq!(
        store.pending(i64::MIN, 10).await.expect("pending"),
        vec![mine]
    );
}

pub async fn delete_drops_the_configs_outbox(store: &dyn PushStore) {
    let me = TaskOwner::anonymous();
    for (task, id) in [("task-1", "h1"), ("task-1", "h2"), ("task-2", "h1")] {
        store
            .put_config(&me, &config(task, id, "https://h.example"))
            .await
            .expect("put");
    }
    let mut other_task = notification("e3", "h1", 3);
    other_task.task_id = "task-2".into();
    let batch = [
        notification("e1", "h1", 1),
        notification("e1", "h2", 1),
        notification("e2", "h1", 2),
        other_task,
    ];
    store.enqueue(&batch).await.expect("enqueue");
    assert_eq!(store.depth().await.expect("depth"), 4);

    assert!(store
        .delete_config(&me, "task-1", "h1")
        .await
        .expect("delete"));
    assert_eq!(
        pending_keys(store).await,
        keys(&[("e1", "h2"), ("e3", "h1")])
    );
    assert_eq!(store.depth().await.expect("depth"), 2);
    assert!(!store
        .delete_config(&me, "task-1", "h1")
        .await
        .expect("again"));
    assert_eq!(
        store.get_config(&me, "task-1", "h1").await.expect("get"),
        None
    );
    assert_eq!(ids(store, &me, "task-1").await, ["h2"]);
    assert_eq!(ids(store, &me, "task-2").await, ["h1"]);

    // Notifications whose config is already gone still go with a delete.
    store
        .enqueue(&[notification("e4", "gone", 4)])
        .await
        .expect("enqueue");
    assert!(!store
        .delete_config(&me, "task-1", "gone")
        .await
        .expect("delete"));
    assert_eq!(store.depth().await.expect("depth"), 2);
}

pub async fn enqueue_pending_settle(store: &dyn PushStore) {
    assert!(store.pending(i64::MIN, 10).await.expect("empty").is_empty());
    assert_eq!(store.depth().await.expect("depth"), 0);
    store.enqueue(&[]).await.expect("empty batch");

    // Out of order in the batch; one event to two configs whose ids sort
    // differently byte-wise ("B" < "a") and in most locales ("a" < "B").
    let mut rich = notification("e2", "a", 2);
    rich.owner = owner("alice", Some("acme"));
    rich.config.token = Some("tok".into());
    rich.payload = r#"{"text":"ünïcödé ✓ \u0000 \"q\""}"#.into();
    let batch = [
        notification("e3", "a", 3),
        notification("e0", "a", 0),
        rich.clone(),
        notification("e2", "B", 2),
        notification("e1", "a", 1),
    ];
    store.enqueue(&batch).await.expect("enqueue");
    assert_eq!(store.depth().await.expect("depth"), 5);
    let all = store.pending(-1, 10).await.expect("pending");
    let order: Vec<_> = all
        .iter()
        .map(|n| (n.seq, n.event_id.as_str(), n.config_id()))
        .collect();
    assert_eq!(
        order,
        [
            (0, "e0", "a"),
            (1, "e1", "a"),
            (2, "e2", "B"),
            (2, "e2", "a"),
            (3, "e3", "a")
        ]
    );
    assert_eq!(all[3], rich);
    assert_eq!(all[0], batch[1]);

    // Paging by seq.
    assert_eq!(store.pending(0, 10).await.expect("after 0").len(), 4);
    assert_eq!(
        store.pending(-1, 2).await.expect("limit"),
        all[..2].to_vec()
    );
    assert_eq!(
        store.pending(2, 10).await.expect("after 2"),
        all[4..].to_vec()
    );
    assert!(store.pending(3, 10).await.expect("after 3").is_empty());
    assert!(store.pending(i64::MAX, 10).await.expect("max").is_empty());
    assert!(store.pending(-1, 0).await.expect("zero").is_empty());

    // Settling removes one row; a missing one is fine.
    store.settle("e2", "B").await.expect("settle");
    store.settle("e2", "B").await.expect("settle again");
    store.settle("nope", "a").await.expect("settle missing");
    store
        .settle("e2", "nope")
        .await
        .expect("settle other config");
    assert_eq!(store.depth().await.expect("depth"), 4);
    assert_eq!(
        pending_keys(store).await,
        keys(&[("e0", "a"), ("e1", "a"), ("e2", "a"), ("e3", "a")])
    );
    // A settled notification may be enqueued again (a new delivery).
    store.enqueue(&batch[3..4]).await.expect("again");
    assert_eq!(store.depth().await.expect("depth"), 5);
}

pub async fn duplicates_are_ignored(store: &dyn PushStore) {
    let first = notification("e1", "h", 1);
    store
        .enqueue(std::slice::from_ref(&first))
        .await
        .expect("enqueue");
    // The same event and config again, changed: the stored one stays.
    let mut changed = first.clone();
    changed.payload = r#"{"changed":true}"#.into();
    changed.seq = 9;
    store
        .enqueue(&[changed.clone(), notification("e2", "h", 2)])
        .await
        .expect("with a duplicate");
    // Twice in one batch: the first one counts.
    let mut twin = notification("e3", "h", 3);
    let mut late_twin = twin.clone();
    late_twin.payload = r#"{"twin":2}"#.into();
    twin.payload = r#"{"twin":1}"#.into();
    store
        .enqueue(&[twin.clone(), late_twin])
        .await
        .expect("twins");
    assert_eq!(store.depth().await.expect("depth"), 3);
    let pending = store.pending(0, 10).await.expect("pending");
    assert_eq!(pending[0], first);
    assert_eq!(pending[2], twin);
}

pub async fn created_at_round_trips(store: &dyn PushStore) {
    let instants = [
        micros(0),
        Utc.timestamp_opt(-1_000_000, 999_999_000)
            .single()
            .expect("ts"),
        Utc.timestamp_opt(0, 1_000).single().expect("ts"),
        Utc.timestamp_opt(4_102_444_800, 1_000)
            .single()
            .expect("ts"),
    ];
    let batch: Vec<Notification> = instants
        .iter()
        .enumerate()
        .map(|(i, at)| {
            let mut n = notification(&format!("t{i}"), "h", i as i64 + 1);
            n.created_at = *at;
            n
        })
        .collect();
    store.enqueue(&batch).await.expect("enqueue");
    let back = store.pending(0, 10).await.expect("pending");
    assert_eq!(back, batch);
    let at: Vec<_> = back.iter().map(|n| n.created_at).collect();
    assert_eq!(at, instants);
}

pub async fn trace_context_round_trips(store: &dyn PushStore) {
    let mut traced = notification("traced", "h", 1);
    traced.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
    traced.tracestate = Some("vendor=opaque,other=1".into());
    let mut half = notification("half", "h", 2);
    half.traceparent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00".into());
    let plain = notification("plain", "h", 3);
    let batch = vec![traced, half, plain];
    store.enqueue(&batch).await.expect("enqueue");
    assert_eq!(store.pending(0, 10).await.expect("pending"), batch);
    let claimed = store
        .claim_pending(
            &OutboxClaim::for_lease("r", std::time::Duration::from_secs(30)),
            Takeover::All,
            0,
            10,
        )
        .await
        .expect("claim");
    assert_eq!(claimed, batch);
}

pub async fn configs_without_id_are_refused(store: &dyn PushStore) {
    let me = TaskOwner::anonymous();
    let mut bare = config("t", "x", "https://h.example");
    bare.id = None;
    assert!(matches!(
        store.put_config(&me, &bare).await,
        Err(StoreError::Backend(_))
    ));
    assert!(store.list_configs(&me, "t").await.expect("list").is_empty());
    // All or nothing: the valid notification before it is not written.
    let mut no_id = notification("e2", "h", 2);
    no_id.config.id = None;
    assert!(store
        .enqueue(&[notification("e1", "h", 1), no_id])
        .await
        .is_err());
    assert_eq!(store.depth().await.expect("depth"), 0);
}

pub async fn concurrent_writes(store: Arc<dyn PushStore>) {
    let workers: Vec<_> = (0..8_i64)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let me = TaskOwner::anonymous();
                let task = format!("task-{w}");
                for i in 0..20_i64 {
                    let id = format!("h{i}");
                    store
                        .put_config(&me, &config(&task, &id, "https://h.example"))
                        .await
                        .expect("put");
                    let mut n = notification(&format!("w{w}-{i}"), &id, w * 100 + i);
                    n.task_id = task.clone();
                    store.enqueue(&[n]).await.expect("enqueue");
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    assert_eq!(store.depth().await.expect("depth"), 160);
    let all = store.pending(i64::MIN, 1_000).await.expect("pending");
    assert_eq!(all.len(), 160);
    assert!(all.windows(2).all(|p| p[0].seq < p[1].seq));
    for w in 0..8 {
        let listed = ids(&*store, &TaskOwner::anonymous(), &format!("task-{w}")).await;
        let expected: Vec<String> = (0..20).map(|i| format!("h{i}")).collect();
        assert_eq!(listed, expected);
    }
}

/// A claim by `replica` lapsing `secs` from now (in the past when negative).
fn claim(replica: &str, secs: i64) -> OutboxClaim {
    OutboxClaim {
        replica: replica.into(),
        until: Utc::now() + chrono::Duration::seconds(secs),
    }
}

fn event_ids(batch: &[Notification]) -> Vec<&str> {
    batch.iter().map(|n| n.event_id.as_str()).collect()
}

pub async fn claims_move_between_replicas(store: &dyn PushStore) {
    // a holds e1 and e2 (live), b held e3 (lapsed), e4 is nobody's.
    let live = claim("a", 60);
    store
        .enqueue_claimed(
            &[notification("e1", "h", 1), notification("e2", "h", 2)],
            &live,
        )
        .await
        .expect("a's");
    store
        .enqueue_claimed(&[notification("e3", "h", 3)], &claim("b", -1))
        .await
        .expect("b's");
    store
        .enqueue(&[notification("e4", "h", 4)])
        .await
        .expect("unclaimed");

    // c takes over only what nobody holds.
    let c = claim("c", 60);
    let taken = store
        .claim_pending(&c, Takeover::Expired, i64::MIN, 10)
        .await
        .expect("claim");
    assert_eq!(event_ids(&taken), ["e3", "e4"]);
    // ... and then holds it: nobody else takes it, c does not take it twice.
    for by in ["c", "d"] {
        let again = store
            .claim_pending(&claim(by, 60), Takeover::Expired, i64::MIN, 10)
            .await
            .expect("claim again");
        assert!(again.is_empty(), "{by} took {:?}", event_ids(&again));
    }
    // a restarting under its id gets its own back (not c's), in order and
    // by page.
    let own = store
        .claim_pending(&live, Takeover::OwnAndExpired, i64::MIN, 1)
        .await
        .expect("own");
    assert_eq!(event_ids(&own), ["e1"]);
    let own = store
        .claim_pending(&live, Takeover::OwnAndExpired, own[0].seq, 10)
        .await
        .expect("own, next page");
    assert_eq!(event_ids(&own), ["e2"]);

    // a's claims lapse unless renewed: renewed, they hold; lapsed, d
    // takes them.
    assert_eq!(store.renew_claims(&claim("a", 60)).await.expect("renew"), 2);
    let none = store
        .claim_pending(&claim("d", 60), Takeover::Expired, i64::MIN, 10)
        .await
        .expect("claim");
    assert!(none.is_empty());
    assert_eq!(store.renew_claims(&claim("a", -1)).await.expect("lapse"), 2);
    let taken = store
        .claim_pending(&claim("d", 60), Takeover::Expired, i64::MIN, 10)
        .await
        .expect("claim");
    assert_eq!(event_ids(&taken), ["e1", "e2"]);
    assert_eq!(store.renew_claims(&claim("a", 60)).await.expect("renew"), 0);

    // One process: everything is its own.
    let all = store
        .claim_pending(&claim("e", 60), Takeover::All, i64::MIN, 10)
        .await
        .expect("all");
    assert_eq!(event_ids(&all), ["e1", "e2", "e3", "e4"]);
    assert_eq!(all[0], notification("e1", "h", 1));
    // Settling is unaffected by claims.
    store.settle("e1", "h").await.expect("settle");
    assert_eq!(store.depth().await.expect("depth"), 3);
}

pub async fn concurrent_claims_are_disjoint(store: Arc<dyn PushStore>) {
    let batch: Vec<Notification> = (0..200)
        .map(|i| notification(&format!("e{i}"), "h", i))
        .collect();
    store.enqueue(&batch).await.expect("enqueue");
    let claimers: Vec<_> = (0..4)
        .map(|r| {
            let store = store.clone();
            tokio::spawn(async move {
                let me = claim(&format!("r{r}"), 60);
                let mut got = Vec::new();
                loop {
                    let page = store
                        .claim_pending(&me, Takeover::Expired, i64::MIN, 7)
                        .await
                        .expect("claim");
                    if page.is_empty() {
                        return got;
                    }
                    got.extend(page.into_iter().map(|n| n.event_id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.await.expect("claimer"));
    }
    all.sort();
    let mut expected: Vec<String> = batch.iter().map(|n| n.event_id.clone()).collect();
    expected.sort();
    assert_eq!(all, expected, "every notification claimed exactly once");
}
