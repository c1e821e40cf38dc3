//! One delivery attempt of a notification, through the outbound stack of
//! its receiver's host:
//!
//! ```text
//! concurrency limit ─► retry (jittered backoff, budget) ─► circuit breaker ─► attempt timeout ─► POST
//! ```
//!
//! Every host (`scheme://host:port`) gets its own limit, breaker and retry
//! budget, so a receiver that hangs or fails opens its own breaker and
//! holds its own permits while other hosts are delivered to as usual.
//! Connections go through the SSRF guard's resolver: a host name is
//! resolved once, and only to addresses the guard allows.

use super::guard::{Guard, GuardedResolver, Refusal};
use crate::protocol::types::TaskPushNotificationConfig;
use crate::store::Notification;
use abacus_layers::circuit_breaker::{CircuitBreakerError, CircuitBreakerLayer};
use abacus_layers::concurrency::{ConcurrencyLimitError, ConcurrencyLimitLayer};
use abacus_layers::retry::{Backoff, Jitter, RetryBudget, RetryError, RetryLayer};
use abacus_layers::timeout::{TimeoutError, TimeoutLayer};
use bytes::Bytes;
use dashmap::DashMap;
use futures_util::future::BoxFuture;
use http::{header, HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder, ServiceExt};

/// The header carrying the config's token.
pub const TOKEN_HEADER: &str = "x-a2a-notification-token";
/// The header carrying the event's stable id.
pub const EVENT_ID_HEADER: &str = "x-a2a-event-id";
/// Longest receiver answer read (and discarded) to keep its connection.
const MAX_ANSWER: usize = 16 * 1024;

/// The pooled client: HTTP/1.1 and h2 over the guard's resolver.
type PushClient = Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

/// How the outbound stacks are tuned.
///
/// ```
/// use abacus::push::DeliverySettings;
/// use std::time::Duration;
/// let fast = DeliverySettings {
///     attempt_timeout: Duration::from_secs(2),
///     ..DeliverySettings::default()
/// };
/// assert_eq!((fast.max_attempts, fast.breaker_failures), (3, 5));
/// ```
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Longest time one attempt (connect, send, answer) may take.
    pub attempt_timeout: Duration,
    /// Attempts in flight per receiver host at most.
    pub host_concurrency: usize,
    /// Attempts per call of a host's stack (the first included); the
    /// outbox retries again later, until the delivery deadline.
    pub max_attempts: u32,
    /// Consecutive failures that open a host's breaker.
    pub breaker_failures: u32,
    /// How long an open breaker rejects calls before it probes.
    pub breaker_open: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            attempt_timeout: Duration::from_secs(10),
            host_concurrency: 8,
            max_attempts: 3,
            breaker_failures: 5,
            breaker_open: Duration::from_secs(30),
        }
    }
}

/// Why an attempt did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A 5xx or 408 answer.
    Status(StatusCode),
    /// 429, with the receiver's `Retry-After` when it gave one.
    RateLimited(Option<Duration>),
    /// No connection or no complete answer (refused, reset, TLS, DNS).
    Transport(String),
    /// Permanent: a 4xx answer, a redirect (never followed), a refused
    /// address or URL. Retrying cannot help.
    Rejected(String),
}

impl Failure {
    /// Worth another attempt inside the stack (429 waits for its
    /// `Retry-After` in the outbox instead).
    fn transient(&self) -> bool {
        matches!(self, Failure::Status(_) | Failure::Transport(_))
    }

    /// Counts against the host's breaker: the host itself is failing.
    fn breaker_failure(&self) -> bool {
        matches!(self, Failure::Status(_) | Failure::Transport(_))
    }

    /// A short label for metrics and logs.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Failure::Status(_) => "status",
            Failure::RateLimited(_) => "rate_limited",
            Failure::Transport(_) => "transport",
            Failure::Rejected(_) => "rejected",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(s) => write!(f, "receiver answered {s}"),
            Failure::RateLimited(Some(d)) => write!(f, "receiver answered 429, retry after {d:?}"),
            Failure::RateLimited(None) => f.write_str("receiver answered 429"),
            Failure::Transport(m) => write!(f, "transport: {m}"),
            Failure::Rejected(m) => f.write_str(m),
        }
    }
}

/// What one call of a host's stack came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempted {
    /// The receiver answered 2xx.
    Delivered,
    /// Not yet: try again later, not before `after` when the receiver or
    /// the breaker said so.
    Later {
        /// Why this call failed.
        failure: Failure,
        /// The earliest useful retry, when known (`Retry-After`, breaker).
        after: Option<Duration>,
    },
    /// Never: give up now.
    Never(Failure),
}

/// One POST, ready to send (cheap to clone for retries).
#[derive(Clone, Debug)]
pub(crate) struct Post {
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Post {
    /// The request of `n`, its URL checked by `guard` (IP literals and the
    /// scheme here; host names when the connector resolves them).
    pub(crate) fn of(n: &Notification, guard: &Guard) -> Result<(Post, String), Failure> {
        let target = guard
            .check_url(&n.config.url)
            .map_err(|r| Failure::Rejected(r.to_string()))?;
        let uri: Uri = n
            .config
            .url
            .parse()
            .map_err(|_| Failure::Rejected("the push notification URL is invalid".into()))?;
        let host = format!("{}://{}:{}", target.scheme(), target.host(), target.port());
        let headers = headers(&n.config, &n.event_id).map_err(Failure::Rejected)?;
        Ok((
            Post {
                uri,
                headers,
                body: Bytes::from(n.payload.clone()),
            },
            host,
        ))
    }
}

/// The headers of a notification of `config`: JSON, its event id, the
/// config's token and credentials (checked at creation; checked again
/// here).
fn headers(config: &TaskPushNotificationConfig, event_id: &str) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::with_capacity(5);
    let value = |s: &str, what: &str| {
        HeaderValue::from_str(s)
            .map_err(|_| format!("the config's {what} is not a valid header value"))
    };
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::USER_AGENT,
        HeaderValue::from_static(concat!("abacus/", env!("CARGO_PKG_VERSION"))),
    );
    h.insert(EVENT_ID_HEADER, value(event_id, "event id")?);
    if let Some(token) = config.token.as_deref().filter(|t| !t.is_empty()) {
        let mut v = value(token, "token")?;
        v.set_sensitive(true);
        h.insert(TOKEN_HEADER, v);
    }
    if let Some(auth) = &config.authentication {
        let text = match auth.credentials.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => format!("{} {c}", auth.scheme),
            None => auth.scheme.clone(),
        };
        let mut v = value(&text, "authentication")?;
        v.set_sensitive(true);
        h.insert(header::AUTHORIZATION, v);
    }
    Ok(h)
}

/// Whether `config`'s token and credentials can be sent as headers:
/// checked at creation, so a config that can never be delivered is refused
/// with a clear error instead of dying in the outbox.
pub(crate) fn check_headers(config: &TaskPushNotificationConfig) -> Result<(), String> {
    headers(config, "probe").map(|_| ())
}

/// The bottom of every stack: one POST, classified.
#[derive(Clone)]
struct HttpPost {
    client: PushClient,
}

impl HttpPost {
    async fn post(self, post: Post) -> Result<(), Failure> {
        let mut request = Request::post(post.uri)
            .body(Full::new(post.body))
            .map_err(|e| Failure::Rejected(format!("cannot build the request: {e}")))?;
        *request.headers_mut() = post.headers;
        let response = self
            .client
            .request(request)
            .await
            .map_err(connect_failure)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // Read the (small) answer so the connection can be reused; a body
        // that never ends is cut by the attempt timeout.
        let _ = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await;
        classify(status, retry_after)
    }
}

impl Service<Post> for HttpPost {
    type Response = ();
    type Error = Failure;
    type Future = BoxFuture<'static, Result<(), Failure>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, post: Post) -> Self::Future {
        Box::pin(self.clone().post(post))
    }
}

/// 2xx delivers; 408 and 5xx are transient; 429 waits; any other answer
/// (a 3xx redirect included: redirects are never followed) is permanent.
fn classify(status: StatusCode, retry_after: Option<Duration>) -> Result<(), Failure> {
    if status.is_success() {
        Ok(())
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        Err(Failure::RateLimited(retry_after))
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        Err(Failure::Status(status))
    } else if status.is_redirection() {
        Err(Failure::Rejected(format!(
            "receiver answered {status}; redirects are not followed"
        )))
    } else {
        Err(Failure::Rejected(format!("receiver answered {status}")))
    }
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3); the LLM
/// client reads it the same way.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// A connection failure; one the guard refused is permanent (a name that
/// does not resolve may resolve later: transient).
fn connect_failure(e: hyper_util::client::legacy::Error) -> Failure {
    if let Some(refusal) = Refusal::find_in(&e).filter(|r| !r.is_unresolvable()) {
        return Failure::Rejected(refusal.to_string());
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut chain: Vec<String> = Vec::new();
    while let Some(s) = source {
        let text = s.to_string();
        if !chain.iter().any(|c| c.contains(&text)) {
            chain.push(text);
        }
        source = s.source();
    }
    Failure::Transport(chain.join(": "))
}

/// What the breaker sees.
type AttemptResult = Result<(), TimeoutError<Failure>>;
/// What the retry layer sees.
type GuardedResult = Result<(), CircuitBreakerError<TimeoutError<Failure>>>;
/// What comes out of a host's stack.
type StackError = ConcurrencyLimitError<RetryError<CircuitBreakerError<TimeoutError<Failure>>>>;

fn breaker_failure(result: &AttemptResult) -> bool {
    match result {
        Ok(()) => false,
        Err(TimeoutError::Elapsed(_)) => true,
        Err(TimeoutError::Inner(f)) => f.breaker_failure(),
    }
}

fn retryable(result: &GuardedResult) -> bool {
    match result {
        Ok(()) | Err(CircuitBreakerError::Open) => false,
        Err(CircuitBreakerError::Inner(TimeoutError::Elapsed(_))) => true,
        Err(CircuitBreakerError::Inner(TimeoutError::Inner(f))) => f.transient(),
    }
}

type HostStack = BoxCloneSyncService<Post, (), StackError>;

/// The outbound side: one stack per receiver host over one pooled client.
pub(crate) struct Deliverer {
    guard: Arc<Guard>,
    /// Built on the first delivery: the system's trust store costs about a
    /// MiB that a server nobody registers a webhook with never needs. With
    /// a CA bundle, built at once (a bad file is a startup error).
    client: OnceLock<Result<PushClient, String>>,
    ca: Option<PathBuf>,
    settings: DeliverySettings,
    hosts: DashMap<String, HostStack>,
}

impl Deliverer {
    /// A deliverer whose connections go through `guard`; `https://`
    /// receivers are verified against `ca` or the system's trust store.
    pub(crate) fn new(
        guard: Arc<Guard>,
        settings: DeliverySettings,
        ca: Option<&std::path::Path>,
    ) -> Result<Self, crate::http::tls::TlsError> {
        let client = OnceLock::new();
        if ca.is_some() {
            let _ = client.set(Ok(Self::build_client(&guard, &settings, ca)?));
        }
        Ok(Self {
            guard,
            client,
            ca: ca.map(Path::to_path_buf),
            settings,
            hosts: DashMap::new(),
        })
    }

    fn build_client(
        guard: &Arc<Guard>,
        settings: &DeliverySettings,
        ca: Option<&Path>,
    ) -> Result<PushClient, crate::http::tls::TlsError> {
        let mut connector = HttpConnector::new_with_resolver(GuardedResolver::new(guard.clone()));
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(settings.attempt_timeout));
        let connector = crate::http::tls::https_connector(ca, connector)?;
        Ok(Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(settings.host_concurrency)
            .build(connector))
    }

    fn client(&self) -> Result<PushClient, Failure> {
        self.client
            .get_or_init(|| {
                Self::build_client(&self.guard, &self.settings, self.ca.as_deref())
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|e| Failure::Transport(format!("no https client: {e}")))
    }

    /// The guard every URL passes.
    pub(crate) fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    /// One call of the host's stack for `n`, in a span of its own under
    /// the trace that accepted the event (kept in the outbox).
    pub(crate) async fn attempt(&self, n: &Notification) -> Attempted {
        let span = tracing::info_span!(
            target: crate::otel::TARGET,
            "push.deliver",
            otel.kind = "client",
            a2a.task_id = %n.task_id,
            a2a.push_config_id = n.config_id(),
        );
        crate::otel::set_parent_from(&span, n.traceparent.as_deref(), n.tracestate.as_deref());
        tracing::Instrument::instrument(self.attempt_in_span(n), span).await
    }

    async fn attempt_in_span(&self, n: &Notification) -> Attempted {
        let (mut post, host) = match Post::of(n, &self.guard) {
            Ok(p) => p,
            Err(f) => return Attempted::Never(f),
        };
        crate::otel::inject(&mut post.headers);
        let client = match self.client() {
            Ok(c) => c,
            Err(failure) => {
                return Attempted::Later {
                    failure,
                    after: None,
                }
            }
        };
        let stack = self.stack(&host, client);
        match stack.oneshot(post).await {
            Ok(()) => Attempted::Delivered,
            Err(e) => self.outcome(e),
        }
    }

    fn outcome(&self, e: StackError) -> Attempted {
        let inner = match e {
            // The limiter waits for a permit; it is never shed.
            ConcurrencyLimitError::Overloaded => {
                return Attempted::Later {
                    failure: Failure::Transport("host concurrency limit closed".into()),
                    after: None,
                }
            }
            ConcurrencyLimitError::Inner(retry) => retry.into_inner(),
        };
        match inner {
            CircuitBreakerError::Open => Attempted::Later {
                failure: Failure::Transport("the host's circuit breaker is open".into()),
                after: Some(self.settings.breaker_open),
            },
            CircuitBreakerError::Inner(TimeoutError::Elapsed(_)) => Attempted::Later {
                failure: Failure::Transport(format!(
                    "no answer within {:?}",
                    self.settings.attempt_timeout
                )),
                after: None,
            },
            CircuitBreakerError::Inner(TimeoutError::Inner(f)) => match f {
                Failure::Rejected(_) => Attempted::Never(f),
                Failure::RateLimited(after) => Attempted::Later { failure: f, after },
                Failure::Status(_) | Failure::Transport(_) => Attempted::Later {
                    failure: f,
                    after: None,
                },
            },
        }
    }

    /// The stack of `host`, built on first use.
    fn stack(&self, host: &str, client: PushClient) -> HostStack {
        if let Some(s) = self.hosts.get(host) {
            return s.clone();
        }
        self.hosts
            .entry(host.to_string())
            .or_insert_with(|| self.build(host, client))
            .clone()
    }

    fn build(&self, host: &str, client: PushClient) -> HostStack {
        let s = &self.settings;
        let breaker = CircuitBreakerLayer::builder()
            .name(format!("push {host}"))
            .consecutive_failures(s.breaker_failures.max(1))
            .open_duration(s.breaker_open)
            .half_open_max_probes(1)
            .half_open_successes(1)
            .state_metric_name("a2a_push_breaker_state")
            .transitions_metric_name("a2a_push_breaker_transitions_total")
            .failure_if(breaker_failure as fn(&AttemptResult) -> bool)
            .build();
        let initial =
            (s.attempt_timeout / 20).clamp(Duration::from_millis(10), Duration::from_millis(500));
        let retry = RetryLayer::new()
            .max_attempts(s.max_attempts.max(1))
            .backoff(Backoff::exponential(initial, s.attempt_timeout).jitter(Jitter::Full))
            // Retries add at most 20 % load (plus 2/s) per host over 10 s.
            .budget(RetryBudget::new(Duration::from_secs(10), 2, 0.2))
            .retry_if(retryable as fn(&GuardedResult) -> bool);
        let http = HttpPost { client };
        let count = |post: Post| {
            metrics::counter!("a2a_push_attempts_total").increment(1);
            post
        };
        let stack = ServiceBuilder::new()
            .layer(ConcurrencyLimitLayer::new(s.host_concurrency.max(1)))
            .layer(retry)
            .layer(breaker)
            .map_request(count)
            .layer(TimeoutLayer::new(s.attempt_timeout))
            .service(http);
        BoxCloneSyncService::new(stack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        assert_eq!(classify(StatusCode::NO_CONTENT, None), Ok(()));
        assert_eq!(
            classify(StatusCode::BAD_GATEWAY, None),
            Err(Failure::Status(StatusCode::BAD_GATEWAY))
        );
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(2))),
            Err(Failure::RateLimited(Some(Duration::from_secs(2))))
        );
        assert!(matches!(
            classify(StatusCode::FOUND, None),
            Err(Failure::Rejected(m)) if m.contains("redirects")
        ));
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, None),
            Err(Failure::Rejected(_))
        ));
        assert!(Failure::Status(StatusCode::REQUEST_TIMEOUT).transient());
        assert!(!Failure::RateLimited(None).breaker_failure());
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        let later = std::time::SystemTime::now() + Duration::from_secs(60);
        let d = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(
            d > Duration::from_secs(50) && d <= Duration::from_secs(60),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
