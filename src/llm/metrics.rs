//! The LLM client's metrics, one record per call.
//!
//! * `a2a_llm_requests_total{provider, status}`: `ok`, `error`, `timeout`,
//!   `rate_limited`, `unavailable` (breaker open, not called), `cancelled`
//!   (the caller dropped the call or its stream before the end); each at 0
//!   from the client's creation. Retries are not counted here
//!   (`a2a_retries_total{service="llm"}` counts them).
//! * `a2a_llm_request_duration_seconds{provider}`: from the call to its
//!   answer, or to the end of its stream.
//! * `a2a_llm_tokens_total{provider, direction="in"|"out"}`: the provider's
//!   `usage` (prompt and completion tokens), when it reports one.

use super::Usage;
use std::sync::Arc;
use std::time::Instant;

/// Calls by provider and status.
pub(super) const REQUESTS: &str = "a2a_llm_requests_total";
/// Call latency.
pub(super) const DURATION: &str = "a2a_llm_request_duration_seconds";
/// Tokens in and out.
pub(super) const TOKENS: &str = "a2a_llm_tokens_total";

/// Every `status` label of [`REQUESTS`].
pub(super) const STATUSES: &[&str] = &[
    "ok",
    "error",
    "timeout",
    "rate_limited",
    "unavailable",
    "cancelled",
];

/// Registers every series at 0, so rates and alerts work before the first call.
pub(super) fn register(provider: &str) {
    // The server installs the recorder when it starts, after the client is
    // built; series registered before that would be lost.
    let _ = crate::telemetry::prometheus();
    for status in STATUSES {
        metrics::counter!(REQUESTS, "provider" => provider.to_string(), "status" => *status)
            .increment(0);
    }
    for direction in ["in", "out"] {
        metrics::counter!(TOKENS, "provider" => provider.to_string(), "direction" => direction)
            .increment(0);
    }
}

/// One call being measured; recorded once, as `cancelled` if dropped first.
#[derive(Debug)]
pub(super) struct Call {
    provider: Arc<str>,
    started: Instant,
    recorded: bool,
}

impl Call {
    pub(super) fn start(provider: Arc<str>) -> Self {
        Call {
            provider,
            started: Instant::now(),
            recorded: false,
        }
    }

    /// Records the call's end with `status` and the tokens of `usage`.
    pub(super) fn finish(&mut self, status: &'static str, usage: Option<Usage>) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let provider = self.provider.to_string();
        metrics::counter!(REQUESTS, "provider" => provider.clone(), "status" => status)
            .increment(1);
        metrics::histogram!(DURATION, "provider" => provider.clone())
            .record(self.started.elapsed().as_secs_f64());
        if let Some(u) = usage {
            metrics::counter!(TOKENS, "provider" => provider.clone(), "direction" => "in")
                .increment(u.prompt_tokens);
            metrics::counter!(TOKENS, "provider" => provider, "direction" => "out")
                .increment(u.completion_tokens);
        }
        match status {
            "ok" => tracing::debug!(provider = %self.provider, "LLM answer"),
            _ => tracing::debug!(provider = %self.provider, status, "LLM call failed"),
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish("cancelled", None);
    }
}
