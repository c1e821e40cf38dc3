//! The response cache's second tier, shared by the replicas: Redis.
//!
//! ```text
//! restamp ─► cache (moka, in-process) ─► remote cache ─► circuit breaker ─► core
//!                                            │
//!                         circuit breaker ("redis") ─► timeout ─► RedisRemote ─► Redis
//! ```
//!
//! With `--redis-url`, a direct reply missed by the in-process cache is
//! looked up in Redis; found, it is the reply (and fills the in-process
//! cache), else the core answers and the reply is written to Redis without
//! the request waiting for it. The Redis calls go through our own layers:
//! a timeout (`--redis-timeout-ms`, 50 ms by default) and a breaker that
//! opens after [`BREAKER_FAILURES`] failures in a row for
//! [`BREAKER_OPEN`]. So Redis never fails a request, and a Redis outage
//! costs a request at most the timeout until the breaker opens, then
//! nothing; the server starts, and serves from the in-process tier alone,
//! when Redis is down, and the connection comes back by itself
//! (`redis::aio::ConnectionManager`).
//!
//! What is stored: the reply `Message` as JSON, under
//! `NAMESPACE:reply:HEX`, `HEX` the SHA-256 of the agent's name and version
//! and the request's cache key (so no question text in key names, and keys
//! of bounded length), for `--cache-ttl-secs`. A stored reply gets fresh
//! ids from the restamp layer, like an in-process hit. Redis is trusted
//! like the in-process cache: whoever writes these keys writes replies.
//! A value that does not decode is a miss (and is overwritten).

use crate::config::StackConfig;
use crate::core::Core;
use crate::protocol::types::Message;
use crate::protocol::{A2ARequest, A2AResponse, Reply, Unary};
use abacus_layers::circuit_breaker::{CircuitBreaker, CircuitBreakerHandle, CircuitBreakerLayer};
use abacus_layers::remote_cache::{RemoteCache, RemoteCacheHandle, RemoteCacheLayer, RemoteOp};
use abacus_layers::timeout::{Timeout, TimeoutLayer};
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tower::util::Either;
use tower::{Layer, Service, ServiceBuilder};

/// Consecutive failed Redis calls that open its breaker.
pub const BREAKER_FAILURES: u32 = 3;
/// How long the Redis breaker stays open before a probe.
pub const BREAKER_OPEN: Duration = Duration::from_secs(5);
/// Most writes to Redis in flight at once (beyond: not written).
pub const MAX_WRITES_IN_FLIGHT: usize = 256;
/// How long the start-up `PING` waits before reporting Redis unreachable
/// (the connection attempts go on).
const WARM_UP: Duration = Duration::from_secs(1);

/// A Redis server as the store of a
/// [`RemoteCacheLayer`](abacus_layers::remote_cache::RemoteCacheLayer):
/// `GET NAMESPACE:KEY` and `SET NAMESPACE:KEY VALUE PX TTL`, on one
/// multiplexed connection that reconnects by itself.
///
/// Nothing connects before the first call (which starts the connection and
/// waits for it like any command would, bounded by the timeout around this
/// service); [`warm_up`](Self::warm_up) starts it in the background.
/// Clones share the connection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use abacus::stack::remote_cache::RedisRemote;
/// use abacus_layers::remote_cache::RemoteOp;
/// use abacus_layers::timeout::TimeoutLayer;
/// use std::time::Duration;
/// use tower::{Layer, ServiceExt};
///
/// // Nothing listens on port 1: the call fails within its timeout.
/// let redis = RedisRemote::new("redis://127.0.0.1:1/0", "abacus").unwrap();
/// let redis = TimeoutLayer::new(Duration::from_millis(50)).layer(redis);
/// assert!(redis.oneshot(RemoteOp::Get("k".into())).await.is_err());
/// assert!(RedisRemote::new("not a url", "abacus").is_err());
/// # }
/// ```
#[derive(Clone)]
pub struct RedisRemote {
    client: redis::Client,
    connection: Arc<OnceLock<redis::RedisResult<ConnectionManager>>>,
    namespace: Arc<str>,
}

impl std::fmt::Debug for RedisRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("RedisRemote")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Reconnection: attempts 100 ms apart at first, at most 1 s, six of them,
/// then again on the next command that finds no connection. A connection
/// attempt gives up after 1 s; the timeout around the service bounds what
/// a request waits in any case.
fn connection_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_min_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_secs(1))
        .set_number_of_retries(6)
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
}

impl RedisRemote {
    /// A client of the Redis server at `url` (`redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`,
    /// or `redis+unix:///PATH`; no TLS), its keys prefixed with `namespace:`.
    /// Only the URL is checked here: nothing connects.
    pub fn new(url: &str, namespace: &str) -> redis::RedisResult<Self> {
        Ok(Self {
            client: redis::Client::open(url)?,
            connection: Arc::new(OnceLock::new()),
            namespace: Arc::from(namespace),
        })
    }

    /// Connects in the background (a `PING`), so that the first request
    /// does not wait for the connection; a Redis that is down is reported
    /// once, the requests go on without it. Needs a Tokio runtime (does
    /// nothing without one).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let redis = abacus::stack::remote_cache::RedisRemote::new("redis://127.0.0.1:1/0", "abacus").unwrap();
    /// redis.warm_up(); // returns at once
    /// # }
    /// ```
    pub fn warm_up(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            let ping = async {
                let mut conn = this.connection()?;
                redis::cmd("PING").query_async::<()>(&mut conn).await
            };
            match tokio::time::timeout(WARM_UP, ping).await {
                Ok(Ok(())) => tracing::info!(namespace = %this.namespace, "the shared reply cache's Redis is reachable"),
                Ok(Err(e)) => tracing::warn!(error = %e, "the shared reply cache's Redis is not reachable: replies are cached in this process only until it is"),
                Err(_) => tracing::warn!(after = ?WARM_UP, "the shared reply cache's Redis does not answer: replies are cached in this process only until it does"),
            }
        });
    }

    /// The connection manager, made on first use (it spawns its task on the
    /// current runtime, so it is made inside a call's future).
    fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        self.connection
            .get_or_init(|| {
                ConnectionManager::new_lazy_with_config(self.client.clone(), connection_config())
            })
            .clone()
    }

    async fn send(
        &self,
        conn: &mut ConnectionManager,
        op: &RemoteOp,
    ) -> redis::RedisResult<Option<Bytes>> {
        match op {
            RemoteOp::Get(key) => {
                redis::cmd("GET")
                    .arg(self.key(key))
                    .query_async::<Option<Bytes>>(conn)
                    .await
            }
            RemoteOp::Set { key, value, ttl } => {
                // PX takes at least 1 ms.
                let px = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(value.as_ref())
                    .arg("PX")
                    .arg(px)
                    .query_async::<()>(conn)
                    .await?;
                Ok(None)
            }
        }
    }

    fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.namespace.len() + 1 + key.len());
        k.push_str(&self.namespace);
        k.push(':');
        k.push_str(key);
        k
    }
}

/// The future of a [`RedisRemote`] call.
pub type RedisFuture = Pin<Box<dyn Future<Output = redis::RedisResult<Option<Bytes>>> + Send>>;

impl Service<RemoteOp> for RedisRemote {
    type Response = Option<Bytes>;
    type Error = redis::RedisError;
    type Future = RedisFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, op: RemoteOp) -> Self::Future {
        let this = self.clone();
        // A client span per command, under the request's. RESP has no
        // headers, so the trace context stops here: Redis records no spans.
        let span = tracing::info_span!(
            target: crate::otel::TARGET,
            "redis",
            otel.kind = "client",
            db.system.name = "redis",
            db.operation.name = command(&op),
        );
        let run = async move {
            let mut conn = this.connection()?;
            match this.send(&mut conn, &op).await {
                // The connection was found lost (or never made), and the
                // manager has just started a new one: the command goes once
                // more, on it. So the breaker's first probe after an outage
                // finds Redis back, instead of the old connection's error.
                // GET and SET may be sent twice; the timeout around the
                // service bounds both.
                Err(e) if e.is_io_error() || e.is_unrecoverable_error() => {
                    this.send(&mut conn, &op).await
                }
                done => done,
            }
        };
        Box::pin(tracing::Instrument::instrument(run, span))
    }
}

/// The Redis command an operation is sent as.
fn command(op: &RemoteOp) -> &'static str {
    match op {
        RemoteOp::Get(_) => "GET",
        RemoteOp::Set { .. } => "SET",
    }
}

/// Redis behind its breaker and timeout.
pub type GuardedRedis = CircuitBreaker<Timeout<RedisRemote>>;

/// The key of a request in Redis (before the namespace).
pub type RemoteKey = Box<dyn Fn(&A2ARequest) -> Option<String> + Send + Sync>;

/// A direct message reply is stored, as JSON; nothing else is.
fn to_remote(res: &A2AResponse) -> Option<Bytes> {
    match res {
        A2AResponse::Unary(Unary {
            outcome: Ok(Reply::Message(m)),
            ..
        }) => serde_json::to_vec(m).ok().map(Bytes::from),
        _ => None,
    }
}

/// A stored reply, to be restamped like an in-process hit.
fn from_remote(bytes: Bytes) -> Option<A2AResponse> {
    let message: Message = serde_json::from_slice(&bytes).ok()?;
    Some(A2AResponse::Unary(Unary {
        outcome: Ok(Reply::Message(Box::new(message))),
        cached: true,
    }))
}

type ToRemote = fn(&A2AResponse) -> Option<Bytes>;
type FromRemote = fn(Bytes) -> Option<A2AResponse>;

/// The remote cache layer as configured for A2A.
pub type A2ARemoteCache = RemoteCacheLayer<GuardedRedis, RemoteKey, ToRemote, FromRemote>;

/// The service of [`A2ARemoteCacheLayer`]: the remote cache around `S`, or
/// `S` itself.
pub type A2ARemoteCacheService<S> =
    Either<RemoteCache<S, GuardedRedis, RemoteKey, ToRemote, FromRemote>, S>;

/// The shared second cache tier of `--redis-url`, or no layer at all
/// without it (its service is the inner one, behind an enum tag).
///
/// ```
/// use abacus::config::StackConfig;
/// use abacus::stack::remote_cache::A2ARemoteCacheLayer;
/// # async fn demo(core: abacus::core::Core) {
/// let off = A2ARemoteCacheLayer::from_config(&StackConfig::default(), &core);
/// assert!(off.handle().is_none());
/// let cfg = StackConfig { redis_url: Some("redis://127.0.0.1:6379/0".into()), ..Default::default() };
/// assert!(A2ARemoteCacheLayer::from_config(&cfg, &core).handle().is_some());
/// # }
/// ```
#[derive(Clone, Default)]
pub struct A2ARemoteCacheLayer {
    layer: Option<A2ARemoteCache>,
    handle: Option<RemoteCacheHandle>,
    breaker: Option<CircuitBreakerHandle>,
}

impl std::fmt::Debug for A2ARemoteCacheLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("A2ARemoteCacheLayer")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// The URL of `cfg` is not one the Redis client takes (the error never
/// shows the URL, which may hold a password).
pub fn check_url(cfg: &StackConfig) -> Result<(), String> {
    match &cfg.redis_url {
        Some(url) => redis::Client::open(url.as_str())
            .map(drop)
            .map_err(|e| format!("--redis-url: {e}")),
        None => Ok(()),
    }
}

impl A2ARemoteCacheLayer {
    /// The layer of `cfg` for `core`'s agent: Redis at `--redis-url` under
    /// `--cache-namespace`, calls bounded by `--redis-timeout-ms`, entries
    /// kept `--cache-ttl-secs`; none without `--redis-url`, with `--cache
    /// false`, or with a URL that does not parse (logged; the server checks
    /// it before starting: [`check_url`]).
    pub fn from_config(cfg: &StackConfig, core: &Core) -> Self {
        let Some(url) = cfg.redis_url.as_deref().filter(|_| cfg.cache) else {
            return Self::default();
        };
        let redis = match RedisRemote::new(url, &cfg.cache_namespace) {
            Ok(redis) => redis,
            Err(e) => {
                tracing::error!(error = %e, "--redis-url: not a Redis URL; replies are cached in this process only");
                return Self::default();
            }
        };
        redis.warm_up();
        let breaker = CircuitBreakerLayer::builder()
            .name("redis")
            .consecutive_failures(BREAKER_FAILURES)
            .open_duration(BREAKER_OPEN)
            .state_metric_name("a2a_circuit_breaker_state")
            .transitions_metric_name("a2a_circuit_breaker_transitions_total")
            .on_state_change(|t| {
                tracing::warn!(from = %t.from, to = %t.to, "the shared reply cache's Redis breaker changed state")
            })
            .build();
        let breaker_handle = breaker.handle();
        let store = ServiceBuilder::new()
            .layer(breaker)
            .layer(TimeoutLayer::new(cfg.redis_timeout()))
            .service(redis);
        let card = core.card();
        let scope = format!("{}\0{}\0", card.name, card.version);
        let core = core.clone();
        let key: RemoteKey = Box::new(move |req| {
            let key = core.reply_cache_key(req)?;
            Some(remote_key(&scope, &key))
        });
        let layer = RemoteCacheLayer::builder(store)
            .time_to_live(cfg.cache_ttl())
            .max_writes_in_flight(MAX_WRITES_IN_FLIGHT)
            .metric_name("a2a_cache_l2_requests_total")
            .writes_metric_name("a2a_cache_l2_writes_total")
            .keep_handles(true)
            .build(key, to_remote as ToRemote, from_remote as FromRemote);
        Self {
            handle: Some(layer.handle()),
            breaker: Some(breaker_handle),
            layer: Some(layer),
        }
    }

    /// The tier's counts (hits, misses, errors, writes), when there is one.
    pub fn handle(&self) -> Option<&RemoteCacheHandle> {
        self.handle.as_ref()
    }

    /// The Redis breaker's state, when there is a tier.
    pub fn breaker_handle(&self) -> Option<&CircuitBreakerHandle> {
        self.breaker.as_ref()
    }
}

/// `reply:` and the SHA-256 of the agent's `scope` and the request's key, in hex.
fn remote_key(scope: &str, key: &str) -> String {
    let digest = Sha256::new()
        .chain_update(scope)
        .chain_update(key)
        .finalize();
    let mut out = String::with_capacity(6 + 64);
    out.push_str("reply:");
    for byte in digest.iter() {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

impl<S> Layer<S> for A2ARemoteCacheLayer {
    type Service = A2ARemoteCacheService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        match &self.layer {
            Some(layer) => Either::Left(layer.layer(inner)),
            None => Either::Right(inner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::{Part, Role};

    #[test]
    fn keys_are_bounded_and_depend_on_the_agent_and_the_question() {
        let a = remote_key("math\u{0}1.0\u{0}", "2 + 2\n");
        assert_eq!(a.len(), "reply:".len() + 64);
        assert!(a.starts_with("reply:"));
        assert_eq!(a, remote_key("math\u{0}1.0\u{0}", "2 + 2\n"));
        assert_ne!(a, remote_key("math\u{0}1.1\u{0}", "2 + 2\n"));
        assert_ne!(a, remote_key("math\u{0}1.0\u{0}", "2 + 3\n"));
        let long = "9".repeat(100_000);
        assert_eq!(remote_key("math\u{0}1.0\u{0}", &long).len(), a.len());
    }

    #[test]
    fn a_reply_round_trips_and_garbage_is_a_miss() {
        let m = Message::new(Role::Agent, vec![Part::text("4")]);
        let res = A2AResponse::Unary(Unary {
            outcome: Ok(Reply::Message(Box::new(m.clone()))),
            cached: false,
        });
        let bytes = to_remote(&res).expect("a direct reply is stored");
        match from_remote(bytes) {
            Some(A2AResponse::Unary(Unary {
                outcome: Ok(Reply::Message(back)),
                cached: true,
            })) => assert_eq!(*back, m),
            _ => panic!("not the stored reply"),
        }
        assert!(from_remote(Bytes::from_static(b"\xff{not json")).is_none());
        assert!(from_remote(Bytes::from_static(b"{\"kind\":\"task\"}")).is_none());
    }
}
