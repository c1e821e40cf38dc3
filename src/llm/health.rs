//! The readiness check of the LLM provider: its breaker, and whether it
//! answers `GET <base_url>/models` (which spends no tokens), cached.

use super::{endpoint, LlmClient};
use crate::client::conn::Pool;
use crate::health::{CheckResult, HealthCheck};
use abacus_layers::circuit_breaker::CircuitState;
use async_trait::async_trait;
use http::{header, Request};
use http_body_util::Full;
use serde_json::json;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a models-list answer is reused.
const CACHED_FOR: Duration = Duration::from_secs(30);
/// Bound of the models-list call.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Reports the breaker and the provider's reachability.
///
/// The LLM is optional (the agent answers deterministically without it),
/// so this check never fails readiness: its status reads `degraded: …`
/// when the breaker is not closed or the provider cannot be reached.
///
/// ```no_run
/// use abacus::llm::{LlmClient, LlmConfig};
/// use abacus::health::HealthCheck;
/// # async fn demo() {
/// let llm = LlmClient::new(LlmConfig {
///     base_url: Some("http://127.0.0.1:11434/v1".into()),
///     model: Some("llama3.2".into()),
///     ..LlmConfig::default()
/// }).unwrap().unwrap();
/// let result = llm.health_check().check().await;
/// assert!(result.healthy);
/// # }
/// ```
#[derive(Debug)]
pub struct LlmHealth {
    client: LlmClient,
    /// The probe's connections, made once and reused by every probe (or
    /// why they cannot be made: an unreadable CA file).
    pool: Result<Pool, String>,
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl LlmHealth {
    /// A check of `client`'s provider.
    pub fn new(client: LlmClient) -> Self {
        let pool = crate::client::conn::connector(
            client.inner.config.outbound_ca.as_deref(),
            PROBE_TIMEOUT,
        )
        .map(crate::client::conn::pool)
        .map_err(|e| e.to_string());
        LlmHealth {
            client,
            pool,
            last: Mutex::new(None),
        }
    }

    async fn reachable(&self) -> Result<(), String> {
        if let Some((at, result)) = &*self.last.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < CACHED_FOR {
                return result.clone();
            }
        }
        let result = self.probe().await;
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), result.clone()));
        result
    }

    async fn probe(&self) -> Result<(), String> {
        let inner = &self.client.inner;
        let base = inner.config.base_url.as_deref().unwrap_or_default().trim();
        let uri = endpoint(base, "models").map_err(|e| e.to_string())?;
        let pool = self.pool.as_ref().map_err(Clone::clone)?;
        let mut request = Request::get(uri)
            .header(header::ACCEPT, "application/json")
            .body(Full::default())
            .map_err(|e| e.to_string())?;
        if let Some(key) = inner
            .config
            .api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
        {
            if let Ok(mut v) = http::HeaderValue::from_str(&format!("Bearer {key}")) {
                v.set_sensitive(true);
                request.headers_mut().insert(header::AUTHORIZATION, v);
            }
        }
        match tokio::time::timeout(PROBE_TIMEOUT, pool.request(request)).await {
            Err(_) => Err(format!(
                "GET /models did not answer in {} s",
                PROBE_TIMEOUT.as_secs()
            )),
            Ok(Err(e)) => Err(format!(
                "cannot reach the provider: {}",
                crate::client::error_chain(&e)
            )),
            Ok(Ok(r)) if r.status().is_success() => Ok(()),
            Ok(Ok(r)) => Err(format!("GET /models answered HTTP {}", r.status().as_u16())),
        }
    }
}

#[async_trait]
impl HealthCheck for LlmHealth {
    fn name(&self) -> &'static str {
        "llm"
    }

    async fn check(&self) -> CheckResult {
        let state = self.client.breaker_state();
        let reachable = self.reachable().await;
        let mut details = json!({
            "provider": self.client.provider(),
            "model": self.client.model(),
            "breaker": state.as_str(),
            "reachable": reachable.is_ok(),
        });
        if let Err(e) = &reachable {
            details["error"] = json!(e);
        }
        let status = match (&reachable, state) {
            (Ok(()), CircuitState::Closed) => format!("ok: {} reachable", self.client.provider()),
            (Ok(()), s) => format!(
                "degraded: llm breaker {} (answers fall back to local math)",
                s.as_str()
            ),
            (Err(e), _) => format!("degraded: {e} (answers fall back to local math)"),
        };
        CheckResult::ok(status).with_details(details)
    }
}
