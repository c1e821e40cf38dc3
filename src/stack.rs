//! The server's tower stack: the layers of `abacus-layers`, configured for
//! A2A, composed around the core service in an order chosen in code.
//!
//! The layers know nothing of A2A; this module supplies the glue: the cache
//! key (asked of the agent, [`Agent::cache_key`](crate::agent::Agent::cache_key)),
//! which replies may be cached (direct messages), which results count as
//! failures for the breaker (internal errors), the metric names and labels.
//! The A2A codes of the layers' own errors are [`ToRpcError`], next to the
//! error table in [`crate::protocol`].
//!
//! Default order, outermost first, and why:
//!
//! ```text
//! rate limit ─► metrics ─► concurrency ─► timeout ─► restamp ─► cache ─► remote cache ─► circuit breaker ─► core
//! ```
//!
//! * the rate limit outermost (only with `--rate-limit`; otherwise no layer
//!   is there): a refused call costs nothing downstream, no permit, no
//!   metric of the request layers (it counts in `a2a_rate_limit_total` and
//!   `a2a_errors_total`);
//! * metrics next: every other request is counted, shed ones included, and
//!   durations include queueing;
//! * concurrency before timeout: overload is refused at once (load shedding)
//!   instead of burning the deadline in a queue;
//! * timeout outside the cache: a hit is never slow, a miss is bounded;
//! * the cache before the breaker: hits keep being served while the breaker
//!   is open;
//! * restamp right outside the cache gives each cached reply fresh ids, from
//!   either tier;
//! * the remote cache (only with `--redis-url`; otherwise no layer is
//!   there) inside the in-process one: an in-process hit never asks Redis,
//!   a Redis hit fills the in-process cache, the single flight asks Redis
//!   once per key; before the breaker, so Redis hits are served while it is
//!   open ([`remote_cache`]).
//!
//! ```
//! # async fn demo(core: abacus::core::Core) {
//! use abacus::stack::A2ALayers;
//! let layers = A2ALayers::new(&abacus::config::StackConfig::default(), &core);
//! let stack = layers.default_stack(core);
//! # let _ = stack;
//! # }
//! ```

use crate::core::Core;
use crate::protocol::types::{new_context_id, new_message_id, Message};
use crate::protocol::{
    timeout_error, A2ARequest, A2AResponse, EventStream, Principal, Reply, StreamItem, Unary,
};
use abacus_layers::cache::{CacheHandle, CacheLayer, MapCached};
use abacus_layers::circuit_breaker::{CircuitBreakerHandle, CircuitBreakerLayer, ClassifyFailure};
use abacus_layers::concurrency::{ConcurrencyHandle, ConcurrencyLimitLayer};
use abacus_layers::metrics::{ClassifyStatus, LabelRequest, MetricsLayer};
use abacus_layers::rate_limit::{
    Quota, RateLimit, RateLimitError, RateLimitHandle, RateLimitLayer,
};
use abacus_layers::remote_cache::RemoteCacheHandle;
use abacus_layers::stream::{
    GuardedStream, StreamTimeout, StreamTimeouts, TimeoutStream, TrackEnd,
};
use abacus_layers::timeout::{Elapsed, RequestTimeout, TimeoutLayer};
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::util::{Either, MapErr};
use tower::{Layer, Service, ServiceBuilder};

pub use remote_cache::A2ARemoteCacheLayer;

pub mod remote_cache;

pub use crate::config::StackConfig;
pub use crate::protocol::{A2AError, ToRpcError};

impl TrackEnd for A2AResponse {
    type Output<G: Send + Sync + 'static> = Self;

    fn track_end<G: Send + Sync + 'static>(self, guard: G) -> Self {
        match self {
            // Complete now: the guard is dropped here.
            unary @ A2AResponse::Unary(_) => unary,
            A2AResponse::Stream(events) => {
                A2AResponse::Stream(Box::pin(GuardedStream::new(events, guard)) as EventStream)
            }
        }
    }
}

impl StreamTimeout for A2AResponse {
    type Output = Self;

    fn stream_timeout(self, timeouts: StreamTimeouts) -> Self {
        match self {
            A2AResponse::Stream(events) if !timeouts.is_none() => {
                let on_elapsed = |e: Elapsed| -> StreamItem { Err(timeout_error(&e)) };
                A2AResponse::Stream(Box::pin(TimeoutStream::new(events, timeouts, on_elapsed)))
            }
            other => other,
        }
    }
}

/// Metrics status label: `success`, or `error` for error replies and failures.
#[derive(Debug, Clone, Copy, Default)]
pub struct A2AStatus;

impl<E> ClassifyStatus<A2AResponse, E> for A2AStatus {
    fn status(&self, result: &Result<A2AResponse, E>) -> &'static str {
        match result {
            Ok(r) if r.is_success() => "success",
            _ => "error",
        }
    }
}

/// The `binding` label of the request metrics: the protocol binding the
/// request came in on ([`Binding`](crate::protocol::Binding)).
///
/// ```
/// use abacus::protocol::{A2ARequest, Binding, Call};
/// use abacus::stack::ByBinding;
/// use abacus_layers::metrics::LabelRequest;
/// let mut req = A2ARequest::new(Call::GetExtendedAgentCard);
/// req.meta.binding = Binding::Grpc;
/// assert_eq!(ByBinding.label(&req), "grpc");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ByBinding;

impl LabelRequest<A2ARequest> for ByBinding {
    fn label(&self, req: &A2ARequest) -> &'static str {
        req.meta.binding.as_str()
    }
}

/// The `method` label of the request metrics: the A2A operation
/// (`SendMessage`, `GetTask`, …), whatever the binding calls it.
///
/// ```
/// use abacus::protocol::{A2ARequest, Call};
/// use abacus::stack::ByMethod;
/// use abacus_layers::metrics::LabelRequest;
/// let req = A2ARequest::new(Call::GetExtendedAgentCard);
/// assert_eq!(ByMethod.label(&req), "GetExtendedAgentCard");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ByMethod;

impl LabelRequest<A2ARequest> for ByMethod {
    fn label(&self, req: &A2ARequest) -> &'static str {
        req.call.method().name()
    }
}

/// Breaker failures: stack errors and internal errors (-32603), not the
/// client's mistakes, nor a store that cannot write (-32063): that error is
/// already fast and clear, and an open breaker would also refuse the reads
/// that still work.
#[derive(Debug, Clone, Copy, Default)]
pub struct InternalFailures;

impl<E> ClassifyFailure<A2AResponse, E> for InternalFailures {
    fn is_failure(&self, result: &Result<A2AResponse, E>) -> bool {
        match result {
            Err(_) => true,
            Ok(r) => r.error_code() == Some(crate::protocol::error_code::INTERNAL_ERROR),
        }
    }
}

/// The per-request deadline a client asked for (`X-Timeout-Ms`, in
/// [`RequestMeta::timeout`](crate::protocol::RequestMeta::timeout)), capped
/// at `max`.
///
/// ```
/// use abacus::protocol::{A2ARequest, Call};
/// use abacus::stack::ClientTimeout;
/// use abacus_layers::timeout::RequestTimeout;
/// use std::time::Duration;
///
/// let mut req = A2ARequest::new(Call::GetExtendedAgentCard);
/// req.meta.timeout = Some(Duration::from_secs(600));
/// let capped = ClientTimeout { max: Duration::from_secs(300) };
/// assert_eq!(capped.request_timeout(&req), Some(Duration::from_secs(300)));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeout {
    /// The largest deadline a client may ask for.
    pub max: Duration,
}

impl RequestTimeout<A2ARequest> for ClientTimeout {
    fn request_timeout(&self, req: &A2ARequest) -> Option<Duration> {
        req.meta.timeout.map(|t| t.min(self.max))
    }
}

/// The cache key of a request: asked of the core (hence of the agent), or
/// never when the cache is off.
pub type A2ACacheKey = Box<dyn Fn(&A2ARequest) -> Option<String> + Send + Sync>;

/// A direct message reply is cached; tasks (stateful) and errors are not.
/// A key refused here stops coalescing (see the cache module): identical
/// task questions run side by side.
fn to_cached(res: &A2AResponse) -> Option<Arc<Message>> {
    match res {
        A2AResponse::Unary(Unary {
            outcome: Ok(Reply::Message(m)),
            ..
        }) => Some(Arc::new((**m).clone())),
        _ => None,
    }
}

fn from_cached(m: Arc<Message>) -> A2AResponse {
    crate::otel::decision("cache_hit");
    A2AResponse::Unary(Unary {
        outcome: Ok(Reply::Message(Box::new((*m).clone()))),
        cached: true,
    })
}

/// The response cache as configured for A2A.
pub type A2ACacheLayer = CacheLayer<
    String,
    Arc<Message>,
    A2ACacheKey,
    MapCached<fn(&A2AResponse) -> Option<Arc<Message>>, fn(Arc<Message>) -> A2AResponse>,
>;

/// The handle of [`A2ACacheLayer`].
pub type A2ACacheHandle = CacheHandle<
    String,
    Arc<Message>,
    A2ACacheKey,
    MapCached<fn(&A2AResponse) -> Option<Arc<Message>>, fn(Arc<Message>) -> A2AResponse>,
>;

/// Every layer of the server, configured for A2A. Clone a field to use it in
/// a stack of your own order; clones share state (semaphore, cache, breaker).
#[derive(Clone)]
pub struct A2ALayers {
    /// The per-client rate limit of `--rate-limit` (`a2a_rate_limit_total`),
    /// or nothing; its refusals (and the inner errors) come out as
    /// [`A2AError`]s. A stack of your own (`Server::stack`) places it
    /// itself (outermost, as the default stack does), or the flag does
    /// nothing.
    pub rate_limit: A2ARateLimitLayer,
    /// `a2a_requests_total`, `a2a_request_duration_seconds` (labelled by
    /// binding, method and status), `a2a_active_requests`.
    pub metrics: MetricsLayer<A2AStatus, ByBinding, ByMethod>,
    /// In-flight bound, shedding load above it.
    pub concurrency: ConcurrencyLimitLayer,
    /// Request deadline and stream timeouts.
    pub timeout: TimeoutLayer<ClientTimeout>,
    /// Gives cached replies fresh ids.
    pub restamp: RestampLayer,
    /// Response cache (`a2a_cache_hits_total`).
    pub cache: A2ACacheLayer,
    /// The response cache's second tier in Redis, shared by the replicas
    /// (`--redis-url`; `a2a_cache_l2_requests_total`), or nothing.
    pub remote_cache: A2ARemoteCacheLayer,
    /// Circuit breaker around the core.
    pub breaker: CircuitBreakerLayer<InternalFailures>,
    concurrency_handle: ConcurrencyHandle,
    breaker_handle: CircuitBreakerHandle,
    cache_handle: A2ACacheHandle,
}

impl A2ALayers {
    /// Builds every layer from `cfg` for `core`: its agent's name labels the
    /// request metrics, its agent decides what may be cached.
    pub fn new(cfg: &StackConfig, core: &Core) -> Self {
        let rate_limit = A2ARateLimitLayer::from_config(cfg);
        let agent_name = core.card().name.as_str();
        let metrics = MetricsLayer::new()
            .requests_total_name("a2a_requests_total")
            .duration_name("a2a_request_duration_seconds")
            .in_flight_name("a2a_active_requests")
            .label("agent_name", agent_name.to_string())
            .keep_handles(true)
            .classify_status(A2AStatus)
            .request_label("binding", ByBinding)
            .second_request_label("method", ByMethod);
        let concurrency = ConcurrencyLimitLayer::new(cfg.concurrency_limit.max(1))
            .load_shed(cfg.load_shed)
            .queue_wait_histogram("a2a_queue_wait_seconds")
            .keep_handles(true);
        let concurrency_handle = concurrency.handle();
        let timeout = TimeoutLayer::new(cfg.request_timeout())
            .first_item_timeout(cfg.stream_first_event_timeout())
            .idle_timeout(cfg.stream_idle_timeout())
            .per_request_timeout(ClientTimeout {
                max: cfg.max_client_timeout(),
            });
        let key: A2ACacheKey = if cfg.cache {
            let core = core.clone();
            Box::new(move |req| core.reply_cache_key(req))
        } else {
            Box::new(|_| None)
        };
        let cache = CacheLayer::builder()
            .max_capacity(cfg.cache_capacity)
            .time_to_live(cfg.cache_ttl())
            .metric_name("a2a_cache_hits_total")
            .keep_handles(true)
            .build_mapped(
                key,
                to_cached as fn(&A2AResponse) -> Option<Arc<Message>>,
                from_cached as fn(Arc<Message>) -> A2AResponse,
            );
        let cache_handle = cache.handle();
        let remote_cache = A2ARemoteCacheLayer::from_config(cfg, core);
        let breaker = CircuitBreakerLayer::builder()
            .name("core")
            .failure_rate_threshold(cfg.breaker_failure_rate)
            .minimum_calls(cfg.breaker_min_calls)
            .sliding_window(Duration::from_secs(cfg.breaker_window_secs.max(1)))
            .open_duration(Duration::from_secs(cfg.breaker_open_secs.max(1)))
            .state_metric_name("a2a_circuit_breaker_state")
            .transitions_metric_name("a2a_circuit_breaker_transitions_total")
            .failure_if(InternalFailures)
            .build();
        let breaker_handle = breaker.handle();
        A2ALayers {
            rate_limit,
            metrics,
            concurrency,
            timeout,
            restamp: RestampLayer,
            cache,
            remote_cache,
            breaker,
            concurrency_handle,
            breaker_handle,
            cache_handle,
        }
    }

    /// In-flight requests and free permits.
    pub fn concurrency_handle(&self) -> &ConcurrencyHandle {
        &self.concurrency_handle
    }

    /// Replies served from the cache so far.
    pub fn cache_hits(&self) -> u64 {
        self.cache_handle.hits()
    }

    /// Requests that missed the cache so far.
    pub fn cache_misses(&self) -> u64 {
        self.cache_handle.misses()
    }

    /// The Redis tier's counts (hits, misses, errors, writes), with
    /// `--redis-url`.
    pub fn remote_cache_handle(&self) -> Option<&RemoteCacheHandle> {
        self.remote_cache.handle()
    }

    /// The core breaker's state.
    pub fn breaker_handle(&self) -> &CircuitBreakerHandle {
        &self.breaker_handle
    }

    /// The rate limiter's counts, when `--rate-limit` is set.
    pub fn rate_limit_handle(&self) -> Option<&RateLimitHandle> {
        self.rate_limit.handle.as_ref()
    }

    /// The default stack around `core` (see the module docs for the order).
    pub fn default_stack(
        &self,
        core: Core,
    ) -> impl Service<
        A2ARequest,
        Response = A2AResponse,
        Error = A2AError,
        Future = impl Future<Output = Result<A2AResponse, A2AError>> + Send,
    > + Clone
           + Send
           + Sync
           + 'static {
        self.wrap(core)
    }

    /// The default stack around any inner service (benchmarks, tests, or a
    /// core of your own).
    pub fn wrap<S>(
        &self,
        inner: S,
    ) -> impl Service<
        A2ARequest,
        Response = A2AResponse,
        Error = A2AError,
        Future = impl Future<Output = Result<A2AResponse, A2AError>> + Send,
    > + Clone
           + Send
           + Sync
           + 'static
    where
        S: Service<A2ARequest, Response = A2AResponse, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        ServiceBuilder::new()
            .layer(self.rate_limit.clone())
            .layer(self.metrics.clone())
            .layer(self.concurrency.clone())
            .layer(self.timeout)
            .layer(self.restamp)
            .layer(self.cache.clone())
            .layer(self.remote_cache.clone())
            .layer(self.breaker.clone())
            .service(inner)
    }
}

/// Who a request is rate-limited as: its authenticated principal, else its
/// peer's IP address (never the port, never a forwarded-for header), else
/// one shared key for requests whose transport did not say.
///
/// ```
/// use abacus::protocol::{A2ARequest, Call, Principal};
/// use abacus::stack::ClientKey;
///
/// let mut req = A2ARequest::new(Call::GetExtendedAgentCard);
/// assert_eq!(ClientKey::of(&req), ClientKey::Unknown);
/// req.meta.peer = Some("[::ffff:192.0.2.7]:5000".parse().unwrap());
/// assert_eq!(ClientKey::of(&req), ClientKey::Ip("192.0.2.7".parse().unwrap()));
/// req.meta.principal = Principal::new("alice");
/// assert_eq!(ClientKey::of(&req), ClientKey::Principal(Principal::new("alice")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An authenticated caller, wherever it calls from.
    Principal(Principal),
    /// An anonymous caller's address (IPv4-mapped IPv6 as IPv4).
    Ip(IpAddr),
    /// Anonymous, from an unknown address (a transport that gives no peer).
    Unknown,
}

impl ClientKey {
    /// The key of `req`.
    pub fn of(req: &A2ARequest) -> ClientKey {
        if !req.meta.principal.is_anonymous() {
            return ClientKey::Principal(req.meta.principal.clone());
        }
        match req.meta.peer {
            Some(peer) => ClientKey::Ip(peer.ip().to_canonical()),
            None => ClientKey::Unknown,
        }
    }
}

/// The key function of the A2A rate limit.
type ClientKeyFn = fn(&A2ARequest) -> ClientKey;

/// The rate limit as configured for A2A: keyed by [`ClientKey`], the
/// default quota and `principal=RATE` overrides of `--rate-limit`, the
/// burst of `--rate-limit-burst`, at most `--rate-limit-max-keys` clients
/// tracked. Without `--rate-limit` it adds no layer: its service is the
/// inner one (behind an enum tag).
///
/// Either way its service's error is [`A2AError`] (the inner service's
/// error through [`ToRpcError`]), so it can go anywhere in a stack of your
/// own; refusals are `-32064 RATE_LIMITED`.
///
/// ```
/// use abacus::config::StackConfig;
/// use abacus::stack::A2ARateLimitLayer;
///
/// let off = A2ARateLimitLayer::from_config(&StackConfig::default());
/// assert!(off.handle().is_none());
/// let cfg = StackConfig { rate_limit: Some("100/s,alice=1000/s".parse().unwrap()), ..Default::default() };
/// assert!(A2ARateLimitLayer::from_config(&cfg).handle().is_some());
/// ```
#[derive(Clone, Default)]
pub struct A2ARateLimitLayer {
    limit: Option<RateLimitLayer<ClientKey, ClientKeyFn>>,
    handle: Option<RateLimitHandle>,
}

impl A2ARateLimitLayer {
    /// The rate limit of `cfg`, or none without `--rate-limit`.
    pub fn from_config(cfg: &StackConfig) -> Self {
        let Some(spec) = &cfg.rate_limit else {
            return Self::default();
        };
        let quota = |rate: &crate::config::Rate, burst: Option<u32>| {
            Quota::new(rate.count, rate.per).with_burst(burst.unwrap_or_else(|| rate.one_second()))
        };
        let mut builder = RateLimitLayer::builder(quota(&spec.default, cfg.rate_limit_burst))
            .key(ClientKey::of as ClientKeyFn)
            .max_keys(cfg.rate_limit_max_keys)
            .metric_name("a2a_rate_limit_total")
            .keep_handles(true);
        for (principal, rate) in &spec.overrides {
            builder = builder.quota_for(
                ClientKey::Principal(Principal::new(principal.as_str())),
                quota(rate, None),
            );
        }
        let limit = builder.build();
        Self {
            handle: Some(limit.handle()),
            limit: Some(limit),
        }
    }

    /// The limiter's counts, when there is one.
    pub fn handle(&self) -> Option<&RateLimitHandle> {
        self.handle.as_ref()
    }
}

impl std::fmt::Debug for A2ARateLimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("A2ARateLimitLayer")
            .field("limit", &self.limit)
            .finish()
    }
}

fn to_rpc<E: ToRpcError>(e: E) -> A2AError {
    e.to_rpc_error()
}

/// The service of [`A2ARateLimitLayer`]: the limiter around `S`, or `S`
/// itself, errors as [`A2AError`].
pub type A2ARateLimit<S> = Either<
    MapErr<
        RateLimit<S, ClientKey, ClientKeyFn>,
        fn(RateLimitError<<S as Service<A2ARequest>>::Error>) -> A2AError,
    >,
    MapErr<S, fn(<S as Service<A2ARequest>>::Error) -> A2AError>,
>;

impl<S> Layer<S> for A2ARateLimitLayer
where
    S: Service<A2ARequest>,
    S::Error: ToRpcError,
{
    type Service = A2ARateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        match &self.limit {
            Some(limit) => Either::Left(MapErr::new(limit.layer(inner), to_rpc as fn(_) -> _)),
            None => Either::Right(MapErr::new(inner, to_rpc as fn(_) -> _)),
        }
    }
}

/// Gives a reply served from the cache the ids of the request it answers:
/// a fresh messageId and the request's contextId (or a new one).
#[derive(Debug, Clone, Copy, Default)]
pub struct RestampLayer;

impl<S> Layer<S> for RestampLayer {
    type Service = Restamp<S>;
    fn layer(&self, inner: S) -> Restamp<S> {
        Restamp { inner }
    }
}

/// The service of [`RestampLayer`].
#[derive(Debug, Clone)]
pub struct Restamp<S> {
    inner: S,
}

impl<S> Service<A2ARequest> for Restamp<S>
where
    S: Service<A2ARequest, Response = A2AResponse>,
{
    type Response = A2AResponse;
    type Error = S::Error;
    type Future = RestampFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: A2ARequest) -> Self::Future {
        let context_id = req.call.message().and_then(|m| m.context_id.clone());
        RestampFuture {
            inner: self.inner.call(req),
            context_id,
        }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`Restamp`].
    pub struct RestampFuture<F> {
        #[pin]
        inner: F,
        context_id: Option<String>,
    }
}

impl<F, E> Future for RestampFuture<F>
where
    F: Future<Output = Result<A2AResponse, E>>,
{
    type Output = Result<A2AResponse, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = std::task::ready!(this.inner.poll(cx));
        if let Ok(A2AResponse::Unary(u)) = &mut res {
            if u.cached {
                if let Ok(Reply::Message(m)) = &mut u.outcome {
                    m.message_id = new_message_id();
                    m.context_id = Some(this.context_id.take().unwrap_or_else(new_context_id));
                }
                u.cached = false;
            }
        }
        Poll::Ready(res)
    }
}
