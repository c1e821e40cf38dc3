//! The readiness check of the external services.

use super::ExternalMath;
use crate::health::{CheckResult, HealthCheck};
use abacus_layers::circuit_breaker::CircuitState;
use async_trait::async_trait;
use serde_json::{json, Map, Value};

/// Reports each configured service's breaker state and last outcome.
///
/// The services are optional (the agent falls back to local math), so this
/// check never fails readiness: with a breaker open or half-open its status
/// reads `degraded: mathjs breaker open`, otherwise `ok`.
///
/// ```
/// use abacus::external::{ExternalConfig, ExternalHealth, ExternalMath};
/// use abacus::health::HealthCheck;
///
/// # async fn demo() {
/// let math = ExternalMath::new(ExternalConfig::default());
/// let result = ExternalHealth::new(math).check().await;
/// assert!(result.healthy);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ExternalHealth {
    math: ExternalMath,
}

impl ExternalHealth {
    /// A check of `math`'s services (it shares their breakers).
    ///
    /// ```
    /// use abacus::external::{ExternalConfig, ExternalHealth, ExternalMath};
    /// let check = ExternalHealth::new(ExternalMath::new(ExternalConfig::default()));
    /// # let _ = check;
    /// ```
    pub fn new(math: ExternalMath) -> Self {
        ExternalHealth { math }
    }
}

#[async_trait]
impl HealthCheck for ExternalHealth {
    fn name(&self) -> &'static str {
        "external_services"
    }

    async fn check(&self) -> CheckResult {
        let endpoints = self.math.endpoints();
        if endpoints.is_empty() {
            return CheckResult::ok("no external services configured: local math only")
                .with_details(json!({}));
        }
        let mut details = Map::new();
        let mut degraded = Vec::new();
        for e in endpoints {
            let state = e.breaker.state();
            if state != CircuitState::Closed {
                degraded.push(format!("{} breaker {}", e.name, state.as_str()));
            }
            let mut service = json!({ "breaker": state.as_str() });
            if let Some(last) = e.last_outcome() {
                service["last_outcome"] = Value::from(last.outcome);
                service["last_outcome_at"] = Value::from(last.at.to_rfc3339());
                if let Some(error) = last.error {
                    service["last_error"] = Value::from(error);
                }
            }
            details.insert(e.name.to_string(), service);
        }
        let status = if degraded.is_empty() {
            let names: Vec<&str> = endpoints.iter().map(|e| e.name).collect();
            format!("ok: {} available", names.join(", "))
        } else {
            format!(
                "degraded: {} (answers fall back to local math)",
                degraded.join(", ")
            )
        };
        CheckResult::ok(status).with_details(Value::Object(details))
    }
}
