//! Clients for external math services: a math.js-style evaluator and the
//! Wolfram|Alpha short-answer API, asked in parallel for questions the local
//! engine cannot answer ([`wants_external`]).
//!
//! * math.js style: `GET <base>?expr=<expression>`. 200: the body is the
//!   answer; 400: the expression is invalid ([`ExternalError::Rejected`], not
//!   retried, not a breaker failure).
//! * Wolfram|Alpha short answers: `GET <base>?appid=<appid>&i=<query>`.
//!   200: the answer; 501 "no short answer" (`Rejected`, not retried, not a
//!   failure); 403 bad appid (`Rejected`, not retried, a breaker failure).
//!
//! For both, 429, 5xx, connection errors and attempt timeouts are transient:
//! retried, and breaker failures. Other 4xx answers are `Rejected` and count
//! against the breaker (the service is unusable as configured). Parameters
//! are percent-encoded (RFC 3986 unreserved characters kept, a space is
//! `%20`). The HTTP client is hyper-util's pooled legacy client; `https://`
//! base URLs are verified against the system's trust store, or the CA
//! bundle of [`ExternalConfig::outbound_ca`] (`--outbound-ca`).
//!
//! # The stack of each service
//!
//! Built from `abacus-layers`, outermost first:
//!
//! ```text
//! deadline (8 s) ─► retry ─► circuit breaker ─► attempt timeout (3 s) ─► HTTP GET
//! ```
//!
//! * **The deadline is outermost** so it bounds everything: attempts,
//!   backoff sleeps and retries. The retry layer's total-delay cap is the same
//!   deadline, so it gives up instead of sleeping past it.
//! * **Retry sits outside the breaker** so every attempt asks the breaker
//!   for admission: once the breaker opens (possibly in the middle of one
//!   query's retries), the next attempt fails at once with `Open`, which the
//!   retry predicate does not retry: no network call, no sleep.
//! * **The attempt timeout sits inside the breaker** so a hanging service is
//!   a breaker failure (a timeout outside it would drop the breaker's future,
//!   which counts as nothing). The outer deadline firing, or a losing
//!   service being cancelled, drops the attempt and counts as nothing.
//! * Retries use jittered (full jitter) exponential backoff starting at
//!   `min(100 ms, timeout / 10)` and a [`RetryBudget`](abacus_layers::retry::RetryBudget)
//!   (20 % of requests plus 5/s over 10 s), only for transient failures.
//! * The breaker opens after `breaker_failures` consecutive failures (or a
//!   failure ratio ≥ `breaker_failure_rate`, 80 %, over ≥ `breaker_min_calls`,
//!   20, in `breaker_window`, 30 s), stays open `breaker_open`, then lets one
//!   probe through; its success closes it.
//!
//! # Metrics
//!
//! * `a2a_external_requests_total{service, outcome}`: one per service per
//!   query that finished (`ok`, `rejected`, `error`, `timeout`, `unavailable`);
//!   a service cancelled because another answered first is not counted.
//! * `a2a_retries_total{service}`: every retry attempt.
//! * `a2a_circuit_breaker_state{breaker="mathjs"|"wolfram"}` (0 closed,
//!   1 open, 2 half-open) and `a2a_circuit_breaker_transitions_total{breaker, from, to}`,
//!   from the breaker layer.
//!
//! # Example
//!
//! ```no_run
//! use abacus::external::{wants_external, ExternalConfig, ExternalMath};
//!
//! # async fn demo() {
//! let math = ExternalMath::new(ExternalConfig {
//!     mathjs_url: Some("http://127.0.0.1:8080/v4/".into()),
//!     ..ExternalConfig::default()
//! });
//! let question = "derivative of x^3";
//! if math.is_enabled() && wants_external(question) {
//!     match math.query(question).await {
//!         Ok(a) => println!("{}: {}", a.service, a.answer),
//!         Err(e) => println!("falling back to local math: {e}"),
//!     }
//! }
//! # }
//! ```

mod health;
mod keywords;
mod transport;

pub use health::ExternalHealth;
pub use keywords::wants_external;

pub use abacus_layers::circuit_breaker::CircuitState;

use abacus_layers::circuit_breaker::CircuitBreakerHandle;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;
use transport::{Attempt, ExternalService, Flavor, HttpGet};

/// Where the external services are and how hard to try them.
///
/// All URLs `None` (the default) disables external services. Wolfram|Alpha
/// needs both its URL and its appid. The appid is redacted from `Debug`.
///
/// ```
/// use abacus::external::ExternalConfig;
/// use std::time::Duration;
///
/// let config = ExternalConfig {
///     wolfram_url: Some("http://api.wolframalpha.com/v1/result".into()),
///     wolfram_appid: Some("SECRET".into()),
///     ..ExternalConfig::default()
/// };
/// assert_eq!(config.timeout, Duration::from_secs(3));
/// assert!(!format!("{config:?}").contains("SECRET"));
/// ```
#[derive(Clone)]
pub struct ExternalConfig {
    /// Base URL of a math.js-style evaluator (`GET <base>?expr=...`).
    pub mathjs_url: Option<String>,
    /// Base URL of the Wolfram|Alpha short-answer API (`GET <base>?appid=...&i=...`).
    pub wolfram_url: Option<String>,
    /// The Wolfram|Alpha appid.
    pub wolfram_appid: Option<String>,
    /// Per-attempt timeout (default 3 s).
    pub timeout: Duration,
    /// Attempts per query and service, the first included (default 3).
    pub max_attempts: u32,
    /// Overall bound of a query, retries and backoff included (default 8 s).
    pub deadline: Duration,
    /// Consecutive failures that open a service's breaker (default 5; 0
    /// disables this trigger).
    pub breaker_failures: u64,
    /// Failure ratio over the window that also opens it (default 0.8;
    /// above 1 disables this trigger).
    pub breaker_failure_rate: f64,
    /// Calls in the window before the ratio counts (default 20).
    pub breaker_min_calls: u64,
    /// Length of the breaker's sliding window (default 30 s).
    pub breaker_window: Duration,
    /// How long an open breaker rejects calls before a probe (default 30 s).
    pub breaker_open: Duration,
    /// CA bundle (PEM) `https://` services are verified against instead of
    /// the system's trust store.
    pub outbound_ca: Option<std::path::PathBuf>,
}

impl Default for ExternalConfig {
    /// The defaults of the `--external-*` flags ([`crate::config::defaults`]).
    fn default() -> Self {
        use crate::config::defaults;
        ExternalConfig {
            mathjs_url: None,
            wolfram_url: None,
            wolfram_appid: None,
            timeout: Duration::from_millis(defaults::EXTERNAL_TIMEOUT_MS),
            max_attempts: 3,
            deadline: Duration::from_millis(defaults::EXTERNAL_DEADLINE_MS),
            breaker_failures: defaults::EXTERNAL_BREAKER_FAILURES,
            breaker_failure_rate: defaults::EXTERNAL_BREAKER_FAILURE_RATE,
            breaker_min_calls: defaults::EXTERNAL_BREAKER_MIN_CALLS,
            breaker_window: Duration::from_secs(defaults::EXTERNAL_BREAKER_WINDOW_SECS),
            breaker_open: Duration::from_secs(defaults::EXTERNAL_BREAKER_OPEN_SECS),
            outbound_ca: None,
        }
    }
}

impl fmt::Debug for ExternalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalConfig")
            .field("mathjs_url", &self.mathjs_url)
            .field("wolfram_url", &self.wolfram_url)
            .field(
                "wolfram_appid",
                &self.wolfram_appid.as_ref().map(|_| "[redacted]"),
            )
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("deadline", &self.deadline)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_failure_rate", &self.breaker_failure_rate)
            .field("breaker_min_calls", &self.breaker_min_calls)
            .field("breaker_window", &self.breaker_window)
            .field("breaker_open", &self.breaker_open)
            .field("outbound_ca", &self.outbound_ca)
            .finish()
    }
}

/// Why no external answer came back.
///
/// ```
/// use abacus::external::ExternalError;
/// assert_eq!(ExternalError::Status(503).to_string(), "external math service answered HTTP 503");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalError {
    /// No external service is configured.
    #[error("no external math service is configured")]
    Disabled,
    /// An attempt or the overall deadline timed out.
    #[error("external math service timed out")]
    Timeout,
    /// The circuit breaker is open: the service was not called.
    #[error("external math service unavailable (circuit breaker open)")]
    Unavailable,
    /// The service answered 4xx: an invalid expression, no short answer, a
    /// bad appid (the service's message).
    #[error("external math service rejected the question: {0}")]
    Rejected(String),
    /// The request could not be sent or the answer not read.
    #[error("external math service transport error: {0}")]
    Transport(String),
    /// An unexpected HTTP status (5xx, 429, a redirect).
    #[error("external math service answered HTTP {0}")]
    Status(u16),
}

impl ExternalError {
    /// The `outcome` label of `a2a_external_requests_total`.
    fn outcome(&self) -> &'static str {
        match self {
            ExternalError::Rejected(_) => "rejected",
            ExternalError::Timeout => "timeout",
            ExternalError::Unavailable => "unavailable",
            ExternalError::Disabled | ExternalError::Transport(_) | ExternalError::Status(_) => {
                "error"
            }
        }
    }

    /// How much the error says, to report the most informative one when
    /// every service failed: a service's verdict on the question first, then
    /// an HTTP status, a transport error, a timeout, an open breaker.
    fn rank(&self) -> u8 {
        match self {
            ExternalError::Rejected(_) => 5,
            ExternalError::Status(_) => 4,
            ExternalError::Transport(_) => 3,
            ExternalError::Timeout => 2,
            ExternalError::Unavailable => 1,
            ExternalError::Disabled => 0,
        }
    }
}

/// An answer from an external service.
///
/// ```
/// use abacus::external::ExternalAnswer;
/// let a = ExternalAnswer { service: "mathjs", answer: "42".into() };
/// assert_eq!(a.to_string(), "42 (mathjs)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAnswer {
    /// `"mathjs"` or `"wolfram"`.
    pub service: &'static str,
    /// The answer text, trimmed.
    pub answer: String,
}

impl fmt::Display for ExternalAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.answer, self.service)
    }
}

/// The last finished query of one service, for the health check.
#[derive(Debug, Clone)]
struct LastOutcome {
    outcome: &'static str,
    at: chrono::DateTime<chrono::Utc>,
    error: Option<String>,
}

/// One configured service: its stack, breaker and URL recipe.
#[derive(Clone)]
struct Endpoint {
    name: &'static str,
    flavor: Flavor,
    base: Arc<str>,
    appid: Option<Arc<str>>,
    service: ExternalService,
    breaker: CircuitBreakerHandle,
    last: Arc<Mutex<Option<LastOutcome>>>,
}

impl Endpoint {
    fn new(
        name: &'static str,
        flavor: Flavor,
        base: &str,
        appid: Option<&str>,
        client: transport::HttpClient,
        config: &ExternalConfig,
    ) -> Self {
        let appid: Option<Arc<str>> = appid.map(Arc::from);
        let get = HttpGet::new(client, flavor, appid.clone());
        let (service, breaker) = transport::build_stack(name, get, config);
        Endpoint {
            name,
            flavor,
            base: Arc::from(base),
            appid,
            service,
            breaker,
            last: Arc::new(Mutex::new(None)),
        }
    }

    async fn ask(&self, question: &str) -> Result<String, ExternalError> {
        let uri = transport::request_uri(&self.base, self.flavor, self.appid.as_deref(), question)?;
        let result = self.service.clone().oneshot(Attempt::new(uri)).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        metrics::counter!("a2a_external_requests_total", "service" => self.name, "outcome" => outcome)
            .increment(1);
        match &result {
            Ok(_) => tracing::debug!(service = self.name, "external answer"),
            Err(e) => tracing::debug!(service = self.name, error = %e, "external service failed"),
        }
        let last = LastOutcome {
            outcome,
            at: chrono::Utc::now(),
            error: result.as_ref().err().map(ToString::to_string),
        };
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(last);
        result
    }

    fn last_outcome(&self) -> Option<LastOutcome> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The external math services, asked in parallel. Cheap to clone (clones
/// share the connection pool, breakers and retry budgets).
///
/// ```
/// use abacus::external::{ExternalConfig, ExternalMath};
/// let math = ExternalMath::new(ExternalConfig::default());
/// assert!(!math.is_enabled());
/// assert!(math.breakers().is_empty());
/// ```
#[derive(Clone)]
pub struct ExternalMath {
    endpoints: Arc<[Endpoint]>,
}

impl fmt::Debug for ExternalMath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalMath")
            .field("breakers", &self.breakers())
            .finish()
    }
}

impl ExternalMath {
    /// Services for `config`. A service whose URL is missing or unusable
    /// (not `http://` or `https://`), or Wolfram|Alpha without an appid, is
    /// left disabled with a warning in the log, and so is every service when
    /// the `outbound_ca` bundle cannot be read. Needs no runtime; queries do.
    ///
    /// ```
    /// use abacus::external::{ExternalConfig, ExternalMath};
    /// let math = ExternalMath::new(ExternalConfig {
    ///     mathjs_url: Some("http://127.0.0.1:8080/v4/".into()),
    ///     ..ExternalConfig::default()
    /// });
    /// assert!(math.is_enabled());
    /// ```
    pub fn new(config: ExternalConfig) -> Self {
        let client = match transport::http_client(config.timeout, config.outbound_ca.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "external services disabled: no TLS client");
                return ExternalMath {
                    endpoints: Vec::new().into(),
                };
            }
        };
        let usable = |name: &str, url: Option<&String>| -> Option<String> {
            let url = url.map(|u| u.trim()).filter(|u| !u.is_empty())?;
            match transport::check_base(url) {
                Ok(()) => Some(url.to_string()),
                Err(why) => {
                    tracing::warn!(service = name, "external service disabled: {why}");
                    None
                }
            }
        };
        let mut endpoints = Vec::with_capacity(2);
        if let Some(base) = usable("mathjs", config.mathjs_url.as_ref()) {
            endpoints.push(Endpoint::new(
                "mathjs",
                Flavor::MathJs,
                &base,
                None,
                client.clone(),
                &config,
            ));
        }
        if let Some(base) = usable("wolfram", config.wolfram_url.as_ref()) {
            match config.wolfram_appid.as_deref().map(str::trim) {
                Some(appid) if !appid.is_empty() => endpoints.push(Endpoint::new(
                    "wolfram",
                    Flavor::Wolfram,
                    &base,
                    Some(appid),
                    client,
                    &config,
                )),
                _ => tracing::warn!(
                    service = "wolfram",
                    "external service disabled: no appid configured"
                ),
            }
        }
        ExternalMath {
            endpoints: endpoints.into(),
        }
    }

    /// `true` if at least one service is configured.
    ///
    /// ```
    /// use abacus::external::{ExternalConfig, ExternalMath};
    /// assert!(!ExternalMath::new(ExternalConfig::default()).is_enabled());
    /// ```
    pub fn is_enabled(&self) -> bool {
        !self.endpoints.is_empty()
    }

    /// Asks every enabled service in parallel; the first good answer wins
    /// and the others are cancelled. When all fail, returns the most
    /// informative error (a service's rejection over an HTTP status over a
    /// transport error over a timeout over an open breaker). Bounded by the
    /// configured deadline.
    ///
    /// ```no_run
    /// use abacus::external::{ExternalConfig, ExternalMath};
    /// # async fn demo() {
    /// let math = ExternalMath::new(ExternalConfig {
    ///     mathjs_url: Some("http://127.0.0.1:8080/v4/".into()),
    ///     ..ExternalConfig::default()
    /// });
    /// let answer = math.query("2 + 2").await;
    /// # let _ = answer;
    /// # }
    /// ```
    pub async fn query(&self, question: &str) -> Result<ExternalAnswer, ExternalError> {
        if self.endpoints.is_empty() {
            return Err(ExternalError::Disabled);
        }
        let question = question.trim();
        if question.is_empty() {
            return Err(ExternalError::Rejected("empty question".into()));
        }
        let mut pending: FuturesUnordered<_> = self
            .endpoints
            .iter()
            .map(|e| async move { (e.name, e.ask(question).await) })
            .collect();
        let mut best: Option<ExternalError> = None;
        while let Some((service, result)) = pending.next().await {
            match result {
                // Returning drops `pending`: the other requests are cancelled.
                Ok(answer) => return Ok(ExternalAnswer { service, answer }),
                Err(e) => {
                    if best.as_ref().is_none_or(|b| e.rank() > b.rank()) {
                        best = Some(e);
                    }
                }
            }
        }
        Err(best.unwrap_or(ExternalError::Disabled))
    }

    /// Each configured service's breaker state, for health reports.
    ///
    /// ```
    /// use abacus::external::{CircuitState, ExternalConfig, ExternalMath};
    /// let math = ExternalMath::new(ExternalConfig {
    ///     mathjs_url: Some("http://127.0.0.1:8080/".into()),
    ///     ..ExternalConfig::default()
    /// });
    /// assert_eq!(math.breakers(), vec![("mathjs", CircuitState::Closed)]);
    /// ```
    pub fn breakers(&self) -> Vec<(&'static str, CircuitState)> {
        self.endpoints
            .iter()
            .map(|e| (e.name, e.breaker.state()))
            .collect()
    }

    /// A readiness check of these services.
    ///
    /// ```
    /// use abacus::external::{ExternalConfig, ExternalMath};
    /// use abacus::health::HealthCheck;
    /// let check = ExternalMath::new(ExternalConfig::default()).health_check();
    /// assert_eq!(check.name(), "external_services");
    /// ```
    pub fn health_check(&self) -> ExternalHealth {
        ExternalHealth::new(self.clone())
    }

    fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_redaction() {
        let c = ExternalConfig {
            wolfram_appid: Some("TOPSECRET".into()),
            ..ExternalConfig::default()
        };
        assert_eq!(c.max_attempts, 3);
        assert_eq!(c.deadline, Duration::from_secs(8));
        assert_eq!(c.breaker_failures, 5);
        assert_eq!(c.breaker_open, Duration::from_secs(30));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("TOPSECRET"), "{dbg}");
        assert!(dbg.contains("[redacted]"));
    }

    #[test]
    fn disabled_services() {
        let math = ExternalMath::new(ExternalConfig {
            mathjs_url: Some("ftp://api.mathjs.org/v4/".into()),
            wolfram_url: Some("http://127.0.0.1:1/v1/result".into()),
            wolfram_appid: None,
            ..ExternalConfig::default()
        });
        assert!(!math.is_enabled());
        let math = ExternalMath::new(ExternalConfig {
            mathjs_url: Some("  ".into()),
            wolfram_url: Some("http://127.0.0.1:1/v1/result".into()),
            wolfram_appid: Some("id".into()),
            ..ExternalConfig::default()
        });
        assert_eq!(math.breakers(), vec![("wolfram", CircuitState::Closed)]);
    }

    #[test]
    fn ranking() {
        use ExternalError::*;
        let order = [
            Disabled,
            Unavailable,
            Timeout,
            Transport("x".into()),
            Status(503),
            Rejected("y".into()),
        ];
        assert!(order.windows(2).all(|w| w[0].rank() < w[1].rank()));
        assert_eq!(Status(500).outcome(), "error");
        assert_eq!(Rejected(String::new()).outcome(), "rejected");
    }

    #[tokio::test]
    async fn disabled_query() {
        let math = ExternalMath::new(ExternalConfig::default());
        assert_eq!(
            math.query("integral of x").await,
            Err(ExternalError::Disabled)
        );
    }
}
