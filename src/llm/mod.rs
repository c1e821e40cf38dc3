//! An OpenAI-compatible chat-completions client (hosted APIs and local
//! servers: llama.cpp server, vLLM, Ollama), behind its own stack of
//! `abacus-layers`:
//!
//! ```text
//! deadline ─► concurrency limit ─► retry (+ Retry-After) ─► circuit breaker "llm" ─► attempt timeout ─► POST
//! ```
//!
//! * Requests go to `$LLM_BASE_URL/chat/completions`, whole
//!   ([`LlmClient::complete`]) or streamed ([`LlmClient::stream`], SSE
//!   chunks ending with `[DONE]`).
//! * Retries are for transient failures only (connection errors, 408, 429,
//!   500, 502, 503, 504), with jittered backoff; a `Retry-After` replaces
//!   the backoff's delay when it fits in the call's deadline.
//! * The breaker opens after `breaker_failures` consecutive failures
//!   (default 3) for `breaker_open` (default 300 s); while open, calls fail
//!   at once with [`LlmError::Unavailable`] and nothing is sent.
//! * A stream is bounded by the attempt timeout before its first token and
//!   between tokens, and by the deadline as a whole. Dropping it closes the
//!   connection, which stops the generation upstream.
//! * The API key is sent as `Authorization: Bearer`, marked sensitive, left
//!   out of `Debug` and scrubbed from every error message.
//!
//! # Metrics
//!
//! * `a2a_llm_requests_total{provider, status}` (`ok`, `error`, `timeout`,
//!   `rate_limited`, `unavailable`, `cancelled`);
//! * `a2a_llm_request_duration_seconds{provider}`;
//! * `a2a_llm_tokens_total{provider, direction="in"|"out"}` from `usage`;
//! * `a2a_retries_total{service="llm"}`;
//! * `a2a_circuit_breaker_state{breaker="llm"}` and its transitions.
//!
//! # Example
//!
//! ```no_run
//! use abacus::llm::{ChatMessage, LlmClient, LlmConfig};
//!
//! # async fn demo() -> Result<(), abacus::llm::LlmError> {
//! let llm = LlmClient::new(LlmConfig {
//!     base_url: Some("http://127.0.0.1:11434/v1".into()),
//!     model: Some("llama3.2".into()),
//!     ..LlmConfig::default()
//! })?
//! .expect("configured");
//! let answer = llm.complete(&[ChatMessage::user("why is 0! = 1?")]).await?;
//! println!("{}", answer.text);
//! # Ok(())
//! # }
//! ```

mod error;
mod metrics;
mod stack;
mod wire;

pub use error::LlmError;
pub use wire::{ChatMessage, ChatRole, Usage};

pub use abacus_layers::circuit_breaker::CircuitState;

use abacus_layers::circuit_breaker::CircuitBreakerHandle;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use http::{HeaderValue, Uri};
use stack::{Attempt, ChatPost, LlmService, Mode, Reply};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use wire::{ChatChunk, ChatRequest, StreamOptions, DONE};

/// Where the provider is and how hard to try it.
///
/// `base_url: None` (the default) leaves the LLM path off. The key is
/// redacted from `Debug`.
///
/// ```
/// use abacus::llm::LlmConfig;
/// use std::time::Duration;
///
/// let c = LlmConfig { api_key: Some("sk-SECRET".into()), ..LlmConfig::default() };
/// assert_eq!(c.breaker_failures, 3);
/// assert_eq!(c.breaker_open, Duration::from_secs(300));
/// assert!(!format!("{c:?}").contains("SECRET"));
/// ```
#[derive(Clone)]
pub struct LlmConfig {
    /// The `provider` label of the metrics (default `openai`).
    pub provider: String,
    /// The API's base URL; requests go to `<base_url>/chat/completions`.
    pub base_url: Option<String>,
    /// The model asked for (required when `base_url` is set).
    pub model: Option<String>,
    /// The API key, sent as a bearer token.
    pub api_key: Option<String>,
    /// One attempt: the whole answer, or a stream's first token and each
    /// gap between tokens (default 30 s).
    pub timeout: Duration,
    /// The whole call, retries, waits and a streamed answer included
    /// (default 120 s).
    pub deadline: Duration,
    /// Attempts per call, the first included (default 3).
    pub max_attempts: u32,
    /// Consecutive failures that open the breaker (default 3).
    pub breaker_failures: u32,
    /// How long the open breaker refuses calls before a probe (default 300 s).
    pub breaker_open: Duration,
    /// Calls in flight at once; more wait, within the deadline (default 4).
    pub max_concurrency: usize,
    /// `max_tokens` of each request (default 1024).
    pub max_tokens: Option<u32>,
    /// CA bundle (PEM) `https://` providers are verified against instead of
    /// the system's trust store.
    pub outbound_ca: Option<std::path::PathBuf>,
}

impl Default for LlmConfig {
    /// The defaults of the `--llm-*` flags ([`crate::config::defaults`]).
    fn default() -> Self {
        use crate::config::defaults;
        LlmConfig {
            provider: "openai".into(),
            base_url: None,
            model: None,
            api_key: None,
            timeout: Duration::from_secs(defaults::LLM_TIMEOUT_SECS),
            deadline: Duration::from_secs(defaults::LLM_DEADLINE_SECS),
            max_attempts: 3,
            breaker_failures: defaults::LLM_BREAKER_FAILURES,
            breaker_open: Duration::from_secs(defaults::LLM_BREAKER_OPEN_SECS),
            max_concurrency: defaults::LLM_MAX_CONCURRENCY,
            max_tokens: Some(1024),
            outbound_ca: None,
        }
    }
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline)
            .field("max_attempts", &self.max_attempts)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_open", &self.breaker_open)
            .field("max_concurrency", &self.max_concurrency)
            .field("max_tokens", &self.max_tokens)
            .field("outbound_ca", &self.outbound_ca)
            .finish()
    }
}

/// A whole answer.
///
/// ```
/// use abacus::llm::Completion;
/// let c = Completion { text: "4".into(), model: "m".into(), usage: None, finish_reason: None };
/// assert_eq!(c.text, "4");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The first choice's text.
    pub text: String,
    /// The model that answered (as the provider names it).
    pub model: String,
    /// Tokens in and out, when the provider reports them.
    pub usage: Option<Usage>,
    /// Why the generation stopped (`stop`, `length`, …).
    pub finish_reason: Option<String>,
}

/// The text of a streamed answer, piece by piece; it ends after the
/// provider's `[DONE]`, or with one error. Dropping it stops the upstream
/// generation (the connection is closed).
pub type CompletionStream = BoxStream<'static, Result<String, LlmError>>;

/// The chat-completions client. Cheap to clone (clones share the pool,
/// the breaker and the concurrency limit).
#[derive(Clone)]
pub struct LlmClient {
    inner: Arc<Inner>,
}

struct Inner {
    provider: Arc<str>,
    model: Arc<str>,
    config: LlmConfig,
    service: LlmService,
    breaker: CircuitBreakerHandle,
}

impl fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmClient")
            .field("provider", &self.inner.provider)
            .field("model", &self.inner.model)
            .field("breaker", &self.inner.breaker.state())
            .finish()
    }
}

impl LlmClient {
    /// A client for `config`; `Ok(None)` when no base URL is set (the LLM
    /// path is off). A base URL that is not `http(s)://`, a missing model
    /// or an unreadable CA bundle is [`LlmError::Config`].
    ///
    /// ```
    /// use abacus::llm::{LlmClient, LlmConfig, LlmError};
    /// assert!(LlmClient::new(LlmConfig::default()).unwrap().is_none());
    /// let no_model = LlmConfig { base_url: Some("http://127.0.0.1:1/v1".into()), ..LlmConfig::default() };
    /// assert!(matches!(LlmClient::new(no_model), Err(LlmError::Config(_))));
    /// ```
    pub fn new(config: LlmConfig) -> Result<Option<Self>, LlmError> {
        let Some(base) = config
            .base_url
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
        else {
            return Ok(None);
        };
        let model: Arc<str> = match config.model.as_deref().map(str::trim) {
            Some(m) if !m.is_empty() => Arc::from(m),
            _ => {
                return Err(LlmError::Config(
                    "LLM_BASE_URL is set but LLM_MODEL is not".into(),
                ))
            }
        };
        let uri = endpoint(base, "chat/completions")?;
        let connector =
            crate::client::conn::connector(config.outbound_ca.as_deref(), config.timeout)
                .map_err(|e| LlmError::Config(e.to_string()))?;
        let pool = crate::client::conn::pool(connector);
        let key = config
            .api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let auth = match key {
            Some(k) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {k}")).map_err(|_| {
                    LlmError::Config("the API key is not a valid header value".into())
                })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let post = ChatPost::new(pool, uri, model.clone(), auth, key.map(Arc::from));
        let (service, breaker) = stack::build(post, &config);
        let provider: Arc<str> = Arc::from(config.provider.trim());
        metrics::register(&provider);
        Ok(Some(LlmClient {
            inner: Arc::new(Inner {
                provider,
                model,
                config,
                service,
                breaker,
            }),
        }))
    }

    /// The `provider` label.
    pub fn provider(&self) -> &str {
        &self.inner.provider
    }

    /// The model asked for.
    pub fn model(&self) -> &str {
        &self.inner.model
    }

    /// The breaker's state.
    pub fn breaker_state(&self) -> CircuitState {
        self.inner.breaker.state()
    }

    fn body(&self, messages: &[ChatMessage], stream: bool) -> Result<Bytes, LlmError> {
        let request = ChatRequest {
            model: &self.inner.model,
            messages,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
            max_tokens: self.inner.config.max_tokens,
            temperature: None,
        };
        serde_json::to_vec(&request)
            .map(Bytes::from)
            .map_err(|e| LlmError::Invalid(format!("cannot encode the request: {e}")))
    }

    async fn call(&self, body: Bytes, mode: Mode) -> Result<Reply, LlmError> {
        let service = self.inner.service.clone();
        match tokio::time::timeout(
            self.inner.config.deadline,
            service.oneshot(Attempt::new(body, mode)),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(LlmError::Timeout),
        }
    }

    /// Asks for a whole answer.
    pub async fn complete(&self, messages: &[ChatMessage]) -> Result<Completion, LlmError> {
        let mut call = metrics::Call::start(self.inner.provider.clone());
        let result = match self.body(messages, false) {
            Ok(body) => self.call(body, Mode::Whole).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(Reply::Whole(c)) => {
                call.finish("ok", c.usage);
                Ok(c)
            }
            Ok(Reply::Events(_)) => {
                let e = LlmError::Invalid("a stream came back for a whole answer".into());
                call.finish(e.status(), None);
                Err(e)
            }
            Err(e) => {
                call.finish(e.status(), None);
                Err(e)
            }
        }
    }

    /// Asks for a streamed answer: fails at once if no stream could be
    /// started (the breaker is open, every attempt failed), else gives the
    /// text as it arrives.
    pub async fn stream(&self, messages: &[ChatMessage]) -> Result<CompletionStream, LlmError> {
        let mut call = metrics::Call::start(self.inner.provider.clone());
        let deadline = tokio::time::Instant::now() + self.inner.config.deadline;
        let result = match self.body(messages, true) {
            Ok(body) => self.call(body, Mode::Stream).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(Reply::Whole(c)) => {
                call.finish("ok", c.usage);
                Ok(stream::once(async move { Ok(c.text) }).boxed())
            }
            Ok(Reply::Events(events)) => Ok(text_stream(events, call, deadline)),
            Err(e) => {
                call.finish(e.status(), None);
                Err(e)
            }
        }
    }

    /// A readiness check of the provider ([`LlmHealth`]).
    pub fn health_check(&self) -> LlmHealth {
        LlmHealth::new(self.clone())
    }
}

/// `<base>/<path>` as a URI; the base must be `http://` or `https://`.
fn endpoint(base: &str, path: &str) -> Result<Uri, LlmError> {
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(LlmError::Config(format!(
            "LLM_BASE_URL must start with http:// or https://, not {base:?}"
        )));
    }
    format!("{}/{path}", base.trim_end_matches('/'))
        .parse()
        .map_err(|e| LlmError::Config(format!("LLM_BASE_URL {base:?} is not a URL: {e}")))
}

/// The text deltas of `events`, until `[DONE]`; the metrics are recorded
/// when it ends (`cancelled` if dropped first).
fn text_stream(
    events: stack::Events,
    call: metrics::Call,
    deadline: tokio::time::Instant,
) -> CompletionStream {
    struct State {
        events: stack::Events,
        call: metrics::Call,
        deadline: tokio::time::Instant,
        usage: Option<Usage>,
        finished: bool,
        done: bool,
    }
    let state = State {
        events,
        call,
        deadline,
        usage: None,
        finished: false,
        done: false,
    };
    stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            let next = tokio::time::timeout_at(st.deadline, st.events.next()).await;
            let fail = |st: &mut State, e: LlmError| {
                st.done = true;
                st.call.finish(e.status(), st.usage);
                Err(e)
            };
            let event = match next {
                Err(_) => return Some((fail(&mut st, LlmError::Timeout), st)),
                Ok(None) if st.finished => {
                    // A provider that sends a finish reason but no `[DONE]`.
                    st.call.finish("ok", st.usage);
                    return None;
                }
                Ok(None) => {
                    let e = LlmError::Transport("the stream ended before the answer did".into());
                    return Some((fail(&mut st, e), st));
                }
                Ok(Some(Err(e))) => return Some((fail(&mut st, e), st)),
                Ok(Some(Ok(event))) => event,
            };
            let data = event.data.trim();
            if data == DONE {
                st.call.finish("ok", st.usage);
                return None;
            }
            if data.is_empty() {
                continue;
            }
            let chunk: ChatChunk = match serde_json::from_str(data) {
                Ok(c) => c,
                Err(e) => {
                    let e = LlmError::Invalid(format!("a chunk is not a chat completion: {e}"));
                    return Some((fail(&mut st, e), st));
                }
            };
            if let Some(error) = chunk.error.as_ref().and_then(|e| e.message()) {
                let e = LlmError::Invalid(format!("the provider failed mid-answer: {error}"));
                return Some((fail(&mut st, e), st));
            }
            if chunk.usage.is_some() {
                st.usage = chunk.usage;
            }
            let mut text = String::new();
            for choice in chunk.choices {
                if choice.finish_reason.is_some() {
                    st.finished = true;
                }
                if let Some(t) = choice.delta.and_then(|d| d.content) {
                    text.push_str(&t);
                }
            }
            if !text.is_empty() {
                return Some((Ok(text), st));
            }
        }
    })
    .boxed()
}

mod health;
pub use health::LlmHealth;
