//! The HTTP side of the external services: the GET service at the bottom of
//! each stack, how an answer is classified (transient? a breaker failure?),
//! and the stack itself.

use super::{ExternalConfig, ExternalError};
use crate::client::error_chain;
use abacus_layers::circuit_breaker::{
    CircuitBreakerError, CircuitBreakerHandle, CircuitBreakerLayer,
};
use abacus_layers::retry::{Backoff, Jitter, RetryBudget, RetryError, RetryLayer};
use abacus_layers::timeout::{TimeoutError, TimeoutLayer};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{header, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder};

/// Largest answer body read from a service.
const MAX_BODY: usize = 64 * 1024;
/// Longest service message kept in a [`ExternalError::Rejected`].
const MAX_MESSAGE: usize = 200;

/// The pooled HTTP(S) client shared by every service of one `ExternalMath`.
pub(super) type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// One client stack: request in, answer text out.
pub(super) type ExternalService = BoxCloneSyncService<Attempt, String, ExternalError>;

/// `https://` servers are verified against `ca` (a PEM bundle) or the
/// system's trust store.
pub(super) fn http_client(
    connect_timeout: Duration,
    ca: Option<&std::path::Path>,
) -> Result<HttpClient, crate::http::tls::TlsError> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    let connector = crate::http::tls::https_connector(ca, connector)?;
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(8)
        .build(connector))
}

/// Which API a service speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavor {
    /// `GET <base>?expr=<expression>`; 400 = invalid expression.
    MathJs,
    /// `GET <base>?appid=<appid>&i=<query>`; 501 = no short answer, 403 = bad appid.
    Wolfram,
}

/// Percent-encodes `s` for a query component: everything but the RFC 3986
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX` of its UTF-8
/// bytes (so a space is `%20`, never `+`).
pub(super) fn encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0x0f)] as char);
        }
    }
    out
}

/// Checks a configured base URL: `http` or `https` with a host.
pub(super) fn check_base(base: &str) -> Result<(), String> {
    let uri: Uri = base.parse().map_err(|e| format!("invalid URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("the URL must start with http:// or https://".into()),
    }
    if uri.authority().is_none() {
        return Err("the URL has no host".into());
    }
    Ok(())
}

/// The URL of one question.
pub(super) fn request_uri(
    base: &str,
    flavor: Flavor,
    appid: Option<&str>,
    question: &str,
) -> Result<Uri, ExternalError> {
    let sep = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    let url = match flavor {
        Flavor::MathJs => format!("{base}{sep}expr={}", encode(question)),
        Flavor::Wolfram => format!(
            "{base}{sep}appid={}&i={}",
            encode(appid.unwrap_or_default()),
            encode(question)
        ),
    };
    // The message never includes the URL: it may carry the appid.
    url.parse()
        .map_err(|_| ExternalError::Transport("cannot build the request URL".into()))
}

/// A request travelling down the stack; clones share the attempt counter.
#[derive(Clone, Debug)]
pub(super) struct Attempt {
    pub(super) uri: Uri,
    pub(super) tries: Arc<AtomicU32>,
}

impl Attempt {
    pub(super) fn new(uri: Uri) -> Self {
        Attempt {
            uri,
            tries: Arc::new(AtomicU32::new(0)),
        }
    }
}

/// The HTTP service's error, with its classification.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) error: ExternalError,
    /// Worth another attempt.
    pub(super) transient: bool,
    /// Counts against the breaker.
    pub(super) breaker_failure: bool,
}

impl Failure {
    fn transient(error: ExternalError) -> Self {
        Failure {
            error,
            transient: true,
            breaker_failure: true,
        }
    }
}

/// Turns a status and body into an answer or a classified failure.
pub(super) fn classify(flavor: Flavor, status: StatusCode, body: &str) -> Result<String, Failure> {
    let code = status.as_u16();
    let text = body.trim();
    let message = |fallback: &str| {
        if text.is_empty() {
            fallback.to_string()
        } else {
            truncate(text, MAX_MESSAGE)
        }
    };
    if status == StatusCode::OK {
        return if text.is_empty() {
            Err(Failure {
                error: ExternalError::Rejected("the service returned an empty answer".into()),
                transient: false,
                breaker_failure: false,
            })
        } else {
            Ok(text.to_string())
        };
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        // Wolfram's 501 is an answer ("no short answer"), not an outage.
        if !(flavor == Flavor::Wolfram && status == StatusCode::NOT_IMPLEMENTED) {
            return Err(Failure::transient(ExternalError::Status(code)));
        }
    }
    let (error, breaker_failure) = match (flavor, code) {
        // The service judged the question: the service itself is fine.
        (Flavor::MathJs, 400) => (
            ExternalError::Rejected(message("invalid expression")),
            false,
        ),
        (Flavor::Wolfram, 400) => (ExternalError::Rejected(message("invalid query")), false),
        (Flavor::Wolfram, 501) => (
            ExternalError::Rejected(message("no short answer available")),
            false,
        ),
        // A bad appid, a wrong path, a redirect: unusable as configured.
        (Flavor::Wolfram, 403) => (
            ExternalError::Rejected(format!("invalid appid: {}", message("forbidden"))),
            true,
        ),
        (_, 400..=499) => (
            ExternalError::Rejected(format!("HTTP {code}: {}", message("client error"))),
            true,
        ),
        _ => (ExternalError::Status(code), true),
    };
    Err(Failure {
        error,
        transient: false,
        breaker_failure,
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The bottom of a stack: one GET, classified.
#[derive(Clone)]
pub(super) struct HttpGet {
    client: HttpClient,
    flavor: Flavor,
    /// Scrubbed from every message (the Wolfram appid).
    secret: Option<Arc<str>>,
}

impl HttpGet {
    pub(super) fn new(client: HttpClient, flavor: Flavor, secret: Option<Arc<str>>) -> Self {
        HttpGet {
            client,
            flavor,
            secret,
        }
    }

    fn scrub(&self, mut failure: Failure) -> Failure {
        if let Some(secret) = self.secret.as_deref().filter(|s| !s.is_empty()) {
            let encoded = encode(secret);
            let clean = |m: &mut String| {
                for s in [secret, encoded.as_str()] {
                    if m.contains(s) {
                        *m = m.replace(s, "[redacted]");
                    }
                }
            };
            match &mut failure.error {
                ExternalError::Rejected(m) | ExternalError::Transport(m) => clean(m),
                _ => {}
            }
        }
        failure
    }

    async fn get(self, uri: Uri) -> Result<String, Failure> {
        let mut request = Request::get(uri)
            .header(
                header::USER_AGENT,
                concat!("abacus/", env!("CARGO_PKG_VERSION")),
            )
            .header(header::ACCEPT, "text/plain")
            .body(Empty::new())
            .map_err(|e| Failure {
                error: ExternalError::Transport(format!("cannot build the request: {e}")),
                transient: false,
                breaker_failure: false,
            })?;
        crate::otel::inject(request.headers_mut());
        let response = self.client.request(request).await.map_err(|e| {
            self.scrub(Failure::transient(ExternalError::Transport(error_chain(
                &e,
            ))))
        })?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| {
                self.scrub(Failure::transient(ExternalError::Transport(format!(
                    "reading the answer: {}",
                    error_chain(e.as_ref())
                ))))
            })?
            .to_bytes();
        classify(self.flavor, status, &String::from_utf8_lossy(&body)).map_err(|f| self.scrub(f))
    }
}

impl Service<Attempt> for HttpGet {
    type Response = String;
    type Error = Failure;
    type Future = BoxFuture<'static, Result<String, Failure>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        // The pool readies a connection inside the call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, attempt: Attempt) -> Self::Future {
        Box::pin(self.clone().get(attempt.uri))
    }
}

/// What the breaker sees: one attempt, bounded by the per-attempt timeout.
type AttemptResult = Result<String, TimeoutError<Failure>>;
/// What the retry layer sees.
type GuardedResult = Result<String, CircuitBreakerError<TimeoutError<Failure>>>;
/// What comes out of the overall deadline.
type StackError = TimeoutError<RetryError<CircuitBreakerError<TimeoutError<Failure>>>>;

/// Breaker failures: attempt timeouts and failures classified as such.
fn breaker_failure(result: &AttemptResult) -> bool {
    match result {
        Ok(_) => false,
        Err(TimeoutError::Elapsed(_)) => true,
        Err(TimeoutError::Inner(f)) => f.breaker_failure,
    }
}

/// Retry transient failures and attempt timeouts, never an open breaker.
fn retryable(result: &GuardedResult) -> bool {
    match result {
        Ok(_) | Err(CircuitBreakerError::Open) => false,
        Err(CircuitBreakerError::Inner(TimeoutError::Elapsed(_))) => true,
        Err(CircuitBreakerError::Inner(TimeoutError::Inner(f))) => f.transient,
    }
}

fn into_external(e: StackError) -> ExternalError {
    match e {
        TimeoutError::Elapsed(_) => ExternalError::Timeout,
        TimeoutError::Inner(retry) => match retry.into_inner() {
            CircuitBreakerError::Open => ExternalError::Unavailable,
            CircuitBreakerError::Inner(TimeoutError::Elapsed(_)) => ExternalError::Timeout,
            CircuitBreakerError::Inner(TimeoutError::Inner(f)) => f.error,
        },
    }
}

/// The first retry waits up to `min(100 ms, timeout / 10)` (full jitter),
/// doubling up to the per-attempt timeout.
pub(super) fn backoff(config: &ExternalConfig) -> Backoff {
    let initial = (config.timeout / 10).clamp(Duration::from_millis(1), Duration::from_millis(100));
    Backoff::exponential(initial, config.timeout.max(initial)).jitter(Jitter::Full)
}

/// Builds `deadline ─► retry ─► (retry counter) ─► breaker ─► attempt timeout ─► http`.
pub(super) fn build_stack(
    name: &'static str,
    http: HttpGet,
    config: &ExternalConfig,
) -> (ExternalService, CircuitBreakerHandle) {
    let breaker = CircuitBreakerLayer::builder()
        .name(name)
        .consecutive_failures(u32::try_from(config.breaker_failures).unwrap_or(u32::MAX))
        // Mostly failing over a busy window also trips it; a flaky service
        // that retries rescue does not.
        .failure_rate_threshold(config.breaker_failure_rate)
        .minimum_calls(config.breaker_min_calls)
        .sliding_window(config.breaker_window)
        .open_duration(config.breaker_open)
        .half_open_max_probes(1)
        .half_open_successes(1)
        .state_metric_name("a2a_circuit_breaker_state")
        .transitions_metric_name("a2a_circuit_breaker_transitions_total")
        .failure_if(breaker_failure as fn(&AttemptResult) -> bool)
        .build();
    let handle = breaker.handle();
    let retry = RetryLayer::new()
        .max_attempts(config.max_attempts)
        .backoff(backoff(config))
        .max_total_delay(config.deadline)
        // Retries add at most 20 % load (plus 5/s) over 10 s: no retry storms.
        .budget(RetryBudget::new(Duration::from_secs(10), 5, 0.2))
        .retry_if(retryable as fn(&GuardedResult) -> bool);
    let count_retries = move |attempt: Attempt| {
        if attempt.tries.fetch_add(1, Ordering::Relaxed) > 0 {
            metrics::counter!("a2a_retries_total", "service" => name).increment(1);
        }
        attempt
    };
    let stack = ServiceBuilder::new()
        .map_err(into_external)
        .layer(TimeoutLayer::new(config.deadline))
        .layer(retry)
        .map_request(count_retries)
        .layer(breaker)
        .layer(TimeoutLayer::new(config.timeout))
        .service(http);
    (BoxCloneSyncService::new(stack), handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_unreserved_only() {
        assert_eq!(encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(encode("2 + 3"), "2%20%2B%203");
        assert_eq!(encode("x^2 & y=1/2?"), "x%5E2%20%26%20y%3D1%2F2%3F");
        assert_eq!(encode("é∫"), "%C3%A9%E2%88%AB");
        assert_eq!(encode(""), "");
    }

    #[test]
    fn builds_urls() {
        let u = request_uri("http://h/v4/", Flavor::MathJs, None, "1 + 1").unwrap();
        assert_eq!(u.to_string(), "http://h/v4/?expr=1%20%2B%201");
        let u = request_uri("http://h/v4?precision=5", Flavor::MathJs, None, "2").unwrap();
        assert_eq!(u.query(), Some("precision=5&expr=2"));
        let u = request_uri("http://h/v1/result", Flavor::Wolfram, Some("A B"), "pi").unwrap();
        assert_eq!(u.query(), Some("appid=A%20B&i=pi"));
    }

    #[test]
    fn checks_bases() {
        assert!(check_base("http://127.0.0.1:1/x").is_ok());
        assert!(check_base("https://api.mathjs.org/v4/").is_ok());
        assert!(check_base("ftp://x/").is_err());
        assert!(check_base("/relative").is_err());
        assert!(check_base("not a url").is_err());
    }

    fn flags(r: Result<String, Failure>) -> (ExternalError, bool, bool) {
        let f = r.unwrap_err();
        (f.error, f.transient, f.breaker_failure)
    }

    #[test]
    fn classification() {
        use ExternalError::*;
        let m = Flavor::MathJs;
        let w = Flavor::Wolfram;
        assert_eq!(classify(m, StatusCode::OK, " 42\n").unwrap(), "42");
        assert!(!flags(classify(m, StatusCode::OK, "")).2);
        assert_eq!(
            flags(classify(
                m,
                StatusCode::BAD_REQUEST,
                "Error: Undefined symbol x"
            )),
            (Rejected("Error: Undefined symbol x".into()), false, false)
        );
        assert_eq!(
            flags(classify(m, StatusCode::SERVICE_UNAVAILABLE, "")),
            (Status(503), true, true)
        );
        assert_eq!(
            flags(classify(m, StatusCode::TOO_MANY_REQUESTS, "")),
            (Status(429), true, true)
        );
        assert_eq!(
            flags(classify(m, StatusCode::NOT_IMPLEMENTED, "")),
            (Status(501), true, true)
        );
        let (e, t, f) = flags(classify(m, StatusCode::NOT_FOUND, ""));
        assert!(matches!(e, Rejected(_)) && !t && f);
        let (e, t, f) = flags(classify(w, StatusCode::NOT_IMPLEMENTED, "No short answer"));
        assert_eq!(
            (e, t, f),
            (Rejected("No short answer".into()), false, false)
        );
        let (e, t, f) = flags(classify(w, StatusCode::FORBIDDEN, "Error 1: Invalid appid"));
        assert!(matches!(e, Rejected(_)) && !t && f);
        assert_eq!(
            flags(classify(w, StatusCode::BAD_GATEWAY, "")),
            (Status(502), true, true)
        );
        let (e, t, f) = flags(classify(w, StatusCode::MOVED_PERMANENTLY, ""));
        assert_eq!((e, t, f), (Status(301), false, true));
    }

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("ééé", 3), "é…");
        assert_eq!(truncate("abc", 3), "abc");
    }

    #[test]
    fn scrubs_the_secret() {
        let get = HttpGet::new(
            http_client(Duration::from_secs(1), None).unwrap(),
            Flavor::Wolfram,
            Some("s3cr et".into()),
        );
        let f = get.scrub(Failure::transient(ExternalError::Transport(
            "bad s3cr et and s3cr%20et".into(),
        )));
        assert_eq!(
            f.error,
            ExternalError::Transport("bad [redacted] and [redacted]".into())
        );
    }
}
