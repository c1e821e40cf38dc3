//! Install `metrics-exporter-prometheus` without an HTTP listener.
//!
//! The application serves `/metrics` itself with [`PrometheusHandle::render`].
//! Histograms whose names end in `_seconds` get [`SECONDS_BUCKETS`] (real
//! Prometheus histograms, not summaries); other histograms are summaries
//! unless [`PrometheusConfig::buckets`] is set.
//!
//! `render()` also drains the histogram samples recorded since the last
//! render. If nothing scrapes for long periods, call
//! [`PrometheusHandle::run_upkeep`] now and then (say every 5 s) to bound
//! memory.
//!
//! # Example
//!
//! ```no_run
//! use abacus_layers::metrics::prometheus;
//!
//! let handle = prometheus::install().expect("no other global recorder");
//! // In the /metrics route:
//! let body: String = handle.render();
//! # let _ = body;
//! ```

use std::fmt;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};
pub use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};

/// Histogram buckets for durations in seconds: 1 ms to 2 min.
///
/// # Example
///
/// ```
/// use abacus_layers::metrics::prometheus::SECONDS_BUCKETS;
/// assert!(SECONDS_BUCKETS.windows(2).all(|w| w[0] < w[1]));
/// ```
pub const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Why the Prometheus recorder could not be built or installed.
///
/// # Example
///
/// ```
/// use abacus_layers::metrics::prometheus::{InstallError, PrometheusConfig};
/// let err = PrometheusConfig::new().seconds_buckets(&[]).build().unwrap_err();
/// assert!(matches!(err, InstallError::InvalidBuckets));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum InstallError {
    /// Empty bucket bounds were given.
    InvalidBuckets,
    /// A global recorder is already installed.
    AlreadyInstalled,
    /// Another error from the exporter.
    Exporter(BuildError),
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::InvalidBuckets => f.write_str("histogram bucket bounds cannot be empty"),
            InstallError::AlreadyInstalled => {
                f.write_str("a global metrics recorder is already installed")
            }
            InstallError::Exporter(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for InstallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InstallError::Exporter(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BuildError> for InstallError {
    fn from(e: BuildError) -> Self {
        match e {
            BuildError::EmptyBucketsOrQuantiles => InstallError::InvalidBuckets,
            BuildError::FailedToSetGlobalRecorder(_) => InstallError::AlreadyInstalled,
            other => InstallError::Exporter(other),
        }
    }
}

/// Configures the Prometheus recorder.
///
/// # Example
///
/// ```
/// use abacus_layers::metrics::prometheus::PrometheusConfig;
///
/// let recorder = PrometheusConfig::new()
///     .seconds_buckets(&[0.01, 0.1, 1.0, 10.0])
///     .global_label("service", "abacus")
///     .build()
///     .unwrap();
/// let handle = recorder.handle();
/// metrics::with_local_recorder(&recorder, || metrics::counter!("requests_total").increment(1));
/// assert!(handle.render().contains("requests_total{service=\"abacus\"} 1"));
/// ```
#[derive(Clone, Debug)]
pub struct PrometheusConfig {
    seconds_buckets: Vec<f64>,
    buckets: Option<Vec<f64>>,
    global_labels: Vec<(String, String)>,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl PrometheusConfig {
    /// [`SECONDS_BUCKETS`] for `*_seconds` histograms, summaries for others,
    /// no global labels.
    ///
    /// # Example
    ///
    /// ```
    /// let config = abacus_layers::metrics::prometheus::PrometheusConfig::new();
    /// # let _ = config;
    /// ```
    pub fn new() -> Self {
        Self {
            seconds_buckets: SECONDS_BUCKETS.to_vec(),
            buckets: None,
            global_labels: Vec::new(),
        }
    }

    /// Buckets for histograms whose names end in `_seconds`.
    ///
    /// # Example
    ///
    /// ```
    /// let config = abacus_layers::metrics::prometheus::PrometheusConfig::new()
    ///     .seconds_buckets(&[0.005, 0.05, 0.5, 5.0]);
    /// # let _ = config;
    /// ```
    pub fn seconds_buckets(mut self, bounds: &[f64]) -> Self {
        self.seconds_buckets = bounds.to_vec();
        self
    }

    /// Buckets for all other histograms (instead of summaries).
    ///
    /// # Example
    ///
    /// ```
    /// let config = abacus_layers::metrics::prometheus::PrometheusConfig::new()
    ///     .buckets(&[1.0, 10.0, 100.0, 1000.0]);
    /// # let _ = config;
    /// ```
    pub fn buckets(mut self, bounds: &[f64]) -> Self {
        self.buckets = Some(bounds.to_vec());
        self
    }

    /// A label added to every metric.
    ///
    /// # Example
    ///
    /// ```
    /// let config = abacus_layers::metrics::prometheus::PrometheusConfig::new()
    ///     .global_label("instance", "a-1");
    /// # let _ = config;
    /// ```
    pub fn global_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.global_labels.push((key.into(), value.into()));
        self
    }

    /// Build the recorder without installing it (for tests, or to combine it
    /// with other recorders).
    ///
    /// # Example
    ///
    /// ```
    /// let recorder = abacus_layers::metrics::prometheus::PrometheusConfig::new().build().unwrap();
    /// assert_eq!(recorder.handle().render(), "");
    /// ```
    pub fn build(self) -> Result<PrometheusRecorder, InstallError> {
        let mut builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &self.seconds_buckets)?;
        if let Some(bounds) = &self.buckets {
            builder = builder.set_buckets(bounds)?;
        }
        for (k, v) in self.global_labels {
            builder = builder.add_global_label(k, v);
        }
        Ok(builder.build_recorder())
    }

    /// Build the recorder, install it as the global `metrics` recorder and
    /// return its handle. No HTTP listener is started.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let handle = abacus_layers::metrics::prometheus::PrometheusConfig::new()
    ///     .global_label("service", "abacus")
    ///     .install()
    ///     .unwrap();
    /// # let _ = handle;
    /// ```
    pub fn install(self) -> Result<PrometheusHandle, InstallError> {
        let recorder = self.build()?;
        let handle = recorder.handle();
        ::metrics::set_global_recorder(recorder).map_err(|_| InstallError::AlreadyInstalled)?;
        Ok(handle)
    }
}

/// Install the Prometheus recorder with [`PrometheusConfig::new`] and return
/// its handle.
///
/// # Example
///
/// ```no_run
/// let handle = abacus_layers::metrics::prometheus::install().unwrap();
/// let text = handle.render(); // the body of GET /metrics
/// # let _ = text;
/// ```
pub fn install() -> Result<PrometheusHandle, InstallError> {
    PrometheusConfig::new().install()
}
