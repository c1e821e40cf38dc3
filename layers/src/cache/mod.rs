//! A response cache on [moka](https://docs.rs/moka) with single-flight misses.
//!
//! [`CacheLayer`] keys requests with a user-supplied
//! `Fn(&Req) -> Option<K>` (`None`: not cacheable, the request goes straight
//! to the inner service), and asks a [`CachePolicy`] whether a response may be
//! cached and how to store it. The store is a `moka::future::Cache`:
//! size-bounded (entries, or a [`Weigh`]t) and with a time to live
//! (default one hour).
//!
//! **Single flight**: concurrent misses for the same key run the inner service
//! once (moka's `try_get_with`); the others wait and share the value. If that
//! call fails, every waiter gets the same error ([`CacheError::Shared`], an
//! `Arc`; errors are not cached); if its response may not be cached, each
//! waiter calls the inner service with its own request.
//!
//! **Only cacheable requests coalesce.** Waiting for a response that cannot
//! be shared only delays the waiters, so:
//!
//! * the key function returns `None` for requests it knows are not
//!   cacheable: they never wait (nor are looked up or counted);
//! * a key whose response the policy refused is remembered (its hash, within
//!   the capacity and time to live): later requests for it skip the single
//!   flight, each looks up the cache and, on a miss, calls the inner service
//!   at once; the first cacheable response is stored and the key coalesces
//!   again. Errors of such requests are [`CacheError::Inner`].
//!
//! Only the first concurrent burst of a refused key waits, as nothing can
//! tell before its response that it will be refused. A hash collision only
//! costs a cacheable key its single flight until its next response.
//!
//! **Cached values must be `Clone`**, and clones should be cheap. A server
//! whose response is "unary JSON or stream" caches the *already-serialized
//! unary body* (say `bytes::Bytes`) with
//! [`build_mapped`](CacheBuilder::build_mapped), and rebuilds the response from
//! it on a hit; streamed responses are not cacheable (the policy returns
//! `None`). Responses that are themselves cheap to clone can be cached as
//! they are with [`build`](CacheBuilder::build).
//!
//! Hits and misses are counted on a [`CacheHandle`] (atomics) and, with the
//! `metrics` feature, as a counter `cache_requests_total{result="hit"|"miss"}`
//! (name configurable). A caller that waited for a concurrent miss and got its
//! value counts as a hit; requests whose key is `None` are not counted.
//!
//! `poll_ready` is always ready: a hit must not wait for the inner service's
//! readiness (an open breaker, a full limiter). On a miss the inner service is
//! cloned, readied and called with `tower::util::Oneshot` (hence `S: Clone`).
//! The response future of a cacheable request is boxed (moka's futures are
//! unnameable); uncacheable requests use `Oneshot` unboxed.
//!
//! moka keeps its own clock: a paused Tokio clock does not expire entries.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use abacus_layers::cache::CacheLayer;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let layer = CacheLayer::builder()
//!     .max_capacity(10_000)
//!     .time_to_live(Duration::from_secs(3600))
//!     .build(
//!         |req: &String| Some(req.clone()),       // cache key
//!         |res: &String| !res.is_empty(),         // may this response be cached?
//!     );
//! let handle = layer.handle();
//! let svc = layer.layer(service_fn(|req: String| async move {
//!     Ok::<_, std::io::Error>(req.to_uppercase())
//! }));
//!
//! assert_eq!(svc.clone().oneshot("pi".to_string()).await.unwrap(), "PI");
//! assert_eq!(svc.oneshot("pi".to_string()).await.unwrap(), "PI");
//! assert_eq!((handle.hits(), handle.misses()), (1, 1));
//! # }
//! ```

mod error;
mod future;
mod layer;
mod policy;
mod service;

pub use error::CacheError;
pub use future::ResponseFuture;
pub use layer::{CacheBuilder, CacheHandle, CacheLayer};
pub use policy::{CachePolicy, CloneIf, MapCached, OnePerEntry, Weigh};
pub use service::Cache;
