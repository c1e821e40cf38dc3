//! A response cache tier in a remote store (Redis, memcached, ...): a reply
//! computed by one replica is a hit on the others.
//!
//! [`RemoteCacheLayer`] keys a request with a `Fn(&Req) -> Option<String>`
//! (`None`: not cacheable, the request goes straight to the inner service,
//! uncounted) and asks the store for it:
//!
//! * **hit**: the stored bytes, decoded (`Fn(Bytes) -> Option<Res>`), are the
//!   response; the inner service is not called;
//! * **miss** (no value, or one that does not decode), or **error** (any
//!   error of the store: refused, timed out, an open breaker): the inner
//!   service answers, and its response, encoded (`Fn(&Res) -> Option<Bytes>`,
//!   `None`: may not be stored), is written to the store *detached*: spawned
//!   on the Tokio runtime, never awaited by the request, at most
//!   [`max_writes_in_flight`](RemoteCacheBuilder::max_writes_in_flight) at
//!   once (beyond that a write is dropped and counted).
//!
//! The store never fails a request: its errors become misses, and the
//! layer's error type is the inner service's.
//!
//! **The store is a `tower::Service<RemoteOp, Response = Option<Bytes>>`**,
//! not a client of one database: so it goes through the layers of this
//! crate like any other remote call. Wrap it in a
//! [`TimeoutLayer`](crate::timeout::TimeoutLayer) (a slow store costs a
//! request at most that timeout) and a
//! [`CircuitBreakerLayer`](crate::circuit_breaker::CircuitBreakerLayer)
//! outside it (once the store is known down, lookups fail at once and cost
//! nothing). The timeout runs from the store's `call`; a store whose
//! `poll_ready` may wait (a concurrency limit) should shed instead.
//!
//! **Two tiers**: put an in-process [`cache`](crate::cache) outside this layer,
//! `cache ─► remote cache ─► service`. An in-process hit never asks the
//! store; a store hit fills the in-process cache through its usual miss
//! path; the in-process single flight means concurrent misses of one key
//! ask the store once.
//!
//! Lookups are counted on a [`RemoteCacheHandle`] (atomics) and, with the
//! `metrics` feature, as `remote_cache_requests_total{result="hit"|"miss"|"error"}`;
//! writes as `remote_cache_writes_total{result="done"|"error"|"dropped"}`
//! (both names configurable).
//!
//! tower has no cache; the in-process one here has no second tier.
//!
//! # Example
//!
//! A store behind a 50 ms timeout and a breaker (features `remote-cache`,
//! `timeout` and `circuit-breaker`); here a map stands in for the store:
//!
//! ```
//! # #[cfg(all(feature = "timeout", feature = "circuit-breaker"))]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use abacus_layers::circuit_breaker::CircuitBreakerLayer;
//! use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
//! use abacus_layers::timeout::TimeoutLayer;
//! use bytes::Bytes;
//! use std::collections::HashMap;
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//! use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};
//!
//! let map = Arc::new(Mutex::new(HashMap::<String, Bytes>::new()));
//! let store = {
//!     let map = map.clone();
//!     ServiceBuilder::new()
//!         .layer(CircuitBreakerLayer::builder().name("store").consecutive_failures(3).build())
//!         .layer(TimeoutLayer::new(Duration::from_millis(50)))
//!         .service(service_fn(move |op: RemoteOp| {
//!             let map = map.clone();
//!             async move {
//!                 let mut map = map.lock().unwrap();
//!                 Ok::<_, std::io::Error>(match op {
//!                     RemoteOp::Get(key) => map.get(&key).cloned(),
//!                     RemoteOp::Set { key, value, .. } => {
//!                         map.insert(key, value);
//!                         None
//!                     }
//!                 })
//!             }
//!         }))
//! };
//! let layer = RemoteCacheLayer::builder(store)
//!     .time_to_live(Duration::from_secs(3600))
//!     .build(
//!         |n: &u64| Some(format!("square:{n}")),
//!         |sq: &u64| Some(Bytes::from(sq.to_string())),
//!         |b: Bytes| std::str::from_utf8(&b).ok()?.parse().ok(),
//!     );
//! let handle = layer.handle();
//! let svc = layer.layer(service_fn(|n: u64| async move { Ok::<_, std::io::Error>(n * n) }));
//!
//! assert_eq!(svc.clone().oneshot(7).await.unwrap(), 49); // a miss: computed, then written
//! while handle.writes() == 0 {
//!     tokio::task::yield_now().await; // the write is detached
//! }
//! assert_eq!(map.lock().unwrap()["square:7"], "49");
//! assert_eq!(svc.oneshot(7).await.unwrap(), 49); // a hit
//! assert_eq!((handle.hits(), handle.misses(), handle.errors()), (1, 1, 0));
//! # }
//! # #[cfg(not(all(feature = "timeout", feature = "circuit-breaker")))]
//! # fn main() {}
//! ```

mod future;
mod layer;
mod op;
mod service;

pub use future::ResponseFuture;
pub use layer::{RemoteCacheBuilder, RemoteCacheHandle, RemoteCacheLayer};
pub use op::RemoteOp;
pub use service::RemoteCache;
