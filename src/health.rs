//! Health checks: `/health` (liveness) and `/health/detailed` (readiness).
//!
//! Readiness runs every check concurrently, each under its own timeout
//! (5 s by default), and answers 503 when any
//! check fails: an agent self-test, a store round trip, external services
//! and their breakers, and CPU / memory / disk usage against thresholds.

use crate::store::TaskStore;
use async_trait::async_trait;
use futures_util::future::join_all;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The outcome of one check.
///
/// ```
/// let ok = abacus::health::CheckResult::ok("fine");
/// assert!(ok.healthy);
/// ```
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// Whether this check passes.
    pub healthy: bool,
    /// One line for humans.
    pub status: String,
    /// Measurements behind the verdict.
    pub details: Value,
}

impl CheckResult {
    /// A passing check.
    pub fn ok(status: impl Into<String>) -> Self {
        CheckResult {
            healthy: true,
            status: status.into(),
            details: Value::Null,
        }
    }

    /// A failing check.
    pub fn failed(status: impl Into<String>) -> Self {
        CheckResult {
            healthy: false,
            status: status.into(),
            details: Value::Null,
        }
    }

    /// Adds measurements.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// One readiness check.
///
/// ```
/// use abacus::health::{CheckResult, HealthCheck};
/// struct AlwaysFine;
/// #[async_trait::async_trait]
/// impl HealthCheck for AlwaysFine {
///     fn name(&self) -> &'static str { "always_fine" }
///     async fn check(&self) -> CheckResult { CheckResult::ok("fine") }
/// }
/// ```
#[async_trait]
pub trait HealthCheck: Send + Sync + 'static {
    /// The key of this check in the report.
    fn name(&self) -> &'static str;
    /// Runs the check.
    async fn check(&self) -> CheckResult;
}

/// A set of readiness checks.
///
/// ```
/// # async fn demo() {
/// let health = abacus::health::Health::new();
/// let (ready, report) = health.report().await;
/// assert!(ready);
/// assert_eq!(report["status"], "healthy");
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Health {
    checks: Vec<Arc<dyn HealthCheck>>,
    timeout: Option<Duration>,
}

impl Health {
    /// No checks yet; the per-check timeout is 5 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a check.
    pub fn check(mut self, check: impl HealthCheck) -> Self {
        self.checks.push(Arc::new(check));
        self
    }

    /// Adds a shared check.
    pub fn check_arc(mut self, check: Arc<dyn HealthCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// Sets the per-check timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Runs every check concurrently; returns readiness and the JSON report.
    pub async fn report(&self) -> (bool, Value) {
        let limit = self.timeout.unwrap_or(Duration::from_secs(5));
        let results = join_all(self.checks.iter().map(|c| async move {
            let r = match tokio::time::timeout(limit, c.check()).await {
                Ok(r) => r,
                Err(_) => CheckResult::failed(format!("timed out after {}s", limit.as_secs_f64())),
            };
            (c.name(), r)
        }))
        .await;
        let healthy = results.iter().all(|(_, r)| r.healthy);
        let details: serde_json::Map<String, Value> = results
            .into_iter()
            .map(|(name, r)| {
                let mut v = json!({"healthy": r.healthy, "status": r.status});
                if !r.details.is_null() {
                    v["details"] = r.details;
                }
                (name.to_string(), v)
            })
            .collect();
        let report = json!({
            "status": if healthy { "healthy" } else { "degraded" },
            "healthy": healthy,
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "checks": details,
        });
        (healthy, report)
    }
}

/// The liveness document: cheap, no I/O.
pub fn liveness() -> Value {
    json!({"status": "healthy", "timestamp": chrono::Utc::now().to_rfc3339()})
}

/// A store round trip (`SELECT 1` on PostgreSQL, a read on SQLite).
pub struct StoreCheck(pub Arc<dyn TaskStore>);

#[async_trait]
impl HealthCheck for StoreCheck {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> CheckResult {
        let started = std::time::Instant::now();
        match self.0.ping().await {
            Ok(()) => CheckResult::ok(format!("{} store reachable", self.0.kind())).with_details(
                json!({"backend": self.0.kind(), "latency_ms": started.elapsed().as_secs_f64() * 1e3}),
            ),
            Err(e) => CheckResult::failed(format!("{} store unreachable: {e}", self.0.kind()))
                .with_details(json!({"backend": self.0.kind()})),
        }
    }
}

/// CPU, memory and disk usage against thresholds (percent).
///
/// ```
/// let c = abacus::health::ResourceCheck::new("./data");
/// assert_eq!(c.cpu_max, 80.0);
/// ```
#[derive(Debug, Clone)]
pub struct ResourceCheck {
    /// Where the data lives: its filesystem's usage is checked.
    pub data_dir: PathBuf,
    /// CPU usage threshold.
    pub cpu_max: f32,
    /// Memory usage threshold.
    pub memory_max: f32,
    /// Disk usage threshold.
    pub disk_max: f32,
}

impl ResourceCheck {
    /// The default thresholds: CPU 80 %, memory 80 %, disk 90 %.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ResourceCheck {
            data_dir: data_dir.into(),
            cpu_max: 80.0,
            memory_max: 80.0,
            disk_max: 90.0,
        }
    }
}

#[async_trait]
impl HealthCheck for ResourceCheck {
    fn name(&self) -> &'static str {
        "system_resources"
    }

    async fn check(&self) -> CheckResult {
        let this = self.clone();
        // sysinfo reads /proc synchronously and CPU usage needs two samples.
        let sample = tokio::task::spawn_blocking(move || this.sample()).await;
        match sample {
            Ok(r) => r,
            Err(e) => CheckResult::failed(format!("resource sampling failed: {e}")),
        }
    }
}

impl ResourceCheck {
    fn sample(&self) -> CheckResult {
        use sysinfo::{Disks, System};
        let mut sys = match System::new() {
            Ok(s) => s,
            Err(e) => return CheckResult::failed(format!("cannot read system usage: {e}")),
        };
        sys.refresh_cpu_usage();
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(Duration::from_millis(100)));
        sys.refresh_cpu_usage();
        sys.refresh_memory();
        let cpu = sys.global_cpu_usage();
        let memory = percent(sys.used_memory(), sys.total_memory());
        let dir = std::fs::canonicalize(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone());
        let disks = Disks::new_with_refreshed_list();
        let disk = disks
            .iter()
            .flat_map(|d| d.iter())
            .filter(|d| dir.starts_with(d.mount_point()))
            .max_by_key(|d| d.mount_point().as_os_str().len())
            .map(|d| percent(d.total_space() - d.available_space(), d.total_space()));
        let mut warnings = Vec::new();
        if cpu > self.cpu_max {
            warnings.push(format!("high CPU usage: {cpu:.1}%"));
        }
        if memory > self.memory_max {
            warnings.push(format!("high memory usage: {memory:.1}%"));
        }
        if let Some(d) = disk.filter(|d| *d > self.disk_max) {
            warnings.push(format!("high disk usage: {d:.1}%"));
        }
        let details = json!({
            "cpu_percent": cpu, "memory_percent": memory, "disk_percent": disk,
            "thresholds": {"cpu": self.cpu_max, "memory": self.memory_max, "disk": self.disk_max},
        });
        if warnings.is_empty() {
            CheckResult::ok("resources normal").with_details(details)
        } else {
            CheckResult::failed(format!("resource warnings: {}", warnings.join("; ")))
                .with_details(details)
        }
    }
}

fn percent(used: u64, total: u64) -> f32 {
    if total == 0 {
        0.0
    } else {
        (used as f64 / total as f64 * 100.0) as f32
    }
}

/// Metadata key marking the self-test's message, so agents can leave it out
/// of history and statistics.
pub const SELF_TEST_METADATA: &str = "abacus.selfTest";

/// Sends a question to the agent through the core service and expects a
/// text in the answer (the math agent checks "2 + 2" = "4").
#[derive(Clone)]
pub struct SelfTest {
    core: crate::core::Core,
    question: String,
    expected: String,
}

impl SelfTest {
    /// A self-test asking `question` and expecting a text part equal to `expected`.
    pub fn new(core: crate::core::Core, question: &str, expected: &str) -> Self {
        SelfTest {
            core,
            question: question.into(),
            expected: expected.into(),
        }
    }
}

#[async_trait]
impl HealthCheck for SelfTest {
    fn name(&self) -> &'static str {
        "agent"
    }

    async fn check(&self) -> CheckResult {
        use crate::protocol::types::{Message, Part, Role, SendMessageRequest};
        use crate::protocol::{A2ARequest, A2AResponse, Call};
        use tower::ServiceExt;
        let mut message = Message::new(Role::User, vec![Part::text(self.question.clone())]);
        message.metadata = Some([(SELF_TEST_METADATA.to_string(), Value::Bool(true))].into());
        let call = Call::SendMessage(SendMessageRequest {
            message,
            configuration: None,
            metadata: None,
            tenant: None,
        });
        let req = A2ARequest::new(call);
        let reply = match self.core.clone().oneshot(req).await {
            Ok(A2AResponse::Unary(u)) => u.outcome,
            Ok(A2AResponse::Stream(_)) => {
                return CheckResult::failed("agent answered SendMessage with a stream")
            }
            Err(never) => match never {},
        };
        let value = match reply {
            Ok(r) => serde_json::to_value(&r).unwrap_or(Value::Null),
            Err(e) => return CheckResult::failed(format!("agent error: {}", e.message)),
        };
        let texts = crate::protocol::reply_texts(&value);
        if texts.iter().any(|t| t.trim() == self.expected) {
            CheckResult::ok("agent functioning normally")
        } else {
            CheckResult::failed(format!(
                "agent answered {:?} to {:?}, expected {:?}",
                texts, self.question, self.expected
            ))
        }
    }
}
