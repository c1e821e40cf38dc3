//! The HTTP side of the LLM client: the POST at the bottom of the stack,
//! how an answer is classified (retried? a breaker failure? a wait the
//! provider asked for?), and the stack of `abacus-layers` around it.
//!
//! ```text
//! concurrency limit ─► retry (+ Retry-After) ─► circuit breaker "llm" ─► attempt timeout ─► POST
//! ```
//!
//! The call's deadline is a `tokio::time::timeout` around the whole stack
//! (in [`super::LlmClient`]): it also bounds the wait for a concurrency
//! permit, which happens in `poll_ready`, before any layer's future runs.

use super::wire::{ChatResponse, ErrorEnvelope};
use super::{Completion, LlmConfig, LlmError};
use crate::client::conn::{snippet, sse, Pool};
use crate::client::{error_chain, ClientError};
use crate::http::SseEvent;
use abacus_layers::circuit_breaker::{
    CircuitBreakerError, CircuitBreakerHandle, CircuitBreakerLayer,
};
use abacus_layers::concurrency::{ConcurrencyLimitError, ConcurrencyLimitLayer};
use abacus_layers::retry::{Backoff, Jitter, RetryBudget, RetryError, RetryLayer};
use abacus_layers::stream::{StreamTimeout, StreamTimeouts, TrackEnd};
use abacus_layers::timeout::{TimeoutError, TimeoutLayer};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt};
use http::{header, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder};

/// Largest whole answer read.
const MAX_ANSWER: usize = 8 * 1024 * 1024;
/// Largest error body read (for its message).
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Largest streamed event.
const MAX_EVENT: usize = 1024 * 1024;

/// The events of a streamed answer, as parsed by the project's SSE reader.
pub(super) type Events = BoxStream<'static, Result<SseEvent, LlmError>>;

/// One whole stack: attempt in, reply out.
pub(super) type LlmService = BoxCloneSyncService<Attempt, Reply, LlmError>;

/// Whether the answer is asked for whole or streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// `stream: false`: one JSON answer.
    Whole,
    /// `stream: true`: SSE chunks.
    Stream,
}

/// A request travelling down the stack; clones share the attempt counter.
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    pub(super) body: Bytes,
    pub(super) mode: Mode,
    pub(super) tries: Arc<AtomicU32>,
}

impl Attempt {
    pub(super) fn new(body: Bytes, mode: Mode) -> Self {
        Attempt {
            body,
            mode,
            tries: Arc::new(AtomicU32::new(0)),
        }
    }
}

/// What the POST gives back: a whole answer, or the events of a stream
/// (a provider that ignores `stream: true` gives a whole answer).
pub(super) enum Reply {
    Whole(Completion),
    Events(Events),
}

impl TrackEnd for Reply {
    type Output<G: Send + Sync + 'static> = Self;

    /// The concurrency permit stays with a stream until it ends or is dropped.
    fn track_end<G: Send + Sync + 'static>(self, guard: G) -> Self {
        match self {
            Reply::Whole(c) => Reply::Whole(c),
            Reply::Events(s) => Reply::Events(s.track_end(guard)),
        }
    }
}

impl StreamTimeout for Reply {
    type Output = Self;

    /// A stream that is silent too long (first token, between tokens) ends
    /// with [`LlmError::Timeout`].
    fn stream_timeout(self, timeouts: StreamTimeouts) -> Self {
        match self {
            Reply::Whole(c) => Reply::Whole(c),
            Reply::Events(s) => Reply::Events(s.stream_timeout(timeouts)),
        }
    }
}

/// The POST's error, with its classification.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) error: LlmError,
    /// Worth another attempt.
    pub(super) transient: bool,
    /// Counts against the breaker.
    pub(super) breaker_failure: bool,
    /// The wait the provider asked for (`Retry-After` of a 429 or 503).
    pub(super) retry_after: Option<Duration>,
}

impl Failure {
    fn new(error: LlmError, transient: bool, breaker_failure: bool) -> Self {
        Failure {
            error,
            transient,
            breaker_failure,
            retry_after: None,
        }
    }
}

/// A non-success status and its body as a classified failure.
///
/// * 429: retried (after its `Retry-After`), not a breaker failure: the
///   provider is up and asked us to wait.
/// * 408, 500, 502, 503, 504: retried (503 after its `Retry-After`), breaker failures.
/// * 400, 413, 422: this request was refused (too long a prompt, a bad
///   parameter): neither retried nor a breaker failure.
/// * Any other status (401, 403, 404 — a wrong key, model or URL — 501, a
///   redirect): not retried, a breaker failure: unusable as configured.
pub(super) fn classify(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> Failure {
    let code = status.as_u16();
    let message = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .and_then(|e| e.error.message().map(str::to_string))
        .filter(|m| !m.trim().is_empty())
        .map(|m| snippet(m.as_bytes()))
        .unwrap_or_else(|| match snippet(body) {
            s if s.is_empty() => status.canonical_reason().unwrap_or("error").to_string(),
            s => s,
        });
    let status_error = LlmError::Status {
        status: code,
        message,
    };
    match code {
        429 => Failure {
            error: LlmError::RateLimited { retry_after },
            transient: true,
            breaker_failure: false,
            retry_after,
        },
        503 => Failure {
            retry_after,
            ..Failure::new(status_error, true, true)
        },
        408 | 500 | 502 | 504 => Failure::new(status_error, true, true),
        400 | 413 | 422 => Failure::new(status_error, false, false),
        _ => Failure::new(status_error, false, true),
    }
}

/// A whole answer as a [`Completion`]: the first choice's text, which
/// must not be empty.
pub(super) fn completion(
    answer: ChatResponse,
    fallback_model: &str,
) -> Result<Completion, LlmError> {
    let choice = answer.choices.into_iter().next();
    let finish_reason = choice.as_ref().and_then(|c| c.finish_reason.clone());
    let text = choice
        .and_then(|c| c.message)
        .and_then(|m| m.content)
        .unwrap_or_default();
    if text.trim().is_empty() {
        return Err(LlmError::Invalid("the answer has no text".into()));
    }
    Ok(Completion {
        text,
        model: answer.model.unwrap_or_else(|| fallback_model.to_string()),
        usage: answer.usage,
        finish_reason,
    })
}

/// The bottom of the stack: one POST to `$LLM_BASE_URL/chat/completions`.
#[derive(Clone)]
pub(super) struct ChatPost {
    pool: Pool,
    uri: Uri,
    model: Arc<str>,
    /// `Bearer <key>`, marked sensitive.
    auth: Option<HeaderValue>,
    /// Scrubbed from every message.
    secret: Option<Arc<str>>,
}

impl ChatPost {
    pub(super) fn new(
        pool: Pool,
        uri: Uri,
        model: Arc<str>,
        auth: Option<HeaderValue>,
        secret: Option<Arc<str>>,
    ) -> Self {
        ChatPost {
            pool,
            uri,
            model,
            auth,
            secret,
        }
    }

    fn scrub(&self, mut failure: Failure) -> Failure {
        if let Some(secret) = self.secret.as_deref().filter(|s| !s.is_empty()) {
            let clean = |m: &mut String| {
                if m.contains(secret) {
                    *m = m.replace(secret, "[redacted]");
                }
            };
            match &mut failure.error {
                LlmError::Status { message, .. } => clean(message),
                LlmError::Transport(m) | LlmError::Invalid(m) => clean(m),
                _ => {}
            }
        }
        failure
    }

    async fn post(self, attempt: Attempt) -> Result<Reply, Failure> {
        let accept = match attempt.mode {
            Mode::Whole => "application/json",
            Mode::Stream => "text/event-stream",
        };
        let mut request = Request::post(self.uri.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, accept)
            .header(
                header::USER_AGENT,
                concat!("abacus/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(attempt.body))
            .map_err(|e| {
                Failure::new(
                    LlmError::Transport(format!("cannot build the request: {e}")),
                    false,
                    false,
                )
            })?;
        if let Some(auth) = &self.auth {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, auth.clone());
        }
        crate::otel::inject(request.headers_mut());
        let response = self.pool.request(request).await.map_err(|e| {
            self.scrub(Failure::new(
                LlmError::Transport(error_chain(&e)),
                true,
                true,
            ))
        })?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(crate::push::parse_retry_after);
            // The message is a courtesy: a body that cannot be read leaves it out.
            let body = read(response, MAX_ERROR_BODY).await.unwrap_or_default();
            return Err(self.scrub(classify(status, retry_after, &body)));
        }
        let streamed = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if attempt.mode == Mode::Stream && streamed {
            return Ok(Reply::Events(events(response.into_body())));
        }
        let body = read(response, MAX_ANSWER)
            .await
            .map_err(|e| self.scrub(Failure::new(LlmError::Transport(e), true, true)))?;
        let answer: ChatResponse = serde_json::from_slice(&body).map_err(|e| {
            self.scrub(Failure::new(
                LlmError::Invalid(format!("not a chat completion ({e}): {}", snippet(&body))),
                false,
                true,
            ))
        })?;
        completion(answer, &self.model)
            .map(Reply::Whole)
            .map_err(|e| Failure::new(e, false, true))
    }
}

/// The whole body, at most `limit` bytes.
async fn read(response: Response<Incoming>, limit: usize) -> Result<Bytes, String> {
    Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| format!("reading the answer: {}", error_chain(e.as_ref())))
}

/// The SSE events of a streamed answer; a broken connection is a
/// transport error, a malformed stream an invalid answer.
fn events(body: Incoming) -> Events {
    sse(body, MAX_EVENT)
        .map(|event| {
            event.map_err(|e| match e {
                ClientError::Transport(m) => LlmError::Transport(m),
                ClientError::Invalid(m) => LlmError::Invalid(m),
                other => LlmError::Transport(other.to_string()),
            })
        })
        .boxed()
}

impl Service<Attempt> for ChatPost {
    type Response = Reply;
    type Error = Failure;
    type Future = BoxFuture<'static, Result<Reply, Failure>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        // The pool readies a connection inside the call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, attempt: Attempt) -> Self::Future {
        Box::pin(self.clone().post(attempt))
    }
}

/// What the breaker sees: one attempt, bounded by the attempt timeout.
type AttemptResult = Result<Reply, TimeoutError<Failure>>;
/// What the retry layer sees.
type GuardedResult = Result<Reply, CircuitBreakerError<TimeoutError<Failure>>>;
/// What comes out of the stack.
type StackError = ConcurrencyLimitError<RetryError<CircuitBreakerError<TimeoutError<Failure>>>>;

/// Breaker failures: attempt timeouts and failures classified as such.
fn breaker_failure(result: &AttemptResult) -> bool {
    match result {
        Ok(_) => false,
        Err(TimeoutError::Elapsed(_)) => true,
        Err(TimeoutError::Inner(f)) => f.breaker_failure,
    }
}

/// Retry transient failures (429 included), never an open breaker, nor an
/// attempt that timed out: a model that needed the whole timeout once
/// likely needs it again, and the abandoned generation may still be
/// running on the provider.
fn retryable(result: &GuardedResult) -> bool {
    match result {
        Ok(_) | Err(CircuitBreakerError::Open) => false,
        Err(CircuitBreakerError::Inner(TimeoutError::Elapsed(_))) => false,
        Err(CircuitBreakerError::Inner(TimeoutError::Inner(f))) => f.transient,
    }
}

/// The provider's `Retry-After`, which replaces the backoff's delay.
fn server_wait(result: &GuardedResult) -> Option<Duration> {
    match result {
        Err(CircuitBreakerError::Inner(TimeoutError::Inner(f))) => f.retry_after,
        _ => None,
    }
}

fn into_llm(e: StackError) -> LlmError {
    match e {
        // Only a closed semaphore: the limiter waits, it does not shed.
        ConcurrencyLimitError::Overloaded => {
            LlmError::Transport("the LLM client's concurrency limit is closed".into())
        }
        ConcurrencyLimitError::Inner(retry) => match retry.into_inner() {
            CircuitBreakerError::Open => LlmError::Unavailable,
            CircuitBreakerError::Inner(TimeoutError::Elapsed(_)) => LlmError::Timeout,
            CircuitBreakerError::Inner(TimeoutError::Inner(f)) => f.error,
        },
    }
}

/// The first retry waits up to `min(250 ms, timeout / 10)` (full jitter),
/// doubling up to 10 s.
fn backoff(config: &LlmConfig) -> Backoff {
    let initial = (config.timeout / 10).clamp(Duration::from_millis(1), Duration::from_millis(250));
    Backoff::exponential(initial, Duration::from_secs(10).max(initial)).jitter(Jitter::Full)
}

/// Builds `concurrency ─► retry ─► (retry counter) ─► breaker ─► attempt timeout ─► POST`.
pub(super) fn build(post: ChatPost, config: &LlmConfig) -> (LlmService, CircuitBreakerHandle) {
    let breaker = CircuitBreakerLayer::builder()
        .name("llm")
        .consecutive_failures(config.breaker_failures)
        // Consecutive failures only: a rate over a window would need calls
        // an LLM path rarely sees.
        .failure_rate_threshold(2.0)
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
        // A wait (backoff or Retry-After) that would pass the deadline is
        // not slept: the call gives up with the provider's answer.
        .max_total_delay(config.deadline)
        // Retries add at most 20 % load (plus 5/s) over 10 s.
        .budget(RetryBudget::new(Duration::from_secs(10), 5, 0.2))
        .retry_if(retryable as fn(&GuardedResult) -> bool)
        .retry_after(server_wait as fn(&GuardedResult) -> Option<Duration>);
    let count_retries = |attempt: Attempt| {
        if attempt.tries.fetch_add(1, Ordering::Relaxed) > 0 {
            metrics::counter!("a2a_retries_total", "service" => "llm").increment(1);
        }
        attempt
    };
    let attempt_timeout = TimeoutLayer::new(config.timeout)
        .first_item_timeout(config.timeout)
        .idle_timeout(config.timeout);
    let stack = ServiceBuilder::new()
        .map_err(into_llm)
        .layer(ConcurrencyLimitLayer::new(config.max_concurrency.max(1)))
        .layer(retry)
        .map_request(count_retries)
        .layer(breaker)
        .layer(attempt_timeout)
        .service(post);
    (BoxCloneSyncService::new(stack), handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(f: Failure) -> (LlmError, bool, bool, Option<Duration>) {
        (f.error, f.transient, f.breaker_failure, f.retry_after)
    }

    #[test]
    fn statuses_are_classified() {
        let s = |code: u16| StatusCode::from_u16(code).unwrap();
        let wait = Some(Duration::from_secs(2));
        assert_eq!(
            flags(classify(s(429), wait, b"")),
            (
                LlmError::RateLimited { retry_after: wait },
                true,
                false,
                wait
            )
        );
        let (e, t, b, w) = flags(classify(
            s(503),
            wait,
            br#"{"error":{"message":"loading model"}}"#,
        ));
        assert_eq!(
            e,
            LlmError::Status {
                status: 503,
                message: "loading model".into()
            }
        );
        assert_eq!((t, b, w), (true, true, wait));
        for code in [408, 500, 502, 504] {
            let (_, t, b, _) = flags(classify(s(code), None, b"oops"));
            assert!(t && b, "{code}");
        }
        for code in [400, 413, 422] {
            let (_, t, b, _) = flags(classify(s(code), None, b""));
            assert!(!t && !b, "{code}");
        }
        for code in [401, 403, 404, 501, 301] {
            let (_, t, b, _) = flags(classify(s(code), None, b""));
            assert!(!t && b, "{code}");
        }
        let (e, ..) = flags(classify(
            s(404),
            None,
            br#"{"error":"model 'x' not found"}"#,
        ));
        assert_eq!(
            e.to_string(),
            "the LLM provider answered HTTP 404: model 'x' not found"
        );
        let (e, ..) = flags(classify(s(500), None, b""));
        assert_eq!(
            e.to_string(),
            "the LLM provider answered HTTP 500: Internal Server Error"
        );
    }

    #[test]
    fn an_answer_without_text_is_invalid() {
        let answer: ChatResponse =
            serde_json::from_str(r#"{"choices":[{"message":{"content":"  "}}]}"#).unwrap();
        assert!(matches!(completion(answer, "m"), Err(LlmError::Invalid(_))));
        let answer: ChatResponse = serde_json::from_str(
            r#"{"choices":[{"message":{"content":"4"},"finish_reason":"stop"}]}"#,
        )
        .unwrap();
        let c = completion(answer, "m").unwrap();
        assert_eq!((c.text.as_str(), c.model.as_str()), ("4", "m"));
        assert_eq!(c.finish_reason.as_deref(), Some("stop"));
    }

    #[test]
    fn retries_are_for_transient_failures_only() {
        let failure = |transient| {
            Err(CircuitBreakerError::Inner(TimeoutError::Inner(
                Failure::new(LlmError::Transport("x".into()), transient, true),
            )))
        };
        assert!(retryable(&failure(true)));
        assert!(!retryable(&failure(false)));
        assert!(!retryable(&Err(CircuitBreakerError::Open)));
        let elapsed = abacus_layers::timeout::Elapsed::new(
            abacus_layers::timeout::TimeoutKind::Request,
            Duration::from_secs(1),
        );
        assert!(!retryable(&Err(CircuitBreakerError::Inner(
            TimeoutError::Elapsed(elapsed)
        ))));
        assert!(breaker_failure(&Err(TimeoutError::Elapsed(elapsed))));
    }
}
