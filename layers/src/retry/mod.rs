//! Retry with jittered exponential backoff, caps and a retry budget.
//!
//! [`RetryLayer`] re-sends a request (it must be `Clone`; parse a body that
//! cannot be cloned into a `Clone` request at the edge) when a user-supplied
//! predicate on `&Result<Res, Err>` says so ([`RetryPredicate`]; by default:
//! any error). It gives up when
//!
//! * [`max_attempts`](RetryLayer::max_attempts) is reached (the first call
//!   counts as an attempt);
//! * the next delay would take the total time spent sleeping past
//!   [`max_total_delay`](RetryLayer::max_total_delay);
//! * the [`RetryBudget`] is empty: retries are allowed only up to a
//!   percentage of the original requests over a sliding window, plus a
//!   minimum number per second, so retries cannot amplify an outage.
//!
//! A result may name its own wait ([`RetryLayer::retry_after`], e.g. an
//! HTTP `Retry-After`): that retry comes after the wait instead of the
//! backoff's delay, and still within `max_total_delay`.
//!
//! Delays follow a [`Backoff`]: exponential with no, full, equal or
//! decorrelated [`Jitter`]. The random stream is seedable
//! ([`seed`](RetryLayer::seed)) for deterministic tests; it is a lock-free
//! SplitMix64 over an atomic counter, shared by the clones of a layer.
//!
//! When retrying stops on an error, the error says why:
//! [`RetryError::Exhausted`] carries the last error, the number of attempts and
//! the [`GiveUp`] reason; errors the predicate does not retry are
//! [`RetryError::Inner`]. A response the predicate wanted to retry (say an
//! HTTP 503) is returned as is when retrying stops.
//!
//! # Why not `tower::retry`
//!
//! tower's `Retry` + `Policy` is close, but its `TpsBudget` over-allocates
//! when `retry_percent < 1.0` (tower issue 857), its backoff has no full or
//! decorrelated jitter, and its errors are the inner service's (no reason for
//! giving up). The shape is the same: the response future owns a clone of the
//! service and of the request, sleeps with `tokio::time::sleep`, and drives
//! `poll_ready` again before each new attempt.
//!
//! # Example
//!
//! ```
//! use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
//! use std::time::Duration;
//! use abacus_layers::retry::{Backoff, Jitter, RetryBudget, RetryLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let calls = Arc::new(AtomicU32::new(0));
//! let c = calls.clone();
//! let svc = ServiceBuilder::new()
//!     .layer(
//!         RetryLayer::new()
//!             .max_attempts(4)
//!             .backoff(Backoff::exponential(Duration::from_millis(50), Duration::from_secs(2)).jitter(Jitter::Full))
//!             .max_total_delay(Duration::from_secs(5))
//!             .budget(RetryBudget::new(Duration::from_secs(10), 5, 0.2))
//!             .retry_if(|r: &Result<u32, std::io::Error>| r.is_err()),
//!     )
//!     .service(service_fn(move |x: u32| {
//!         let n = c.fetch_add(1, Ordering::SeqCst);
//!         async move {
//!             if n < 2 { Err(std::io::Error::other("flaky")) } else { Ok(x) }
//!         }
//!     }));
//!
//! assert_eq!(svc.oneshot(7).await.unwrap(), 7);
//! assert_eq!(calls.load(Ordering::SeqCst), 3);
//! # }
//! ```

mod backoff;
mod budget;
mod error;
mod future;
mod layer;
mod service;

pub use backoff::{Backoff, Jitter};
pub use budget::RetryBudget;
pub use error::{GiveUp, RetryError};
pub use future::ResponseFuture;
pub use layer::{RetryLayer, RetryOnError, RetryPredicate, WithRetryAfter};
pub use service::Retry;
