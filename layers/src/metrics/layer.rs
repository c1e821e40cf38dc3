use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, SharedString};
use std::sync::OnceLock;
use tower_layer::Layer;

use super::Metrics;

/// Maps a result to the value of the status label.
///
/// Implemented for every `Fn(&Result<Res, E>) -> &'static str`. Keep the set
/// of values small: each is a time series. The default is [`OkOrError`].
///
/// # Example
///
/// ```
/// use abacus_layers::metrics::ClassifyStatus;
/// let c = |r: &Result<http::StatusCode, std::io::Error>| match r {
///     Ok(s) if s.is_success() => "ok",
///     Ok(_) => "http_error",
///     Err(_) => "error",
/// };
/// assert_eq!(c.status(&Ok(http::StatusCode::NOT_FOUND)), "http_error");
/// ```
pub trait ClassifyStatus<Res, E> {
    /// The status label value for `result`.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::metrics::{ClassifyStatus, OkOrError};
    /// assert_eq!(OkOrError.status(&Ok::<_, ()>(1)), "ok");
    /// ```
    fn status(&self, result: &Result<Res, E>) -> &'static str;
}

impl<Res, E, F> ClassifyStatus<Res, E> for F
where
    F: Fn(&Result<Res, E>) -> &'static str,
{
    #[inline]
    fn status(&self, result: &Result<Res, E>) -> &'static str {
        self(result)
    }
}

/// `"ok"` for a response, `"error"` for an error.
///
/// # Example
///
/// ```
/// use abacus_layers::metrics::{ClassifyStatus, OkOrError};
/// assert_eq!(OkOrError.status(&Err::<(), _>("boom")), "error");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct OkOrError;

impl<Res, E> ClassifyStatus<Res, E> for OkOrError {
    #[inline]
    fn status(&self, result: &Result<Res, E>) -> &'static str {
        if result.is_ok() { "ok" } else { "error" }
    }
}

/// Maps a request to the value of the request label (see
/// [`MetricsLayer::request_label`]), read when the request is called.
///
/// Implemented for every `Fn(&Req) -> &'static str`. Keep the set of
/// values small: each is a time series.
///
/// # Example
///
/// ```
/// use abacus_layers::metrics::LabelRequest;
/// let by_method = |r: &http::Request<()>| if r.method() == http::Method::GET { "read" } else { "write" };
/// assert_eq!(by_method.label(&http::Request::new(())), "read");
/// ```
pub trait LabelRequest<Req> {
    /// The request label value for `req`.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::metrics::{LabelRequest, NoRequestLabel};
    /// assert_eq!(NoRequestLabel.label(&1u8), "");
    /// ```
    fn label(&self, req: &Req) -> &'static str;
}

impl<Req, F> LabelRequest<Req> for F
where
    F: Fn(&Req) -> &'static str,
{
    #[inline]
    fn label(&self, req: &Req) -> &'static str {
        self(req)
    }
}

/// No request label (the default).
///
/// # Example
///
/// ```
/// let layer = abacus_layers::metrics::MetricsLayer::new();
/// let _: &abacus_layers::metrics::MetricsLayer<_, abacus_layers::metrics::NoRequestLabel> = &layer;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRequestLabel;

impl<Req> LabelRequest<Req> for NoRequestLabel {
    #[inline]
    fn label(&self, _: &Req) -> &'static str {
        ""
    }
}

pub(super) static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

#[derive(Clone, Debug)]
struct Config {
    requests: SharedString,
    duration: SharedString,
    in_flight: SharedString,
    status_label: SharedString,
    /// The names of the per-request labels, when there are any.
    request_labels: [Option<SharedString>; 2],
    labels: Vec<Label>,
    /// Register each metric once and keep its handle.
    keep_handles: bool,
}

struct StatusKeys {
    labels: [&'static str; 2],
    status: &'static str,
    requests: Key,
    duration: Key,
}

/// Configuration plus the metric keys built from it (once per status value).
pub(super) struct Shared {
    config: Config,
    in_flight: Key,
    by_status: RwLock<Vec<StatusKeys>>,
    /// Handles kept after their first registration (`keep_handles`).
    kept: Option<Kept>,
}

/// (request labels, status) combinations whose handles are kept; further
/// ones are looked up per request.
const KEPT_STATUSES: usize = 64;

struct Kept {
    in_flight: OnceLock<Gauge>,
    /// Filled first come, first served; lock-free to read.
    by_status: [OnceLock<StatusHandles>; KEPT_STATUSES],
}

struct StatusHandles {
    labels: [&'static str; 2],
    status: &'static str,
    requests: Counter,
    duration: Histogram,
}

impl Shared {
    fn new(config: Config) -> Self {
        Self {
            in_flight: Key::from_parts(config.in_flight.clone(), config.labels.clone()),
            by_status: RwLock::new(Vec::new()),
            kept: config.keep_handles.then(|| Kept {
                in_flight: OnceLock::new(),
                by_status: std::array::from_fn(|_| OnceLock::new()),
            }),
            config,
        }
    }

    #[inline]
    pub(super) fn start(&self) {
        match &self.kept {
            Some(kept) => self.kept_in_flight(kept).increment(1.0),
            None => ::metrics::with_recorder(|r| {
                r.register_gauge(&self.in_flight, &METADATA).increment(1.0)
            }),
        }
    }

    pub(super) fn finish(
        &self,
        labels: [&'static str; 2],
        status: &'static str,
        elapsed: Duration,
    ) {
        if let Some(kept) = &self.kept {
            self.kept_in_flight(kept).decrement(1.0);
            if let Some(h) = self.kept_status(kept, labels, status) {
                h.requests.increment(1);
                h.duration.record(elapsed.as_secs_f64());
                return;
            }
        }
        ::metrics::with_recorder(|r| {
            if self.kept.is_none() {
                r.register_gauge(&self.in_flight, &METADATA).decrement(1.0);
            }
            self.with_status_keys(labels, status, |keys| {
                r.register_counter(&keys.requests, &METADATA).increment(1);
                r.register_histogram(&keys.duration, &METADATA)
                    .record(elapsed.as_secs_f64());
            });
        });
    }

    fn kept_in_flight<'a>(&self, kept: &'a Kept) -> &'a Gauge {
        kept.in_flight.get_or_init(|| {
            ::metrics::with_recorder(|r| r.register_gauge(&self.in_flight, &METADATA))
        })
    }

    /// The kept handles of `labels` and `status`, registering them in a
    /// free slot; `None` once every slot holds another combination.
    fn kept_status<'a>(
        &self,
        kept: &'a Kept,
        labels: [&'static str; 2],
        status: &'static str,
    ) -> Option<&'a StatusHandles> {
        kept.by_status.iter().find_map(|slot| {
            let h = slot.get_or_init(|| {
                let (requests, duration) = ::metrics::with_recorder(|r| {
                    self.with_status_keys(labels, status, |keys| {
                        (
                            r.register_counter(&keys.requests, &METADATA),
                            r.register_histogram(&keys.duration, &METADATA),
                        )
                    })
                });
                StatusHandles {
                    labels,
                    status,
                    requests,
                    duration,
                }
            });
            (h.labels == labels && h.status == status).then_some(h)
        })
    }

    fn with_status_keys<T>(
        &self,
        values: [&'static str; 2],
        status: &'static str,
        f: impl FnOnce(&StatusKeys) -> T,
    ) -> T {
        let found = |k: &&StatusKeys| k.labels == values && k.status == status;
        {
            let keys = self.by_status.read().unwrap_or_else(|e| e.into_inner());
            if let Some(k) = keys.iter().find(found) {
                return f(k);
            }
        }
        let mut keys = self.by_status.write().unwrap_or_else(|e| e.into_inner());
        if !keys.iter().any(|k| found(&k)) {
            let mut labels = self.config.labels.clone();
            for (name, value) in self.config.request_labels.iter().zip(values) {
                if let Some(name) = name {
                    labels.push(Label::new(name.clone(), SharedString::const_str(value)));
                }
            }
            labels.push(Label::new(
                self.config.status_label.clone(),
                SharedString::const_str(status),
            ));
            keys.push(StatusKeys {
                labels: values,
                status,
                requests: Key::from_parts(self.config.requests.clone(), labels.clone()),
                duration: Key::from_parts(self.config.duration.clone(), labels),
            });
        }
        let k = keys.iter().find(found).expect("inserted");
        f(k)
    }
}

/// Applies [`Metrics`] to services.
///
/// Cloning the layer shares its metric keys.
///
/// # Example
///
/// ```
/// use abacus_layers::metrics::MetricsLayer;
/// let layer = MetricsLayer::new()
///     .requests_total_name("a2a_requests_total")
///     .label("agent_name", "abacus");
/// # let _ = layer;
/// ```
pub struct MetricsLayer<C = OkOrError, L = NoRequestLabel, M = NoRequestLabel> {
    pub(super) shared: Arc<Shared>,
    pub(super) classifier: C,
    pub(super) labeler: L,
    pub(super) second: M,
}

impl MetricsLayer {
    /// A layer with the generic default names and no static labels.
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::metrics::MetricsLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared::new(Config {
                requests: SharedString::const_str("requests_total"),
                duration: SharedString::const_str("request_duration_seconds"),
                in_flight: SharedString::const_str("requests_in_flight"),
                status_label: SharedString::const_str("status"),
                request_labels: [None, None],
                labels: Vec::new(),
                keep_handles: false,
            })),
            classifier: OkOrError,
            labeler: NoRequestLabel,
            second: NoRequestLabel,
        }
    }
}

impl Default for MetricsLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<C, L, M> MetricsLayer<C, L, M> {
    fn rebuild(mut self, f: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.shared.config.clone();
        f(&mut config);
        self.shared = Arc::new(Shared::new(config));
        self
    }

    /// The request counter's name (default `requests_total`).
    ///
    /// # Example
    ///
    /// ```
    /// let l = abacus_layers::metrics::MetricsLayer::new().requests_total_name("a2a_requests_total");
    /// # let _ = l;
    /// ```
    pub fn requests_total_name(self, name: impl Into<SharedString>) -> Self {
        let name = name.into();
        self.rebuild(|c| c.requests = name)
    }

    /// The duration histogram's name (default `request_duration_seconds`).
    ///
    /// # Example
    ///
    /// ```
    /// let l = abacus_layers::metrics::MetricsLayer::new()
    ///     .duration_name("a2a_request_duration_seconds");
    /// # let _ = l;
    /// ```
    pub fn duration_name(self, name: impl Into<SharedString>) -> Self {
        let name = name.into();
        self.rebuild(|c| c.duration = name)
    }

    /// The in-flight gauge's name (default `requests_in_flight`).
    ///
    /// # Example
    ///
    /// ```
    /// let l = abacus_layers::metrics::MetricsLayer::new().in_flight_name("a2a_active_requests");
    /// # let _ = l;
    /// ```
    pub fn in_flight_name(self, name: impl Into<SharedString>) -> Self {
        let name = name.into();
        self.rebuild(|c| c.in_flight = name)
    }

    /// The status label's name (default `status`).
    ///
    /// # Example
    ///
    /// ```
    /// let l = abacus_layers::metrics::MetricsLayer::new().status_label_name("outcome");
    /// # let _ = l;
    /// ```
    pub fn status_label_name(self, name: impl Into<SharedString>) -> Self {
        let name = name.into();
        self.rebuild(|c| c.status_label = name)
    }

    /// Add a static label to every metric.
    ///
    /// # Example
    ///
    /// ```
    /// let l = abacus_layers::metrics::MetricsLayer::new()
    ///     .label("agent_name", "abacus")
    ///     .label("instance", String::from("a-1"));
    /// # let _ = l;
    /// ```
    pub fn label(self, key: impl Into<SharedString>, value: impl Into<SharedString>) -> Self {
        let label = Label::new(key, value);
        self.rebuild(|c| c.labels.push(label))
    }

    /// Register each metric with the recorder once, at its first use, and
    /// keep the handle, instead of looking the recorder up on every request.
    ///
    /// Saves the four registry lookups of every request; right for a
    /// server with one global recorder (the usual case). Leave it off where
    /// a test swaps thread-local recorders under the same layer: the first
    /// one would keep the counts. Up to 64 combinations of request labels
    /// and status are kept; more are looked up per request.
    ///
    /// # Example
    ///
    /// ```
    /// let l = abacus_layers::metrics::MetricsLayer::new().keep_handles(true);
    /// # let _ = l;
    /// ```
    pub fn keep_handles(self, keep: bool) -> Self {
        self.rebuild(|c| c.keep_handles = keep)
    }

    /// Decide the status label's value (see [`ClassifyStatus`]).
    ///
    /// # Example
    ///
    /// ```
    /// let l = abacus_layers::metrics::MetricsLayer::new()
    ///     .classify_status(|r: &Result<u8, std::io::Error>| if r.is_ok() { "success" } else { "failure" });
    /// # let _ = l;
    /// ```
    pub fn classify_status<D>(self, classifier: D) -> MetricsLayer<D, L, M> {
        MetricsLayer {
            shared: self.shared,
            classifier,
            labeler: self.labeler,
            second: self.second,
        }
    }

    /// Add a label named `name` to the request counter and the duration
    /// histogram, its value taken from each request by `labeler` (see
    /// [`LabelRequest`]); say the protocol a request came in on. The
    /// in-flight gauge keeps the static labels only.
    ///
    /// # Example
    ///
    /// ```
    /// let l = abacus_layers::metrics::MetricsLayer::new()
    ///     .request_label("binding", |r: &http::Request<()>| {
    ///         if r.uri().path() == "/" { "jsonrpc" } else { "rest" }
    ///     });
    /// # let _ = l;
    /// ```
    pub fn request_label<N>(
        self,
        name: impl Into<SharedString>,
        labeler: N,
    ) -> MetricsLayer<C, N, M> {
        let name = name.into();
        let rebuilt = self.rebuild(|c| c.request_labels[0] = Some(name));
        MetricsLayer {
            shared: rebuilt.shared,
            classifier: rebuilt.classifier,
            labeler,
            second: rebuilt.second,
        }
    }

    /// Add a second per-request label, next to the one of
    /// [`request_label`](Self::request_label): say the operation next to
    /// the protocol.
    ///
    /// # Example
    ///
    /// ```
    /// let l = abacus_layers::metrics::MetricsLayer::new()
    ///     .request_label("protocol", |_: &http::Request<()>| "http")
    ///     .second_request_label("method", |r: &http::Request<()>| {
    ///         if r.method() == http::Method::GET { "read" } else { "write" }
    ///     });
    /// # let _ = l;
    /// ```
    pub fn second_request_label<N>(
        self,
        name: impl Into<SharedString>,
        labeler: N,
    ) -> MetricsLayer<C, L, N> {
        let name = name.into();
        let rebuilt = self.rebuild(|c| c.request_labels[1] = Some(name));
        MetricsLayer {
            shared: rebuilt.shared,
            classifier: rebuilt.classifier,
            labeler: rebuilt.labeler,
            second: labeler,
        }
    }
}

impl<C: Clone, L: Clone, M: Clone> Clone for MetricsLayer<C, L, M> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            classifier: self.classifier.clone(),
            labeler: self.labeler.clone(),
            second: self.second.clone(),
        }
    }
}

impl<C, L, M> fmt::Debug for MetricsLayer<C, L, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsLayer")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<S, C: Clone, L: Clone, M: Clone> Layer<S> for MetricsLayer<C, L, M> {
    type Service = Metrics<S, C, L, M>;

    fn layer(&self, inner: S) -> Self::Service {
        Metrics {
            inner,
            shared: self.shared.clone(),
            classifier: self.classifier.clone(),
            labeler: self.labeler.clone(),
            second: self.second.clone(),
        }
    }
}
