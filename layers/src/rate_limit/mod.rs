//! Per-key rate limits (GCRA) with bounded memory.
//!
//! [`RateLimitLayer`] gives every key (a client address, a user, an API
//! key: whatever the [`KeyFn`] says) a [`Quota`]: a steady rate and a
//! burst. A request over its key's quota is refused at once with
//! [`RateLimitError::Limited`], which says how long until the same request
//! would be admitted ([`RateLimited::retry_after`]); the inner service is
//! neither readied nor called, so a refusal costs nothing downstream.
//!
//! | setting | default | what it does |
//! |---|---|---|
//! | [`builder(quota)`](RateLimitLayer::builder) | — | the quota of every key |
//! | [`key`](RateLimitBuilder::key) | [`GlobalKey`] (one key) | the key of a request: `Fn(&Req) -> K` or a [`KeyFn`] |
//! | [`quota_for`](RateLimitBuilder::quota_for), [`quota_lookup`](RateLimitBuilder::quota_lookup) | — | a quota of its own for some keys |
//! | [`max_keys`](RateLimitBuilder::max_keys) | 100 000 | the hard cap on tracked keys |
//! | [`sweep_every`](RateLimitBuilder::sweep_every) | 10 s | how often idle keys are forgotten |
//! | `metric_name`, `label`, `keep_handles` (feature `metrics`) | `rate_limit_total{outcome}` | the counter of allowed and limited requests |
//!
//! # The algorithm
//!
//! GCRA keeps one number per key, its *theoretical arrival time* (TAT): a
//! request at `now` is admitted when `max(tat, now) - now <= (burst - 1) *
//! interval`, and then moves the TAT on by one `interval`; otherwise it
//! must wait the difference, which is `retry_after`. It is a token bucket
//! without the tokens: exact, one `u64` per key, updated under one shard
//! lock of a [`dashmap`](https://docs.rs/dashmap).
//!
//! # Bounded memory
//!
//! A key whose TAT has passed is *idle*: its state is that of a key never
//! seen, so forgetting it changes nothing. Idle keys are forgotten every
//! [`sweep_every`](RateLimitBuilder::sweep_every) (checked on requests, no
//! timer task), and whenever a new key finds the map full. If the map is
//! full of active keys (many clients at a slow rate, or an attacker with
//! many addresses), the keys closest to idle are evicted down to 7/8 of the
//! cap: each starts afresh, gaining at most the rest of one burst. No
//! request is refused, and no memory grows, because the map is full. The
//! map's allocation is shrunk after a sweep that leaves it mostly empty.
//!
//! # Time and counts
//!
//! Time is `tokio::time`, as in the other layers: tests run the limiter on
//! a paused clock. A [`RateLimitHandle`] reads the allowed, limited and
//! evicted counts and the tracked keys; with the `metrics` feature the
//! counter `rate_limit_total{outcome="allowed"|"limited"}` (name
//! configurable) counts every request.
//!
//! # Why not `governor` or `tower::limit::RateLimit`
//!
//! tower's `RateLimit` is one fixed window per service value (not `Clone`,
//! not keyed) whose `poll_ready` sleeps: it delays instead of refusing.
//! `governor`'s keyed limiter has one quota per limiter (per-key quotas
//! need a limiter per quota), and its dashmap store can only be shrunk by
//! `retain_recent`: no cap, no way to evict a key, and no way to tell
//! whether `check_key` is about to insert one. A hard cap needs a
//! `StateStore` of one's own, at which point governor adds only the GCRA
//! update written here in ten lines; its clocks are also not tokio's.
//!
//! # Example
//!
//! ```
//! use std::net::{IpAddr, SocketAddr};
//! use std::time::Duration;
//! use abacus_layers::rate_limit::{Quota, RateLimitError, RateLimitLayer};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let admin: IpAddr = "10.0.0.1".parse().unwrap();
//! let layer = RateLimitLayer::builder(Quota::per_second(10).with_burst(2))
//!     .key(|peer: &SocketAddr| peer.ip())
//!     .quota_for(admin, Quota::per_second(1000))
//!     .max_keys(10_000)
//!     .build();
//! let handle = layer.handle();
//! let svc = layer.layer(service_fn(|peer: SocketAddr| async move {
//!     Ok::<_, std::io::Error>(peer.port())
//! }));
//!
//! let client: SocketAddr = "192.0.2.7:5000".parse().unwrap();
//! assert!(svc.clone().oneshot(client).await.is_ok());
//! assert!(svc.clone().oneshot(client).await.is_ok()); // the burst of 2
//! match svc.clone().oneshot(client).await {
//!     Err(RateLimitError::Limited(limited)) => {
//!         assert_eq!(limited.retry_after, Duration::from_millis(100));
//!     }
//!     other => panic!("{other:?}"),
//! }
//!
//! // Another port of the same address shares its quota; the admin has its own.
//! assert!(svc.clone().oneshot("192.0.2.7:6000".parse().unwrap()).await.is_err());
//! assert!(svc.clone().oneshot("10.0.0.1:22".parse().unwrap()).await.is_ok());
//!
//! tokio::time::advance(Duration::from_millis(100)).await;
//! assert!(svc.oneshot(client).await.is_ok());
//! assert_eq!((handle.allowed(), handle.limited()), (4, 2));
//! # }
//! ```

mod error;
mod future;
mod layer;
mod service;
mod state;

pub use error::{RateLimitError, RateLimited};
pub use future::ResponseFuture;
pub use layer::{GlobalKey, KeyFn, RateLimitBuilder, RateLimitHandle, RateLimitLayer};
pub use service::RateLimit;
pub use state::Quota;
