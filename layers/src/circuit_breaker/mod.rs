//! A circuit breaker: stop calling a failing service, probe, recover.
//!
//! ```text
//!            failure rate ≥ threshold (≥ minimum calls in the window)
//!            or N consecutive failures
//!   Closed ────────────────────────────────────────────────► Open
//!     ▲                                                       │  open_duration
//!     │ `half_open_successes` probes succeed                  ▼  (checked on the next call)
//!     └──────────────────────────────────────────────────  HalfOpen
//!                         a probe fails: back to Open ◄───────┘
//! ```
//!
//! * **Closed**: calls pass; outcomes are counted in a sliding time window
//!   (10 buckets) and as a run of consecutive failures.
//! * **Open**: calls are rejected at once with [`CircuitBreakerError::Open`];
//!   the inner service is neither readied nor called.
//! * **HalfOpen**: at most [`half_open_max_probes`](CircuitBreakerBuilder::half_open_max_probes)
//!   calls are in flight at a time; other calls are rejected with `Open`.
//!   After [`half_open_successes`](CircuitBreakerBuilder::half_open_successes)
//!   successful probes the circuit closes; one failed probe opens it again.
//!
//! What counts as a failure is pluggable ([`ClassifyFailure`]; by default every
//! error). A response future dropped before it resolves counts as nothing (a
//! probe's slot is given back).
//!
//! State is readable through a [`CircuitBreakerHandle`] (`state()`, for a
//! health page), changes are reported to an
//! [`on_state_change`](CircuitBreakerBuilder::on_state_change) listener and,
//! with the `metrics` feature, as a gauge (`circuit_breaker_state{breaker}`:
//! 0 closed, 1 open, 2 half-open) and a counter
//! (`circuit_breaker_transitions_total{breaker,from,to}`).
//!
//! The state lives in one `Arc` shared by the layer, its services and the
//! handle. A closed breaker admits a call with one atomic load; outcomes are
//! recorded under a short `Mutex`. Time is `tokio::time`, so tests drive every
//! transition on a paused clock.
//!
//! tower has no circuit breaker (tower PR 855 is still open); this one is
//! written here.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use abacus_layers::circuit_breaker::{CircuitBreakerError, CircuitBreakerLayer, CircuitState};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let layer = CircuitBreakerLayer::builder()
//!     .name("math-service")
//!     .consecutive_failures(2)
//!     .open_duration(Duration::from_secs(30))
//!     .on_state_change(|t| println!("breaker: {} -> {}", t.from, t.to))
//!     .build();
//! let handle = layer.handle();
//! let svc = layer.layer(service_fn(|fail: bool| async move {
//!     if fail { Err(std::io::Error::other("down")) } else { Ok("up") }
//! }));
//!
//! let _ = svc.clone().oneshot(true).await;
//! let _ = svc.clone().oneshot(true).await;
//! assert_eq!(handle.state(), CircuitState::Open);
//! assert!(matches!(svc.clone().oneshot(false).await, Err(CircuitBreakerError::Open)));
//!
//! tokio::time::advance(Duration::from_secs(30)).await;
//! assert_eq!(svc.oneshot(false).await.unwrap(), "up"); // the probe closes it
//! assert_eq!(handle.state(), CircuitState::Closed);
//! # }
//! ```

mod error;
mod future;
mod layer;
mod service;
mod state;

pub use error::CircuitBreakerError;
pub use future::ResponseFuture;
pub use layer::{CircuitBreakerBuilder, CircuitBreakerLayer};
pub use service::CircuitBreaker;
pub use state::{CircuitBreakerHandle, CircuitState, ClassifyFailure, FailOnError, Transition};
