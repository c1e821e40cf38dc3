//! Health checks: `/health` (liveness) and `/health/detailed` (readiness).
//!
//! Readiness runs every check concurrently, each under its own timeout
//! (5 s by default), and answers 503 when any check fails: an agent
//! self-test, a heartbeat write to the store and the disk usage of the data
//! directory's filesystem. External services' breakers and CPU / memory
//! usage are reported; CPU and memory fail readiness only above thresholds
//! the operator sets.

use crate::store::TaskStore;
use async_trait::async_trait;
use futures_util::future::join_all;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

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

/// How often [`StoreCheck`] writes a heartbeat at most; checks in between
/// report the last write's result.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// A small durable write to the store ([`TaskStore::heartbeat`]): readiness
/// fails when saves would, e.g. on a full disk or a read-only file, not only
/// when the store is unreachable. Rate-limited to one write per interval.
///
/// ```
/// # async fn demo() {
/// use abacus::health::{HealthCheck, StoreCheck};
/// use std::sync::Arc;
/// let store = Arc::new(abacus::store::MemoryTaskStore::builder().build());
/// let check = StoreCheck::new(store).interval(std::time::Duration::from_secs(1));
/// assert!(check.check().await.healthy);
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo());
/// ```
pub struct StoreCheck {
    store: Arc<dyn TaskStore>,
    interval: Duration,
    // Held across the write, so concurrent probes share one heartbeat.
    last: tokio::sync::Mutex<Option<Beat>>,
}

struct Beat {
    at: Instant,
    latency: Duration,
    result: Result<(), String>,
}

impl StoreCheck {
    /// Checks `store`, writing at most once per [`HEARTBEAT_INTERVAL`].
    pub fn new(store: Arc<dyn TaskStore>) -> Self {
        StoreCheck {
            store,
            interval: HEARTBEAT_INTERVAL,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// Sets the shortest time between two heartbeat writes.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
}

#[async_trait]
impl HealthCheck for StoreCheck {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> CheckResult {
        let mut last = self.last.lock().await;
        let beat = match last.take() {
            Some(beat) if beat.at.elapsed() < self.interval => last.insert(beat),
            _ => {
                let started = Instant::now();
                let result = self.store.heartbeat().await.map_err(|e| e.to_string());
                last.insert(Beat {
                    at: started,
                    latency: started.elapsed(),
                    result,
                })
            }
        };
        let kind = self.store.kind();
        let details = json!({
            "backend": kind,
            "latency_ms": beat.latency.as_secs_f64() * 1e3,
            "age_ms": beat.at.elapsed().as_millis() as u64,
        });
        match &beat.result {
            Ok(()) => CheckResult::ok(format!("{kind} store takes writes")).with_details(details),
            Err(e) => {
                CheckResult::failed(format!("{kind} store write failed: {e}")).with_details(details)
            }
        }
    }
}

/// Usage above this, in percent, is a warning in the report when its
/// threshold is off (0); readiness fails only above a threshold.
pub const USAGE_WARNING: f32 = 90.0;

/// Disk usage of the filesystem holding the data directory against a
/// threshold, and CPU / memory usage (percent).
///
/// CPU and memory are host-wide figures (the node's, in a container), so by
/// default they are only reported, as warnings above [`USAGE_WARNING`];
/// readiness fails on them only with a threshold above 0.
///
/// ```
/// let c = abacus::health::ResourceCheck::new("./data");
/// assert_eq!((c.cpu_max, c.memory_max, c.disk_max), (0.0, 0.0, 90.0));
/// ```
#[derive(Debug, Clone)]
pub struct ResourceCheck {
    /// Where the data lives: its filesystem's usage is checked.
    pub data_dir: PathBuf,
    /// CPU usage that fails readiness; 0 = only report it.
    pub cpu_max: f32,
    /// Memory usage that fails readiness; 0 = only report it.
    pub memory_max: f32,
    /// Disk usage that fails readiness; 0 = only report it.
    pub disk_max: f32,
}

impl ResourceCheck {
    /// The default thresholds ([`crate::config::defaults`]): CPU and memory
    /// off, disk 90 %.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        use crate::config::defaults;
        ResourceCheck {
            data_dir: data_dir.into(),
            cpu_max: defaults::HEALTH_CPU_MAX,
            memory_max: defaults::HEALTH_MEMORY_MAX,
            disk_max: defaults::HEALTH_DISK_MAX,
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

/// Usage above `max` fails; with `max` 0 usage above [`USAGE_WARNING`] is
/// a warning.
fn judge(
    what: &str,
    percent: f32,
    max: f32,
    failures: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    if max > 0.0 {
        if percent > max {
            failures.push(format!("{what} usage {percent:.1}% above {max}%"));
        }
    } else if percent > USAGE_WARNING {
        warnings.push(format!("high {what} usage: {percent:.1}%"));
    }
}

impl ResourceCheck {
    fn sample(&self) -> CheckResult {
        use sysinfo::System;
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
        let (mut failures, mut warnings) = (Vec::new(), Vec::new());
        judge("CPU", cpu, self.cpu_max, &mut failures, &mut warnings);
        judge(
            "memory",
            memory,
            self.memory_max,
            &mut failures,
            &mut warnings,
        );
        let disk = disk_usage(&self.data_dir);
        let disk_details = match &disk {
            Ok(d) => {
                let used = percent(d.used, d.used + d.available);
                judge("disk", used, self.disk_max, &mut failures, &mut warnings);
                json!({"path": d.path, "percent": used, "free_bytes": d.available, "total_bytes": d.total})
            }
            Err(e) => {
                warnings.push(format!("disk usage unknown: {e}"));
                Value::Null
            }
        };
        let details = json!({
            "cpu_percent": cpu, "memory_percent": memory,
            "disk_percent": disk_details.get("percent"), "disk": disk_details,
            "thresholds": {"cpu": self.cpu_max, "memory": self.memory_max, "disk": self.disk_max},
            "warnings": warnings,
        });
        if !failures.is_empty() {
            CheckResult::failed(format!("resource limits exceeded: {}", failures.join("; ")))
                .with_details(details)
        } else if !warnings.is_empty() {
            CheckResult::ok(format!("resource warnings: {}", warnings.join("; ")))
                .with_details(details)
        } else {
            CheckResult::ok("resources normal").with_details(details)
        }
    }
}

/// Space on the filesystem holding a directory, in bytes.
#[derive(Debug)]
struct DiskUsage {
    /// The directory measured: the data directory, or its nearest existing
    /// ancestor while it does not exist yet.
    path: PathBuf,
    used: u64,
    /// Free to unprivileged writers.
    available: u64,
    total: u64,
}

/// The directory or its nearest existing ancestor, canonicalized.
fn existing_dir(dir: &Path) -> PathBuf {
    let found = dir
        .ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.exists())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(found).unwrap_or_else(|_| found.to_path_buf())
}

/// `statvfs` of the directory itself: the figure is its filesystem's,
/// tmpfs and bind mounts included.
#[cfg(unix)]
fn disk_usage(dir: &Path) -> Result<DiskUsage, String> {
    let path = existing_dir(dir);
    let st = rustix::fs::statvfs(&path).map_err(|e| format!("statvfs {}: {e}", path.display()))?;
    let block = st.f_frsize.max(1);
    Ok(DiskUsage {
        used: st.f_blocks.saturating_sub(st.f_bfree).saturating_mul(block),
        available: st.f_bavail.saturating_mul(block),
        total: st.f_blocks.saturating_mul(block),
        path,
    })
}

/// The mount whose mount point is the longest prefix of the directory.
#[cfg(not(unix))]
fn disk_usage(dir: &Path) -> Result<DiskUsage, String> {
    let path = existing_dir(dir);
    let disks = sysinfo::Disks::new_with_refreshed_list();
    let disk = disks
        .iter()
        .flat_map(|d| d.iter())
        .filter(|d| path.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .ok_or_else(|| format!("no mount holds {}", path.display()))?;
    Ok(DiskUsage {
        used: disk.total_space().saturating_sub(disk.available_space()),
        available: disk.available_space(),
        total: disk.total_space(),
        path,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        Claim, ExpiredLease, Lease, ListQuery, LoggedEvent, LoggedTask, StoreError, TaskOwner,
        TaskPage,
    };
    use chrono::{DateTime, Utc};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    fn no_log() -> StoreError {
        StoreError::Backend("this test store keeps no event log".into())
    }

    /// Counts heartbeats; fails them while `broken`.
    #[derive(Default)]
    struct Beats {
        writes: AtomicUsize,
        broken: AtomicBool,
    }

    #[async_trait]
    impl TaskStore for Beats {
        async fn save(&self, _: &a2a::Task, _: &TaskOwner) -> Result<(), StoreError> {
            Ok(())
        }
        async fn get(&self, _: &str, _: &TaskOwner) -> Result<Option<a2a::Task>, StoreError> {
            Ok(None)
        }
        async fn list(&self, _: &ListQuery) -> Result<TaskPage, StoreError> {
            Ok(TaskPage::default())
        }
        // This double keeps no event log; the health checks never use one.
        async fn append(
            &self,
            _: &a2a::Task,
            _: &TaskOwner,
            _: u64,
            _: &[LoggedEvent],
            _: Lease<'_>,
        ) -> Result<(), StoreError> {
            Err(no_log())
        }
        async fn get_logged(
            &self,
            _: &str,
            _: &TaskOwner,
        ) -> Result<Option<LoggedTask>, StoreError> {
            Err(no_log())
        }
        async fn events_after(
            &self,
            _: &str,
            _: &TaskOwner,
            _: u64,
            _: usize,
        ) -> Result<Vec<LoggedEvent>, StoreError> {
            Err(no_log())
        }
        async fn claim(
            &self,
            _: &str,
            _: &TaskOwner,
            _: &str,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
        ) -> Result<Claim, StoreError> {
            Err(no_log())
        }
        async fn renew_leases(&self, _: &str, _: DateTime<Utc>) -> Result<u64, StoreError> {
            Err(no_log())
        }
        async fn release_lease(&self, _: &str, _: &str) -> Result<(), StoreError> {
            Err(no_log())
        }
        async fn expired_leases(
            &self,
            _: DateTime<Utc>,
            _: usize,
        ) -> Result<Vec<ExpiredLease>, StoreError> {
            Err(no_log())
        }
        async fn prune_events(&self, _: DateTime<Utc>) -> Result<u64, StoreError> {
            Err(no_log())
        }
        async fn heartbeat(&self) -> Result<(), StoreError> {
            self.writes.fetch_add(1, Ordering::SeqCst);
            if self.broken.load(Ordering::SeqCst) {
                Err(StoreError::Backend("disk full".into()))
            } else {
                Ok(())
            }
        }
        fn kind(&self) -> &'static str {
            "beats"
        }
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_writes_at_most_once_per_interval() {
        let store = Arc::new(Beats::default());
        let check = StoreCheck::new(store.clone()).interval(Duration::from_secs(5));
        assert!(check.check().await.healthy);
        store.broken.store(true, Ordering::SeqCst);
        // Within the interval: the last result, no write.
        let r = check.check().await;
        assert!(r.healthy, "{r:?}");
        assert_eq!(store.writes.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(5)).await;
        let r = check.check().await;
        assert!(!r.healthy && r.status.contains("disk full"), "{r:?}");
        assert_eq!(store.writes.load(Ordering::SeqCst), 2);
        // The failure is reported until the next write succeeds.
        store.broken.store(false, Ordering::SeqCst);
        assert!(!check.check().await.healthy);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(check.check().await.healthy);
        assert_eq!(store.writes.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn cpu_and_memory_only_warn_by_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The disk has its own threshold (on by default): left out here, so
        // that a full disk on the test machine does not decide this test.
        let r = ResourceCheck {
            disk_max: 0.0,
            ..ResourceCheck::new(dir.path())
        }
        .check()
        .await;
        assert!(r.healthy, "{r:?}");
        assert!(r.details["warnings"].is_array(), "{r:?}");
        // Opted in below any usage: fails.
        let r = ResourceCheck {
            cpu_max: f32::MIN_POSITIVE,
            memory_max: f32::MIN_POSITIVE,
            ..ResourceCheck::new(dir.path())
        }
        .check()
        .await;
        assert!(!r.healthy && r.status.contains("memory usage"), "{r:?}");
    }

    #[tokio::test]
    async fn disk_is_the_data_directorys_filesystem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("not/yet");
        let r = ResourceCheck {
            disk_max: f32::MIN_POSITIVE,
            ..ResourceCheck::new(&missing)
        }
        .check()
        .await;
        let canonical = std::fs::canonicalize(dir.path()).expect("canonicalize");
        assert_eq!(r.details["disk"]["path"], json!(canonical), "{r:?}");
        assert!(r.details["disk"]["total_bytes"].as_u64() > Some(0), "{r:?}");
        assert!(!r.healthy && r.status.contains("disk usage"), "{r:?}");
    }
}
