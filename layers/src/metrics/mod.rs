//! Request metrics through the [`metrics`] facade.
//!
//! [`MetricsLayer`] records, per request:
//!
//! | metric (default name) | kind | labels |
//! |---|---|---|
//! | `requests_total` | counter | static labels + request label + `status` |
//! | `request_duration_seconds` | histogram (seconds) | static labels + request label + `status` |
//! | `requests_in_flight` | gauge | static labels |
//!
//! Names, the status label's name and the static labels (say
//! `agent_name="abacus"`) are configurable, and so is one label whose value
//! is read from each request ([`LabelRequest`], say the protocol it came in
//! on; none by default); the status value comes from a
//! user-supplied classifier on `&Result<Res, Err>` ([`ClassifyStatus`]; by
//! default `"ok"` / `"error"`). A response future dropped before it resolves
//! is recorded with status `"cancelled"`.
//!
//! For streamed responses the request is *in flight until the stream ends*:
//! a [`MetricsGuard`] travels with the response through
//! [`TrackEnd`](crate::stream::TrackEnd) and records the duration and the
//! gauge decrement when the stream ends or is dropped. The status is decided
//! when the response head is ready.
//!
//! Metric keys are built once per status value and reused, so recording
//! allocates nothing on the hot path. By default the recorder is looked up
//! per request (`metrics::with_recorder`), so a recorder installed after the
//! layer was built, or a thread-local one in tests, is used;
//! [`MetricsLayer::keep_handles`] instead registers each metric once and
//! keeps its handle, which saves four registry lookups per request.
//!
//! tower has no metrics middleware, and tower-http's `trace` records spans,
//! not metrics (and is not a dependency here), so this layer is written here.
//! Unlike the other layers it adds no error: the inner error passes through.
//!
//! The `prometheus` feature adds [`prometheus`], which installs
//! `metrics-exporter-prometheus` as the global recorder without an HTTP
//! listener and returns the handle whose `render()` serves a `/metrics` route.
//!
//! # Example
//!
//! ```
//! use abacus_layers::metrics::MetricsLayer;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let layer = MetricsLayer::new()
//!     .requests_total_name("a2a_requests_total")
//!     .duration_name("a2a_request_duration_seconds")
//!     .in_flight_name("a2a_active_requests")
//!     .label("agent_name", "abacus")
//!     .classify_status(|r: &Result<u32, std::io::Error>| match r {
//!         Ok(_) => "ok",
//!         Err(e) if e.kind() == std::io::ErrorKind::TimedOut => "timeout",
//!         Err(_) => "error",
//!     });
//! let svc = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
//! assert_eq!(svc.oneshot(1).await.unwrap(), 1);
//! # }
//! ```

mod future;
mod layer;
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub mod prometheus;
mod service;

pub use future::{MetricsGuard, ResponseFuture};
pub use layer::{ClassifyStatus, LabelRequest, MetricsLayer, NoRequestLabel, OkOrError};
pub use service::Metrics;
