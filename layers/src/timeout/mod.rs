//! Deadlines for requests and for the streams they return.
//!
//! [`TimeoutLayer`] enforces
//!
//! * a **request** deadline: the response future must resolve within it
//!   (for a streamed response, that is the response head). A default, and a
//!   per-request override through a user-supplied
//!   `Fn(&Req) -> Option<Duration>` ([`TimeoutLayer::per_request_timeout`]);
//! * a **first-item** deadline for streams, measured from the request's start;
//! * an **idle** timeout between two items of a stream.
//!
//! Stream timeouts are applied through [`StreamTimeout`](crate::stream::StreamTimeout),
//! see the [`stream`](crate::stream) module: an `http::Response` body yields a
//! [`TimeoutError::Elapsed`] error frame; an application's own stream yields
//! the item its hook builds from the [`Elapsed`].
//!
//! Errors are typed: [`TimeoutError::Elapsed`] or [`TimeoutError::Inner`],
//! and [`Elapsed::kind`] says which deadline passed.
//!
//! # Why not `tower::timeout`
//!
//! tower's `Timeout` boxes errors (`BoxError`), has no per-request override
//! (tower issue 798) and does not look at streams. The request deadline here is
//! the same idea (a `tokio::time::Sleep` pinned in the response future, no
//! allocation), with a typed error and stream support.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use abacus_layers::timeout::{TimeoutError, TimeoutKind, TimeoutLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let svc = ServiceBuilder::new()
//!     .layer(
//!         TimeoutLayer::new(Duration::from_secs(1))
//!             // "slow" requests get 10 s instead.
//!             .per_request_timeout(|req: &&str| (*req == "slow").then(|| Duration::from_secs(10))),
//!     )
//!     .service(service_fn(|_req: &str| async {
//!         tokio::time::sleep(Duration::from_secs(5)).await;
//!         Ok::<_, std::io::Error>("done")
//!     }));
//!
//! match svc.clone().oneshot("fast").await {
//!     Err(TimeoutError::Elapsed(e)) => assert_eq!(e.kind(), TimeoutKind::Request),
//!     _ => unreachable!(),
//! }
//! assert_eq!(svc.oneshot("slow").await.unwrap(), "done");
//! # }
//! ```

mod error;
mod future;
mod layer;
mod service;

pub use error::{Elapsed, TimeoutError, TimeoutKind};
pub use future::ResponseFuture;
pub use layer::{NoOverride, RequestTimeout, TimeoutLayer};
pub use service::Timeout;
