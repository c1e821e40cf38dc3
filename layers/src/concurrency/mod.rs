//! Bound the number of in-flight requests, counting streams until they end.
//!
//! [`ConcurrencyLimitLayer`] owns a [`tokio::sync::Semaphore`] in an `Arc`:
//! cloning the layer or any service it built shares the limit, and
//! [`ConcurrencyLimitLayer::handle`] gives a [`ConcurrencyHandle`] that reads
//! the in-flight count and the free permits (for a health page).
//!
//! * `poll_ready` acquires a permit (without allocating when one is free),
//!   `call` spends it, like `tower::limit::ConcurrencyLimit`.
//! * The permit travels with the response through
//!   [`TrackEnd`](crate::stream::TrackEnd): it is released when a unary
//!   response resolves, and when a streamed response **ends or is dropped**.
//!   (tower's `ConcurrencyLimit` releases at the response head, so SSE streams
//!   escape it.)
//! * With [`load_shed(true)`](ConcurrencyLimitLayer::load_shed) a full limiter
//!   answers at once with [`ConcurrencyLimitError::Overloaded`] instead of
//!   waiting (hyper drives `poll_ready` through `Oneshot` per request, so a
//!   waiting limiter queues requests silently). `poll_ready` then stays
//!   ready and `call` fails fast, as `tower::load_shed` does, without calling
//!   the inner service.
//! * [`on_queue_wait`](ConcurrencyLimitLayer::on_queue_wait) observes how long
//!   each request waited for its permit (zero when one was free); with the
//!   `metrics` feature, `queue_wait_histogram(name)` records it as a
//!   histogram in seconds.
//!
//! # Why not `tower::limit::ConcurrencyLimit`
//!
//! It releases its permit when the response future resolves, cannot shed, and
//! its layer makes a new semaphore per `layer()` call. The semaphore is the
//! same (tokio's); the rest is written here.
//!
//! # Example
//!
//! ```
//! use abacus_layers::concurrency::{ConcurrencyLimitError, ConcurrencyLimitLayer};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let layer = ConcurrencyLimitLayer::new(1).load_shed(true);
//! let handle = layer.handle();
//! let svc = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
//!
//! // Hold the only permit by readying one clone without calling it.
//! let mut first = svc.clone();
//! first.ready().await.unwrap();
//! assert_eq!(handle.in_flight(), 1);
//!
//! // The next request is shed.
//! let err = svc.clone().oneshot(2).await.unwrap_err();
//! assert!(matches!(err, ConcurrencyLimitError::Overloaded));
//!
//! assert_eq!(first.call(1).await.unwrap(), 1);
//! assert_eq!(handle.in_flight(), 0);
//! # }
//! ```

mod error;
mod future;
mod layer;
mod service;

pub use error::ConcurrencyLimitError;
pub use future::{Permit, ResponseFuture};
pub use layer::{ConcurrencyHandle, ConcurrencyLimitLayer};
pub use service::ConcurrencyLimit;
