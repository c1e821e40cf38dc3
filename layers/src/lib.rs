//! Reusable [tower] middleware for servers and clients that stream.
//!
//! `abacus-layers` knows nothing of A2A: every layer is generic over the request
//! and response types. It was written for the abacus A2A server, whose responses
//! are either a unary JSON body or a stream of events, and so every layer that
//! must see the *end* of a response, not just its future resolving, works with
//! streamed responses through two small traits in [`stream`].
//!
//! | module | feature | what it does |
//! |---|---|---|
//! | [`auth`] | `auth` | authenticate HTTP requests (API keys, bearer tokens, your own scheme): the principal in the extensions, or 401 with `WWW-Authenticate` |
//! | `auth::JwtBearer` | `jwt` | bearer JWTs verified with a JWK set (the `jsonwebtoken` crate, RustCrypto backend), a swappable key-set handle |
//! | [`concurrency`] | `concurrency` | bound in-flight requests; hold the permit until a stream ends; wait or shed load |
//! | [`rate_limit`] | `rate-limit` | per-key rate limits (GCRA) with per-key quotas, `retry_after`, and a hard cap on tracked keys |
//! | [`timeout`] | `timeout` | per-request deadline with a per-request override; time-to-first-item and idle timeouts on streams |
//! | [`retry`] | `retry` | exponential backoff with full / equal / decorrelated jitter, attempt and total-delay caps, a retry budget |
//! | [`circuit_breaker`] | `circuit-breaker` | closed / open / half-open on failure rate or consecutive failures; events, metrics, a handle |
//! | [`cache`] | `cache` | a [moka] response cache with TTL, size bound and single-flight misses |
//! | [`remote_cache`] | `remote-cache` | a second cache tier in a remote store that is itself a `tower::Service` (wrap it in the timeout and breaker); detached, bounded writes |
//! | [`metrics`](mod@metrics) | `metrics` | request counter, duration histogram and in-flight gauge through the [`metrics`](https://docs.rs/metrics) facade |
//! | `metrics::prometheus` | `prometheus` | install `metrics-exporter-prometheus` without an HTTP listener; render `/metrics` yourself |
//!
//! No feature is on by default (as in tower-http): enable the layers you use,
//! or `full` for all of them. Only `cache` pulls in moka, only `remote-cache`
//! `bytes` (and no client of any store), only `prometheus`
//! `metrics-exporter-prometheus`, only `jwt` `jsonwebtoken`, and only
//! `rate-limit` dashmap. [`stream`] is always compiled.
//!
//! # Design rules
//!
//! * Every layer is a [`tower_layer::Layer`], every service is `Clone` and keeps
//!   its shared state in an `Arc` (no `Buffer`): cloning a layer or a service
//!   shares its semaphore, breaker, budget, cache or metric keys.
//! * Readiness is honoured: `poll_ready` acquires (a permit, a breaker ticket),
//!   `call` spends.
//! * Errors are typed: each layer wraps the inner error in its own enum (for
//!   example [`timeout::TimeoutError`]), so a caller can tell a layer's own
//!   failure from the inner service's with a `match`, not a downcast.
//! * Unary responses pay nothing for stream support: the guard or timeout
//!   settings are simply dropped when the response is not a stream.
//!
//! # Ordering
//!
//! A server stack is typically
//! `rate limit ─► metrics ─► concurrency limit (load_shed) ─► timeout ─► cache ─► circuit breaker ─► core`:
//! the rate limit outermost so a refused request costs nothing downstream,
//! metrics next so shed and timed-out requests are counted, the limiter
//! before the timeout so queueing is not charged to the deadline (and with
//! `load_shed(true)` nothing queues), the cache before the breaker so hits are
//! served while the breaker is open; a [`remote_cache`] tier goes right inside
//! the in-process cache (`cache ─► remote cache ─► circuit breaker`), its store
//! behind its own `circuit breaker ─► timeout`. A client stack is
//! `timeout ─► retry ─► circuit breaker ─► client`.
//!
//! # tower building blocks
//!
//! The layers are plain [`tower_layer::Layer`]s and [`tower_service::Service`]s,
//! so they compose with `tower::ServiceBuilder` and box into
//! `tower::util::BoxCloneSyncService` (every service here is `Send + Sync +
//! Clone`; response futures are `Sync` when the inner ones are). The cache
//! calls the inner service through `tower::util::Oneshot`. Each module says why
//! tower's own middleware of the same name was not enough (typed errors,
//! streams, per-request timeouts, budgets that do not over-allocate, no
//! breaker or cache in tower). Tests use `tower-test` mocks.
//!
//! # Example
//!
//! With the features `concurrency`, `metrics` and `timeout`:
//!
//! ```
//! # #[cfg(all(feature = "concurrency", feature = "metrics", feature = "timeout"))]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::Duration;
//! use abacus_layers::{
//!     concurrency::ConcurrencyLimitLayer, metrics::MetricsLayer, timeout::TimeoutLayer,
//! };
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! let svc = ServiceBuilder::new()
//!     .layer(MetricsLayer::new().label("agent_name", "demo"))
//!     .layer(ConcurrencyLimitLayer::new(64))
//!     .layer(TimeoutLayer::new(Duration::from_secs(30)))
//!     .service(service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n * 2) }));
//!
//! assert_eq!(svc.oneshot(21).await.unwrap(), 42);
//! # }
//! # #[cfg(not(all(feature = "concurrency", feature = "metrics", feature = "timeout")))]
//! # fn main() {}
//! ```
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod stream;

#[cfg(feature = "auth")]
#[cfg_attr(docsrs, doc(cfg(feature = "auth")))]
pub mod auth;
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub mod cache;
#[cfg(feature = "circuit-breaker")]
#[cfg_attr(docsrs, doc(cfg(feature = "circuit-breaker")))]
pub mod circuit_breaker;
#[cfg(feature = "concurrency")]
#[cfg_attr(docsrs, doc(cfg(feature = "concurrency")))]
pub mod concurrency;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
#[cfg(feature = "rate-limit")]
#[cfg_attr(docsrs, doc(cfg(feature = "rate-limit")))]
pub mod rate_limit;
#[cfg(feature = "remote-cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote-cache")))]
pub mod remote_cache;
#[cfg(feature = "retry")]
#[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
pub mod retry;
#[cfg(feature = "timeout")]
#[cfg_attr(docsrs, doc(cfg(feature = "timeout")))]
pub mod timeout;

mod util;

// The README's example is compiled and run as a doc test.
#[cfg(all(doctest, feature = "concurrency", feature = "timeout"))]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
