//! What can go wrong asking an LLM.

use std::time::Duration;

/// Why an LLM call gave no answer.
///
/// Messages never carry the API key (it is scrubbed from anything the
/// provider echoes back) and are meant to be shown to people.
///
/// ```
/// use abacus::llm::LlmError;
/// assert_eq!(LlmError::Unavailable.to_string(), "the LLM provider failed repeatedly and is not called for a while (circuit breaker open)");
/// assert_eq!(LlmError::Unavailable.status(), "unavailable");
/// assert_eq!(LlmError::Timeout.status(), "timeout");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The configuration cannot work (no model, a bad URL, an unreadable key file).
    #[error("LLM configuration: {0}")]
    Config(String),
    /// An attempt or the whole call ran past its time.
    #[error("the LLM provider did not answer in time")]
    Timeout,
    /// The circuit breaker is open: the provider was not called.
    #[error(
        "the LLM provider failed repeatedly and is not called for a while (circuit breaker open)"
    )]
    Unavailable,
    /// The provider answered 429 (still, after the retries; or it asked
    /// for a wait past the call's deadline).
    #[error("the LLM provider is rate limiting us{}", retry_hint(.retry_after))]
    RateLimited {
        /// The wait it asked for (`Retry-After`), if any.
        retry_after: Option<Duration>,
    },
    /// Another HTTP status (5xx, a 4xx such as a wrong model or key), with
    /// the provider's message.
    #[error("the LLM provider answered HTTP {status}: {message}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The provider's error message (or the start of its body).
        message: String,
    },
    /// The request could not be sent, or the answer broke off.
    #[error("cannot reach the LLM provider: {0}")]
    Transport(String),
    /// The answer is not the chat-completions protocol (or is empty).
    #[error("the LLM provider's answer is not usable: {0}")]
    Invalid(String),
}

fn retry_hint(after: &Option<Duration>) -> String {
    match after {
        Some(d) => format!(" (it asked to wait {} s)", d.as_secs()),
        None => String::new(),
    }
}

impl LlmError {
    /// The `status` label of `a2a_llm_requests_total`: `timeout`,
    /// `unavailable`, `rate_limited`, else `error`.
    ///
    /// ```
    /// use abacus::llm::LlmError;
    /// assert_eq!(LlmError::RateLimited { retry_after: None }.status(), "rate_limited");
    /// assert_eq!(LlmError::Transport("refused".into()).status(), "error");
    /// ```
    pub fn status(&self) -> &'static str {
        match self {
            LlmError::Timeout => "timeout",
            LlmError::Unavailable => "unavailable",
            LlmError::RateLimited { .. } => "rate_limited",
            LlmError::Config(_)
            | LlmError::Status { .. }
            | LlmError::Transport(_)
            | LlmError::Invalid(_) => "error",
        }
    }
}

impl From<abacus_layers::timeout::Elapsed> for LlmError {
    /// A stream that went silent (first-token or idle timeout).
    fn from(_: abacus_layers::timeout::Elapsed) -> Self {
        LlmError::Timeout
    }
}
