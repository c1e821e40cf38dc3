//! The client's tower stack, the same layers the server and the external
//! services use, outbound:
//!
//! ```text
//! deadline ─► retry (idempotent calls) ─► circuit breaker ─► binding (attempt timeout)
//! ```

use super::call::{Call, Reply};
use super::error::ClientError;
use super::grpc::Grpc;
use super::jsonrpc::JsonRpc;
use super::rest::Rest;
use abacus_layers::circuit_breaker::{CircuitBreakerError, CircuitBreakerLayer};
use abacus_layers::retry::{Backoff, Jitter, RetryBudget, RetryError, RetryLayer};
use abacus_layers::timeout::{TimeoutError, TimeoutLayer};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder};

/// One client's stack: a call in, its reply or a [`ClientError`] out.
pub(crate) type ClientService = BoxCloneSyncService<Call, Reply, ClientError>;

/// The limits of a stack (see [`ClientBuilder`](super::ClientBuilder)).
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) attempt_timeout: Duration,
    pub(crate) deadline: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) breaker_failures: u32,
    pub(crate) breaker_open: Duration,
}

/// The binding a stack ends in.
#[derive(Clone)]
pub(crate) enum Transport {
    JsonRpc(JsonRpc),
    Rest(Rest),
    Grpc(Grpc),
}

/// A failed attempt, classified where the call is known.
#[derive(Debug)]
pub(crate) struct Failure {
    error: ClientError,
    /// Worth another attempt: an idempotent call that failed in transit,
    /// or any call whose connection was never made.
    retry: bool,
    /// Counts against the breaker: the server did not answer.
    breaker: bool,
}

impl Failure {
    fn classify(call: &Call, error: ClientError) -> Failure {
        let not_sent = matches!(error, ClientError::Connect { .. });
        let in_transit = match &error {
            ClientError::Connect { .. }
            | ClientError::Timeout { .. }
            | ClientError::Transport(_) => true,
            ClientError::Status(s, _) => matches!(s.as_u16(), 429 | 502 | 503 | 504),
            _ => false,
        };
        let breaker = match &error {
            ClientError::Status(s, _) => s.is_server_error(),
            _ => in_transit,
        };
        Failure {
            retry: not_sent || (in_transit && call.idempotent()),
            breaker,
            error,
        }
    }
}

/// The binding with its per-attempt timeout.
#[derive(Clone)]
struct Attempt {
    transport: Transport,
    timeout: Duration,
    url: Arc<str>,
}

impl Service<Call> for Attempt {
    type Response = Reply;
    type Error = Failure;
    type Future = BoxFuture<'static, Result<Reply, Failure>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        // The pools ready a connection inside the call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let attempt = match this.transport {
                Transport::JsonRpc(t) => t.call(call.clone()).await_boxed(),
                Transport::Rest(t) => t.call(call.clone()).await_boxed(),
                Transport::Grpc(t) => t.call(call.clone()).await_boxed(),
            };
            let result = match tokio::time::timeout(this.timeout, attempt).await {
                Ok(r) => r,
                Err(_) => Err(ClientError::Timeout {
                    url: this.url.to_string(),
                    after: this.timeout,
                }),
            };
            result.map_err(|e| Failure::classify(&call, e))
        })
    }
}

/// Boxes a binding's future so the three fit one `match`.
trait AwaitBoxed {
    fn await_boxed(self) -> BoxFuture<'static, Result<Reply, ClientError>>;
}

impl<F> AwaitBoxed for F
where
    F: std::future::Future<Output = Result<Reply, ClientError>> + Send + 'static,
{
    fn await_boxed(self) -> BoxFuture<'static, Result<Reply, ClientError>> {
        Box::pin(self)
    }
}

/// The deadline bounds a call until its reply starts: a stream then lasts
/// as long as its task, so no stream timeout is applied to it here.
impl abacus_layers::stream::StreamTimeout for Reply {
    type Output = Self;
    fn stream_timeout(self, _timeouts: abacus_layers::stream::StreamTimeouts) -> Self {
        self
    }
}

type Guarded = Result<Reply, CircuitBreakerError<Failure>>;

fn breaker_failure(result: &Result<Reply, Failure>) -> bool {
    matches!(result, Err(f) if f.breaker)
}

fn retryable(result: &Guarded) -> bool {
    matches!(result, Err(CircuitBreakerError::Inner(f)) if f.retry)
}

/// Builds the stack over `transport`.
pub(crate) fn build(transport: Transport, url: &str, limits: &Limits) -> ClientService {
    let url: Arc<str> = url.into();
    let breaker = CircuitBreakerLayer::builder()
        .name("a2a-client")
        .consecutive_failures(limits.breaker_failures.max(1))
        .open_duration(limits.breaker_open)
        .half_open_max_probes(1)
        .half_open_successes(1)
        .failure_if(breaker_failure as fn(&Result<Reply, Failure>) -> bool)
        .build();
    let initial =
        (limits.attempt_timeout / 20).clamp(Duration::from_millis(10), Duration::from_millis(200));
    let retry = RetryLayer::new()
        .max_attempts(limits.max_attempts.max(1))
        .backoff(Backoff::exponential(initial, Duration::from_secs(5)).jitter(Jitter::Full))
        .max_total_delay(limits.deadline)
        // At most 20 % more calls (plus 5/s) over 10 s: no retry storms.
        .budget(RetryBudget::new(Duration::from_secs(10), 5, 0.2))
        .retry_if(retryable as fn(&Guarded) -> bool);
    let deadline = limits.deadline;
    let name = url.clone();
    let into_client = move |e: TimeoutError<RetryError<CircuitBreakerError<Failure>>>| match e {
        TimeoutError::Elapsed(_) => ClientError::Timeout {
            url: name.to_string(),
            after: deadline,
        },
        TimeoutError::Inner(retry) => match retry.into_inner() {
            CircuitBreakerError::Open => ClientError::Unavailable {
                url: name.to_string(),
            },
            CircuitBreakerError::Inner(f) => f.error,
        },
    };
    let stack = ServiceBuilder::new()
        .map_err(into_client)
        .layer(TimeoutLayer::new(deadline))
        .layer(retry)
        .layer(breaker)
        .service(Attempt {
            transport,
            timeout: limits.attempt_timeout,
            url,
        });
    BoxCloneSyncService::new(stack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::{GetTaskRequest, Message, Part, Role, SendMessageRequest};

    fn get() -> Call {
        Call::Get(GetTaskRequest {
            id: "t".into(),
            history_length: None,
            tenant: None,
        })
    }

    fn send() -> Call {
        Call::Send(SendMessageRequest {
            message: Message::new(Role::User, vec![Part::text("hi")]),
            configuration: None,
            metadata: None,
            tenant: None,
        })
    }

    #[test]
    fn only_idempotent_calls_retry_after_sending_and_any_call_before() {
        let broken = || ClientError::Transport("connection reset".into());
        let refused = || ClientError::Connect {
            url: "u".into(),
            reason: "connection refused".into(),
        };
        assert!(Failure::classify(&get(), broken()).retry);
        assert!(!Failure::classify(&send(), broken()).retry);
        assert!(Failure::classify(&send(), refused()).retry);
        let unavailable = ClientError::Status(http::StatusCode::SERVICE_UNAVAILABLE, "".into());
        let f = Failure::classify(&get(), unavailable);
        assert!(f.retry && f.breaker);
        let answer = ClientError::Remote(super::super::RemoteError::new(-32001, "no task"));
        let f = Failure::classify(&get(), answer);
        assert!(!f.retry && !f.breaker, "an A2A error is an answer");
    }
}
