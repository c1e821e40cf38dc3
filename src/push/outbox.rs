//! The push sink: the durable outbox and the delivery queues behind it.
//!
//! A task event with push configs becomes one [`Notification`] per config,
//! written to the outbox ([`PushStore::enqueue`]) before the event is
//! acknowledged; the notifications are then handed to an in-memory queue
//! per `(task, config)`. One worker per non-empty queue delivers in order
//! (the task's events reach each receiver in the order they happened),
//! so a slow receiver delays only its own queue, never the task or other
//! receivers. A delivered notification is removed from the outbox; one
//! that cannot be delivered before the deadline is given up ("dead":
//! counted, logged with its task, config and event ids, never its token,
//! and removed). On start, the pending notifications this process may
//! deliver are loaded back into the queues before the server takes
//! requests, so deliveries resume after a restart or a crash in their
//! original order: all of them on SQLite or memory; on a PostgreSQL outbox
//! shared by replicas, its own and those whose claims lapsed (see
//! [`Sharing`]).

use super::deliver::{Attempted, Deliverer, DeliverySettings, Failure};
use super::guard::{AllowHttp, Guard};
use crate::protocol::types::{StreamResponse, TaskPushNotificationConfig};
use crate::store::{Notification, OutboxClaim, PushStore, StoreError, Takeover, TaskOwner};
use abacus_layers::retry::Backoff;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// Pending notifications loaded per store read on start.
const RESUME_PAGE: usize = 512;

/// How push notifications are delivered.
///
/// ```
/// use abacus::push::PushSettings;
/// use std::time::Duration;
/// let settings = PushSettings {
///     allow: vec!["127.0.0.1/32".into()],
///     allow_http: abacus::push::guard::AllowHttp::Yes,
///     deadline: Duration::from_secs(60),
///     ..PushSettings::default()
/// };
/// assert_eq!(settings.delivery.host_concurrency, 8);
/// ```
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// CIDRs and host names that may be targeted although private or
    /// loopback (`--push-allow`).
    pub allow: Vec<String>,
    /// Whether `http://` receivers are accepted (`--push-allow-http`).
    pub allow_http: AllowHttp,
    /// How long a notification is retried before it is given up
    /// (`--push-deadline`), counted from its event.
    pub deadline: Duration,
    /// Configs one task may have at most.
    pub max_configs_per_task: usize,
    /// The outbound stacks.
    pub delivery: DeliverySettings,
    /// CA bundle for `https://` receivers (else the system's trust store).
    pub ca: Option<std::path::PathBuf>,
    /// Who this process is to the outbox, and whether others share it.
    pub replica: OutboxReplica,
}

/// Whether other processes deliver from the same outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// One process (SQLite, memory): what is pending at start is ours.
    Alone,
    /// Replicas on one PostgreSQL database: each delivers what it claimed,
    /// renews its claims, and takes over those of a replica that stopped.
    Shared,
}

/// This process's identity to the outbox: the replica id its claims are
/// held under, how long a claim lasts unless renewed (the task lease,
/// `--lease-secs`), and whether other replicas share the outbox.
///
/// ```
/// use abacus::push::{OutboxReplica, Sharing};
/// use std::time::Duration;
/// let me = OutboxReplica {
///     id: "replica-a".into(),
///     lease: Duration::from_secs(30),
///     sharing: Sharing::Shared,
/// };
/// assert_eq!(me.renew_every(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxReplica {
    /// The replica id (`--replica-id`).
    pub id: String,
    /// How long a claim lasts unless renewed.
    pub lease: Duration,
    /// Whether other replicas deliver from the same outbox.
    pub sharing: Sharing,
}

impl Default for OutboxReplica {
    fn default() -> Self {
        Self {
            id: "local".into(),
            lease: Duration::from_secs(30),
            sharing: Sharing::Alone,
        }
    }
}

impl OutboxReplica {
    /// How often claims are renewed and lapsed ones looked for: a third
    /// of the lease (a claim survives two missed renewals), at most 5 s
    /// (a dead replica's deliveries wait at most the lease plus that).
    pub fn renew_every(&self) -> Duration {
        (self.lease / 3).clamp(Duration::from_millis(50), Duration::from_secs(5))
    }

    fn claim(&self) -> OutboxClaim {
        OutboxClaim::for_lease(&self.id, self.lease)
    }
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            allow_http: AllowHttp::No,
            deadline: Duration::from_secs(3600),
            max_configs_per_task: 16,
            delivery: DeliverySettings::default(),
            ca: None,
            replica: OutboxReplica::default(),
        }
    }
}

/// Why push delivery could not start.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// An entry of the allow-list is neither a CIDR nor a host name.
    #[error(transparent)]
    AllowList(#[from] super::guard::AllowListError),
    /// The CA bundle for `https://` receivers could not be loaded.
    #[error(transparent)]
    Tls(#[from] crate::http::tls::TlsError),
    /// The outbox could not be read.
    #[error("push outbox: {0}")]
    Store(#[from] StoreError),
}

/// The push sink: configs, outbox and delivery. Cheap to clone.
///
/// ```
/// use abacus::push::{Pusher, PushSettings};
/// use abacus::store::MemoryPushStore;
/// use std::sync::Arc;
/// # async fn demo() -> Result<(), abacus::push::PushError> {
/// let pusher = Pusher::start(Arc::new(MemoryPushStore::new()), PushSettings::default()).await?;
/// assert_eq!(pusher.queued(), 0);
/// # Ok(())
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Clone)]
pub struct Pusher {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn PushStore>,
    deliverer: Deliverer,
    settings: PushSettings,
    queues: Mutex<HashMap<QueueKey, Queue>>,
    /// The last sequence number handed out (microseconds, strictly
    /// increasing; see [`Inner::next_seq`]).
    seq: AtomicI64,
    /// Notifications in the outbox (the `a2a_push_outbox_depth` gauge).
    depth: AtomicI64,
}

/// One delivery queue: a task's notifications for one of its configs.
type QueueKey = (String, String);

struct Queue {
    items: VecDeque<Notification>,
    /// Set when the config is deleted: the worker stops.
    cancelled: Arc<AtomicBool>,
}

/// How a notification left the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Dead,
    /// Its config was deleted.
    Dropped,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Dead => "dead",
            Outcome::Dropped => "dropped",
        }
    }
}

impl Pusher {
    /// Starts delivering: claims the pending notifications of `store` that
    /// are this process's ([`Sharing`]) and loads them into the queues (so
    /// deliveries resume in order before new events arrive), spawns their
    /// workers and, on a shared outbox, the loop that renews this replica's
    /// claims and takes over those of replicas that stopped. Must run
    /// inside a Tokio runtime.
    pub async fn start(
        store: Arc<dyn PushStore>,
        settings: PushSettings,
    ) -> Result<Self, PushError> {
        let guard = Arc::new(Guard::new(&settings.allow, settings.allow_http)?);
        let deliverer = Deliverer::new(guard, settings.delivery.clone(), settings.ca.as_deref())?;
        let pusher = Pusher {
            inner: Arc::new(Inner {
                store,
                deliverer,
                settings,
                queues: Mutex::new(HashMap::new()),
                seq: AtomicI64::new(now_micros()),
                depth: AtomicI64::new(0),
            }),
        };
        let replica = &pusher.inner.settings.replica;
        let takeover = match replica.sharing {
            Sharing::Alone => Takeover::All,
            Sharing::Shared => Takeover::OwnAndExpired,
        };
        // The gauge is exported from the start, at 0 when nothing waits.
        pusher.inner.add_depth(0);
        let resumed = pusher.inner.claim(takeover).await?;
        if resumed > 0 {
            tracing::info!(
                pending = resumed,
                "push notifications resumed from the outbox"
            );
        }
        if replica.sharing == Sharing::Shared {
            tokio::spawn(keep_claims(
                Arc::downgrade(&pusher.inner),
                replica.renew_every(),
            ));
        }
        Ok(pusher)
    }

    /// The store configs and the outbox live in.
    pub fn store(&self) -> &Arc<dyn PushStore> {
        &self.inner.store
    }

    /// The settings it was started with.
    pub fn settings(&self) -> &PushSettings {
        &self.inner.settings
    }

    /// Notifications waiting in the in-memory queues (delivering or
    /// waiting to be retried).
    pub fn queued(&self) -> usize {
        self.inner.lock().values().map(|q| q.items.len()).sum()
    }

    /// Checks a config a client registers: its URL (scheme, and the
    /// addresses its host resolves to, through the SSRF guard) and that
    /// its token and credentials can be sent. A host name that does not
    /// resolve now is accepted: it is checked again at delivery.
    pub(crate) async fn check_config(
        &self,
        config: &TaskPushNotificationConfig,
    ) -> Result<(), String> {
        let guard = self.inner.deliverer.guard();
        let target = guard.check_url(&config.url).map_err(|r| r.to_string())?;
        match guard.resolve(&target).await {
            Ok(_) => {}
            Err(r) if r.is_unresolvable() => {}
            Err(r) => return Err(r.to_string()),
        }
        super::deliver::check_headers(config)
    }

    /// Writes one event's notifications (one per config) to the outbox
    /// and queues them for delivery. Returns once they are durable.
    pub(crate) async fn accept(
        &self,
        owner: &TaskOwner,
        task_id: &str,
        configs: &[TaskPushNotificationConfig],
        event: &StreamResponse,
    ) -> Result<(), StoreError> {
        let payload = serde_json::to_string(event)
            .map_err(|e| StoreError::Backend(format!("cannot encode the notification: {e}")))?;
        let event_id = uuid::Uuid::now_v7().to_string();
        let created_at = micros(Utc::now());
        let (traceparent, tracestate) = crate::otel::current_context();
        // A sequence number each: resuming pages by `seq`, and a page
        // ending inside a run of equal numbers would skip the rest.
        let batch: Vec<Notification> = configs
            .iter()
            .map(|config| Notification {
                seq: self.inner.next_seq(),
                event_id: event_id.clone(),
                owner: owner.clone(),
                task_id: task_id.to_string(),
                config: config.clone(),
                payload: payload.clone(),
                created_at,
                traceparent: traceparent.clone(),
                tracestate: tracestate.clone(),
            })
            .collect();
        let claim = self.inner.settings.replica.claim();
        self.inner.store.enqueue_claimed(&batch, &claim).await?;
        self.inner.add_depth(batch.len() as i64);
        for n in batch {
            self.inner.hand(n);
        }
        Ok(())
    }

    /// Stops delivering for a deleted config (its outbox rows are
    /// removed with it by the store).
    pub(crate) fn forget(&self, task_id: &str, config_id: &str) {
        let removed = self
            .inner
            .lock()
            .remove(&(task_id.to_string(), config_id.to_string()));
        if let Some(q) = removed {
            q.cancelled.store(true, Ordering::Relaxed);
            let n = q.items.len() as u64;
            if n > 0 {
                metrics::counter!("a2a_push_deliveries_total", "outcome" => Outcome::Dropped.label())
                    .increment(n);
                self.inner.add_depth(-(n as i64));
            }
        }
    }
}

/// Renews this replica's claims and takes over lapsed ones every `every`,
/// until the pusher is dropped.
async fn keep_claims(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let replica = &inner.settings.replica;
        if let Err(e) = inner.store.renew_claims(&replica.claim()).await {
            // Past the lease, another replica delivers them too (at least
            // once; receivers deduplicate by event id).
            tracing::warn!(error = %e, "push notification claims not renewed");
        }
        match inner.claim(Takeover::Expired).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                taken_over = n,
                "push notifications of a replica that stopped taken over"
            ),
            Err(e) => tracing::warn!(error = %e, "push outbox not checked for lapsed claims"),
        }
    }
}

impl Inner {
    /// Claims what `takeover` selects, page by page, and queues it;
    /// returns how many notifications it queued.
    async fn claim(self: &Arc<Self>, takeover: Takeover) -> Result<u64, StoreError> {
        let claim = self.settings.replica.claim();
        let mut after = i64::MIN;
        let mut queued = 0u64;
        loop {
            let page = self
                .store
                .claim_pending(&claim, takeover, after, RESUME_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            queued += page.len() as u64;
            self.seq.fetch_max(after, Ordering::Relaxed);
            self.add_depth(page.len() as i64);
            for n in page {
                self.hand(n);
            }
        }
        Ok(queued)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<QueueKey, Queue>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A strictly increasing sequence number: the wall clock in
    /// microseconds, or one more than the last when the clock has not
    /// moved (or went back). Started above every pending notification, so
    /// new events sort after resumed ones.
    fn next_seq(&self) -> i64 {
        let now = now_micros();
        let prev = self
            .seq
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last.saturating_add(1)))
            })
            .unwrap_or(now);
        now.max(prev.saturating_add(1))
    }

    fn add_depth(&self, n: i64) {
        let depth = self.depth.fetch_add(n, Ordering::Relaxed) + n;
        metrics::gauge!("a2a_push_outbox_depth").set(depth.max(0) as f64);
    }

    /// Queues `n`; starts the queue's worker when it was idle.
    fn hand(self: &Arc<Self>, n: Notification) {
        let key = (n.task_id.clone(), n.config_id().to_string());
        let mut queues = self.lock();
        if let Some(q) = queues.get_mut(&key) {
            q.items.push_back(n);
            return;
        }
        let cancelled = Arc::new(AtomicBool::new(false));
        queues.insert(
            key.clone(),
            Queue {
                items: VecDeque::from([n]),
                cancelled: cancelled.clone(),
            },
        );
        drop(queues);
        tokio::spawn(self.clone().work(key, cancelled));
    }

    /// Delivers the queue's notifications one after the other; exits (and
    /// removes the queue) when it is empty.
    async fn work(self: Arc<Self>, key: QueueKey, cancelled: Arc<AtomicBool>) {
        loop {
            let next = {
                let mut queues = self.lock();
                match queues.get_mut(&key) {
                    Some(q) if Arc::ptr_eq(&q.cancelled, &cancelled) => match q.items.front() {
                        Some(n) => n.clone(),
                        None => {
                            queues.remove(&key);
                            return;
                        }
                    },
                    // Deleted (and perhaps created again: not ours).
                    _ => return,
                }
            };
            let outcome = self.deliver(&next, &cancelled).await;
            // A deleted config's notifications were counted by `forget`.
            if outcome == Outcome::Dropped || cancelled.load(Ordering::Relaxed) {
                return;
            }
            if let Err(e) = self.store.settle(&next.event_id, next.config_id()).await {
                // Still in the outbox: delivered again after a restart
                // (at least once; the event id lets receivers deduplicate).
                tracing::warn!(task_id = %next.task_id, config_id = %next.config_id(), error = %e,
                    "push notification settled but not removed from the outbox");
            }
            metrics::counter!("a2a_push_deliveries_total", "outcome" => outcome.label())
                .increment(1);
            self.add_depth(-1);
            let mut queues = self.lock();
            if let Some(q) = queues
                .get_mut(&key)
                .filter(|q| Arc::ptr_eq(&q.cancelled, &cancelled))
            {
                q.items.pop_front();
            }
        }
    }

    /// Attempts `n` until it is delivered, refused for good, past its
    /// deadline, or its config is deleted.
    async fn deliver(&self, n: &Notification, cancelled: &AtomicBool) -> Outcome {
        let deadline = n.created_at
            + chrono::Duration::from_std(self.settings.deadline).unwrap_or(chrono::Duration::MAX);
        let cap =
            (self.settings.deadline / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
        let backoff = Backoff::exponential((cap / 60).max(Duration::from_millis(50)), cap);
        let mut round = 0u32;
        loop {
            if cancelled.load(Ordering::Relaxed) {
                return Outcome::Dropped;
            }
            match self.deliverer.attempt(n).await {
                Attempted::Delivered => {
                    let age = (Utc::now() - n.created_at).to_std().unwrap_or_default();
                    metrics::histogram!("a2a_push_delivery_seconds").record(age.as_secs_f64());
                    return Outcome::Delivered;
                }
                Attempted::Never(failure) => {
                    self.dead(n, &failure, "refused");
                    return Outcome::Dead;
                }
                Attempted::Later { failure, after } => {
                    let wait = jittered(backoff.ceiling(round)).max(after.unwrap_or_default());
                    round = round.saturating_add(1);
                    let left = (deadline - Utc::now()).to_std().unwrap_or_default();
                    if wait >= left {
                        self.dead(n, &failure, "deadline");
                        return Outcome::Dead;
                    }
                    tracing::debug!(task_id = %n.task_id, config_id = %n.config_id(), reason = %failure,
                        retry_in_ms = wait.as_millis() as u64, "push notification not delivered yet");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn dead(&self, n: &Notification, failure: &Failure, why: &'static str) {
        tracing::warn!(
            task_id = %n.task_id,
            config_id = %n.config_id(),
            event_id = %n.event_id,
            reason = %failure,
            kind = failure.label(),
            gave_up = why,
            "push notification given up"
        );
    }
}

/// Between half and all of `d` (equal jitter: retries of many queues
/// spread out, none waits much less than the backoff asks).
fn jittered(d: Duration) -> Duration {
    let half = d / 2;
    let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    // uuid's v4 generator is a fast thread-local RNG; no other dependency.
    let r = uuid::Uuid::new_v4().as_u64_pair().0;
    half + Duration::from_nanos(r % span)
}

fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// `t` truncated to microseconds, the precision the SQL stores keep.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_all() {
        for _ in 0..100 {
            let d = jittered(Duration::from_millis(100));
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_millis(100),
                "{d:?}"
            );
        }
    }
}
