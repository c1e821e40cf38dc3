//! The PostgreSQL backplane: replicas sharing one database signal each
//! other with `LISTEN`/`NOTIFY`.
//!
//! Every append of events ([`TaskStore::append`](crate::store::TaskStore::append))
//! notifies the events channel, in its transaction, with `"<seq> <task_id>"`
//! of its last event; [`Backplane::request_cancel`] notifies the cancel
//! channel with the task id. A [`PostgresBackplane`] listens on both over a
//! connection of its own (outside the pool: a pooled connection would be
//! handed to other callers) and passes what it hears on as [`Signal`]s.
//!
//! `LISTEN`/`NOTIFY` channels belong to the whole database, so each schema
//! has its own pair ([`PostgresOptions::schema`](super::PostgresOptions::schema)):
//! `abacus_events` and `abacus_cancel` for the default (`public`) schema,
//! suffixed with the schema's name otherwise.
//!
//! Notifications sent while no connection listens are lost. So after every
//! (re)connection, the first included, the backplane sends
//! [`Signal::Resync`]: every follower re-reads the log. The same holds when
//! the core falls behind: once the signal buffer is full, further events
//! are coalesced into one `Resync` (a follower re-reads the log anyway);
//! cancel requests are kept (up to a bound) until there is room.

use super::{PostgresDatabase, POOL_TIMEOUT};
use crate::store::log::{Backplane, Signal};
use crate::store::StoreError;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::future::{pending, poll_fn};
use std::pin::pin;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

/// Tells the listening replicas: parameters channel, payload.
pub(super) const NOTIFY: &str = "SELECT pg_notify($1, $2)";
/// Signals buffered for the core before events are coalesced.
const SIGNAL_BUFFER: usize = 1024;
/// Cancel requests kept while the signal buffer is full; more are dropped.
const CANCEL_BACKLOG: usize = 1024;
/// The first wait before reconnecting; it doubles up to [`RECONNECT_MAX`].
const RECONNECT_MIN: Duration = Duration::from_millis(100);
/// The longest wait before reconnecting.
const RECONNECT_MAX: Duration = Duration::from_secs(10);
/// How often the listening connection proves that it still works (a dead
/// peer without a TCP reset would otherwise go unnoticed).
const PING_EVERY: Duration = Duration::from_secs(15);
/// PostgreSQL's longest identifier (and channel name, and application name).
const MAX_NAME: usize = 63;

/// The two channels of one schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Channels {
    /// Appended events: `"<seq> <task_id>"`.
    pub events: String,
    /// Cancel requests: the task id.
    pub cancel: String,
}

impl Channels {
    /// The channels of the tables in `schema` (`None`: the default one).
    pub fn of(schema: Option<&str>) -> Self {
        match schema {
            None | Some("public") => Self {
                events: "abacus_events".into(),
                cancel: "abacus_cancel".into(),
            },
            Some(schema) => Self {
                events: channel("abacus_events", schema),
                cancel: channel("abacus_cancel", schema),
            },
        }
    }
}

/// `<base>_<schema>`, or with a hash of the schema's name when that is too
/// long a name (`LISTEN` would shorten it, `pg_notify` refuse it).
fn channel(base: &str, schema: &str) -> String {
    let name = format!("{base}_{schema}");
    if name.len() <= MAX_NAME {
        return name;
    }
    // FNV-1a: stable across builds and processes, unlike std's hashers.
    let hash = schema.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{base}_{hash:016x}")
}

/// Replicas' signals over PostgreSQL's `LISTEN`/`NOTIFY` (see the module
/// docs): a background task holds a listening connection, reconnecting
/// with a capped, jittered backoff whenever it fails.
///
/// ```no_run
/// use abacus::store::{Backplane, PostgresBackplane, PostgresDatabase, Signal};
/// # async fn demo() -> Result<(), abacus::store::StoreError> {
/// let db = PostgresDatabase::connect("postgres://abacus:abacus@127.0.0.1:5432/abacus").await?;
/// let backplane = PostgresBackplane::start(&db);
/// let mut signals = backplane.signals();
/// assert_eq!(signals.recv().await, Some(Signal::Resync));
/// backplane.request_cancel("task-1").await?;
/// assert_eq!(
///     signals.recv().await,
///     Some(Signal::Cancel { task_id: "task-1".into() })
/// );
/// # Ok(())
/// # }
/// ```
pub struct PostgresBackplane {
    db: PostgresDatabase,
    channels: Channels,
    application_name: String,
    signals: Mutex<Option<mpsc::Receiver<Signal>>>,
    listener: JoinHandle<()>,
}

impl std::fmt::Debug for PostgresBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackplane")
            .field("events", &self.channels.events)
            .field("cancel", &self.channels.cancel)
            .field("application_name", &self.application_name)
            .finish()
    }
}

impl PostgresBackplane {
    /// Starts listening on the channels of `db`'s schema, in the
    /// background: the first [`Signal::Resync`] comes once the connection
    /// listens. Must be called within a Tokio runtime.
    pub fn start(db: &PostgresDatabase) -> Self {
        let channels = Channels::of(db.schema());
        let mut application_name = format!("abacus listen {}", channels.events);
        application_name.truncate(MAX_NAME);
        let mut config = db.config().clone();
        config.application_name(&application_name);
        let (tx, rx) = mpsc::channel(SIGNAL_BUFFER);
        let listener = tokio::spawn(listen(config, channels.clone(), db.query_timeout(), tx));
        Self {
            db: db.clone(),
            channels,
            application_name,
            signals: Mutex::new(Some(rx)),
            listener,
        }
    }

    /// The channel appends are announced on.
    pub fn events_channel(&self) -> &str {
        &self.channels.events
    }

    /// The channel cancel requests go to.
    pub fn cancel_channel(&self) -> &str {
        &self.channels.cancel
    }

    /// The `application_name` of the listening connection (as
    /// `pg_stat_activity` shows it).
    pub fn application_name(&self) -> &str {
        &self.application_name
    }
}

impl Drop for PostgresBackplane {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

#[async_trait]
impl Backplane for PostgresBackplane {
    fn signals(&self) -> mpsc::Receiver<Signal> {
        let taken = self
            .signals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        taken.unwrap_or_else(|| {
            tracing::warn!("backplane signals taken twice: the second receiver gets none");
            mpsc::channel(1).1
        })
    }

    async fn request_cancel(&self, task_id: &str) -> Result<(), StoreError> {
        let channel: &str = &self.channels.cancel;
        bounded!(self.db, "request cancel", |client| {
            let stmt = client
                .prepare_cached(NOTIFY)
                .await
                .map_err(|e| StoreError::postgres("prepare request cancel", e))?;
            client
                .execute(&stmt, &[&channel, &task_id])
                .await
                .map_err(|e| StoreError::postgres("request cancel", e))?;
            Ok(())
        })
    }
}

/// Signals waiting for room in the buffer.
#[derive(Default)]
struct Backlog {
    /// Events were dropped (or a reconnection happened): a `Resync` is due.
    resync: bool,
    cancels: VecDeque<String>,
}

impl Backlog {
    fn is_empty(&self) -> bool {
        !self.resync && self.cancels.is_empty()
    }

    fn add(&mut self, signal: Signal) {
        match signal {
            Signal::Event { .. } | Signal::Resync => self.resync = true,
            Signal::Cancel { task_id } if self.cancels.len() < CANCEL_BACKLOG => {
                self.cancels.push_back(task_id);
            }
            Signal::Cancel { task_id } => {
                tracing::warn!(%task_id, "backplane backlog full: cancel request dropped");
            }
        }
    }

    /// The next signal to send: cancel requests first.
    fn take(&mut self) -> Option<Signal> {
        if let Some(task_id) = self.cancels.pop_front() {
            return Some(Signal::Cancel { task_id });
        }
        std::mem::take(&mut self.resync).then_some(Signal::Resync)
    }
}

/// Sends `signal` now, or keeps it in `backlog` (behind what waits there
/// already) until there is room.
fn offer(tx: &mpsc::Sender<Signal>, backlog: &mut Backlog, signal: Signal) {
    if !backlog.is_empty() {
        backlog.add(signal);
        return;
    }
    if let Err(mpsc::error::TrySendError::Full(signal)) = tx.try_send(signal) {
        backlog.add(signal);
    }
}

/// What a notification on `channel` means; `None` for another channel.
fn parse(channels: &Channels, channel: &str, payload: &str) -> Option<Signal> {
    if channel == channels.cancel {
        return Some(Signal::Cancel {
            task_id: payload.to_owned(),
        });
    }
    if channel != channels.events {
        return None;
    }
    let event = payload
        .split_once(' ')
        .and_then(|(seq, id)| Some((seq.parse().ok()?, id)));
    Some(match event {
        Some((seq, task_id)) => Signal::Event {
            task_id: task_id.to_owned(),
            seq,
        },
        None => {
            tracing::warn!(payload, "backplane: malformed event notification");
            Signal::Resync
        }
    })
}

/// Between half and all of the `failures`-th backoff step.
fn backoff(failures: u32) -> Duration {
    let step = RECONNECT_MIN
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(RECONNECT_MAX);
    let half = step / 2;
    let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    // uuid's v4 generator is a fast thread-local RNG; no other dependency.
    let r = uuid::Uuid::new_v4().as_u64_pair().0;
    half + Duration::from_nanos(r % span)
}

/// The listener task: sessions, and the waits between them, until the
/// receiver of the signals is gone.
async fn listen(
    config: tokio_postgres::Config,
    channels: Channels,
    query_timeout: Duration,
    tx: mpsc::Sender<Signal>,
) {
    let mut backlog = Backlog::default();
    let mut failures = 0u32;
    loop {
        match session(
            &config,
            &channels,
            query_timeout,
            &tx,
            &mut backlog,
            &mut failures,
        )
        .await
        {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "backplane: listening connection failed"),
        }
        failures = failures.saturating_add(1);
        let mut wait = pin!(tokio::time::sleep(backoff(failures)));
        loop {
            tokio::select! {
                _ = &mut wait => break,
                _ = tx.closed() => return,
                permit = tx.reserve(), if !backlog.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(signal) = backlog.take() {
                            permit.send(signal);
                        }
                    }
                    Err(_) => return,
                },
            }
        }
    }
}

/// One listening connection, until it fails (an error) or nobody receives
/// the signals any more (`Ok`). `failures` is reset once it listens.
async fn session(
    config: &tokio_postgres::Config,
    channels: &Channels,
    query_timeout: Duration,
    tx: &mpsc::Sender<Signal>,
    backlog: &mut Backlog,
    failures: &mut u32,
) -> Result<(), StoreError> {
    let connect = tokio::time::timeout(
        config
            .get_connect_timeout()
            .copied()
            .unwrap_or(POOL_TIMEOUT)
            + query_timeout,
        config.connect(NoTls),
    );
    let (client, mut conn) = connect
        .await
        .map_err(|_| StoreError::Backend("postgres listen: connect timed out".into()))?
        .map_err(|e| StoreError::postgres("listen connect", e))?;
    // Validated names (lowercase letters, digits, `_`): safe to quote.
    let sql = format!(
        r#"LISTEN "{}"; LISTEN "{}""#,
        channels.events, channels.cancel
    );
    let mut listen = pin!(tokio::time::timeout(
        query_timeout,
        client.batch_execute(&sql)
    ));
    let mut listening = false;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ping = None;
    loop {
        tokio::select! {
            message = poll_fn(|cx| conn.poll_message(cx)) => match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if let Some(signal) = parse(channels, n.channel(), n.payload()) {
                        offer(tx, backlog, signal);
                    }
                }
                Some(Ok(AsyncMessage::Notice(notice))) => {
                    tracing::debug!(notice = %notice, "backplane: server notice");
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(StoreError::postgres("listen", e)),
                None => return Err(StoreError::Backend("postgres listen: connection closed".into())),
            },
            done = &mut listen, if !listening => {
                done.map_err(|_| StoreError::Backend("postgres listen: LISTEN timed out".into()))?
                    .map_err(|e| StoreError::postgres("listen", e))?;
                listening = true;
                *failures = 0;
                tracing::debug!(events = %channels.events, "backplane listening");
                // Whatever was sent while nobody listened is lost.
                offer(tx, backlog, Signal::Resync);
            },
            _ = ticker.tick(), if listening && ping.is_none() => {
                ping = Some(Box::pin(tokio::time::timeout(
                    query_timeout,
                    client.simple_query("SELECT 1"),
                )));
            },
            answer = async {
                match ping.as_mut() {
                    Some(ping) => ping.await,
                    None => pending().await,
                }
            }, if ping.is_some() => {
                ping = None;
                answer
                    .map_err(|_| StoreError::Backend("postgres listen: ping timed out".into()))?
                    .map_err(|e| StoreError::postgres("listen ping", e))?;
            },
            permit = tx.reserve(), if !backlog.is_empty() => match permit {
                Ok(permit) => {
                    if let Some(signal) = backlog.take() {
                        permit.send(signal);
                    }
                }
                Err(_) => return Ok(()),
            },
            _ = tx.closed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_per_schema_and_fit() {
        assert_eq!(Channels::of(None), Channels::of(Some("public")));
        assert_eq!(Channels::of(None).events, "abacus_events");
        let tenant = Channels::of(Some("tenant_a"));
        assert_eq!(
            (tenant.events.as_str(), tenant.cancel.as_str()),
            ("abacus_events_tenant_a", "abacus_cancel_tenant_a")
        );
        let long = "s".repeat(63);
        let other = format!("{}t", "s".repeat(62));
        let (a, b) = (Channels::of(Some(&long)), Channels::of(Some(&other)));
        assert!(a.events.len() <= MAX_NAME && a.cancel.len() <= MAX_NAME);
        assert_ne!(a.events, b.events);
        assert_eq!(a, Channels::of(Some(&long)), "stable");
    }

    #[test]
    fn notifications_become_signals() {
        let c = Channels::of(Some("x"));
        assert_eq!(
            parse(&c, &c.events, "12 task 1"),
            Some(Signal::Event {
                task_id: "task 1".into(),
                seq: 12
            })
        );
        assert_eq!(parse(&c, &c.events, "junk"), Some(Signal::Resync));
        assert_eq!(
            parse(&c, &c.cancel, "t"),
            Some(Signal::Cancel {
                task_id: "t".into()
            })
        );
        assert_eq!(parse(&c, "abacus_events", "1 t"), None);
    }

    #[test]
    fn a_full_buffer_coalesces_events_and_keeps_cancels() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut backlog = Backlog::default();
        let event = |seq| Signal::Event {
            task_id: "t".into(),
            seq,
        };
        for seq in 1..=4 {
            offer(&tx, &mut backlog, event(seq));
        }
        offer(
            &tx,
            &mut backlog,
            Signal::Cancel {
                task_id: "c".into(),
            },
        );
        offer(&tx, &mut backlog, event(5));
        assert_eq!(rx.try_recv().ok(), Some(event(1)));
        assert_eq!(rx.try_recv().ok(), Some(event(2)));
        assert!(rx.try_recv().is_err());
        assert_eq!(
            backlog.take(),
            Some(Signal::Cancel {
                task_id: "c".into()
            })
        );
        assert_eq!(backlog.take(), Some(Signal::Resync));
        assert_eq!(backlog.take(), None);
    }

    #[test]
    fn backoff_grows_to_its_cap() {
        assert!(backoff(1) <= RECONNECT_MIN && backoff(1) >= RECONNECT_MIN / 2);
        assert!(backoff(4) >= RECONNECT_MIN * 4);
        for n in [10, 20, 1000, u32::MAX] {
            let d = backoff(n);
            assert!(d <= RECONNECT_MAX && d >= RECONNECT_MAX / 2, "{n}: {d:?}");
        }
    }
}
