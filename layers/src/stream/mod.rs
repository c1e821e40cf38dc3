//! Responses that stream: how layers see the *end* of a response.
//!
//! A tower response future resolves when the response *head* is ready. For a
//! unary response that is the end of the work; for a streamed response (an
//! SSE stream of events, an HTTP body that trickles) the work goes on until the
//! stream ends. Three layers care:
//!
//! * [`concurrency`](crate::concurrency) holds its permit until the stream ends
//!   or is dropped, so a thousand open SSE streams count as a thousand requests;
//! * [`metrics`](crate::metrics) keeps the in-flight gauge up and measures the
//!   duration until the stream ends;
//! * [`timeout`](crate::timeout) enforces a time-to-first-item and an
//!   idle-between-items timeout on the stream.
//!
//! They reach into a response through two traits:
//!
//! * [`TrackEnd`]: "keep this guard alive until you are completely delivered".
//!   The guard is an RAII value (a semaphore permit, a metrics recorder);
//!   dropping it is the signal. A unary response drops the guard at once.
//! * [`StreamTimeout`] (feature `timeout`): "enforce these
//!   [`StreamTimeouts`] on your stream". A unary response ignores them.
//!
//! and two pairs of wrappers that implement them for any stream or body:
//! [`GuardedStream`] / [`GuardedBody`] hold a guard, [`TimeoutStream`] /
//! [`TimeoutBody`] enforce the timeouts (all `pin-project-lite`, no allocation).
//!
//! # Which response types work out of the box
//!
//! * `http::Response<B>` for any body `B`: the body is wrapped, so the output
//!   type is `Response<GuardedBody<B, G>>` / `Response<TimeoutBody<B>>`. Axum
//!   users get this for free, and nothing is boxed.
//! * `Pin<Box<dyn Stream<Item = T> + Send>>` (re-boxed; for `StreamTimeout` the
//!   items must be `Result<T, E>` with `E: From<Elapsed>`).
//! * Types that never stream: `String`, `&'static str`, `Box<str>`, `Vec<T>`,
//!   `()`, `bool`, `char` and the integer and float types, plus the [`Unary`]
//!   newtype for anything else. For your own never-streaming types use
//!   [`unary_response!`](crate::unary_response).
//!
//! # Implementing it for your own response enum
//!
//! An application whose response is "unary or stream of events" wraps the
//! stream with the generic wrapper and re-boxes it (one allocation per
//! *streamed* response; unary responses pay nothing):
//!
//! ```
//! use std::pin::Pin;
//! use futures_core::Stream;
//! use abacus_layers::stream::{GuardedStream, TrackEnd};
//! # #[cfg(feature = "timeout")]
//! use abacus_layers::stream::{StreamTimeout, StreamTimeouts, TimeoutStream};
//!
//! pub enum Event { Update(String), Failed(String) }
//! pub enum AppResponse {
//!     Unary(Vec<u8>),
//!     Stream(Pin<Box<dyn Stream<Item = Event> + Send>>),
//! }
//!
//! impl TrackEnd for AppResponse {
//!     type Output<G: Send + Sync + 'static> = Self;
//!     fn track_end<G: Send + Sync + 'static>(self, guard: G) -> Self {
//!         match self {
//!             // A unary response is complete now: `guard` is dropped here.
//!             AppResponse::Unary(body) => AppResponse::Unary(body),
//!             AppResponse::Stream(s) => AppResponse::Stream(Box::pin(GuardedStream::new(s, guard))),
//!         }
//!     }
//! }
//!
//! # #[cfg(feature = "timeout")]
//! impl StreamTimeout for AppResponse {
//!     type Output = Self;
//!     fn stream_timeout(self, timeouts: StreamTimeouts) -> Self {
//!         match self {
//!             AppResponse::Stream(s) if !timeouts.is_none() => {
//!                 // On a timeout the stream yields this item, then ends.
//!                 let on_elapsed = |e: abacus_layers::timeout::Elapsed| Event::Failed(e.to_string());
//!                 AppResponse::Stream(Box::pin(TimeoutStream::new(s, timeouts, on_elapsed)))
//!             }
//!             other => other,
//!         }
//!     }
//! }
//! ```

mod guarded;
#[cfg(feature = "timeout")]
mod timeout;
mod unary;

pub use guarded::{GuardedBody, GuardedStream};
#[cfg(feature = "timeout")]
#[cfg_attr(docsrs, doc(cfg(feature = "timeout")))]
pub use timeout::{StreamTimeouts, TimeoutBody, TimeoutStream};
pub use unary::Unary;

/// A response that can keep a guard alive until it has been completely delivered.
///
/// `track_end` is called by a layer when the response future resolves. A
/// response that is already complete (unary) drops `guard` at once and
/// returns itself; a response that streams moves `guard` into its stream or
/// body (see [`GuardedStream`], [`GuardedBody`]) so that it is dropped when
/// the stream ends, fails, or is dropped by the consumer.
///
/// The output type may depend on the guard (`http::Response<B>` becomes
/// `http::Response<GuardedBody<B, G>>`, no boxing) or be `Self` (an enum
/// that re-boxes its stream). Outputs should themselves implement
/// `TrackEnd` so that layers stack.
///
/// # Example
///
/// ```
/// use abacus_layers::stream::TrackEnd;
/// use std::sync::Arc;
///
/// let guard = Arc::new(());
/// // A `String` never streams: the guard is released at once.
/// let s: String = String::from("done").track_end(guard.clone());
/// assert_eq!(s, "done");
/// assert_eq!(Arc::strong_count(&guard), 1);
/// ```
pub trait TrackEnd: Sized {
    /// The response carrying the guard.
    type Output<G: Send + Sync + 'static>;

    /// Keep `guard` alive until the response is completely delivered (its
    /// stream ended or was dropped), then drop it.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::TrackEnd;
    /// use http_body_util::Full;
    ///
    /// let res = http::Response::new(Full::new(bytes::Bytes::from("hi")));
    /// // The body is wrapped; the guard (here `()`) lives until the body is done.
    /// let res: http::Response<_> = res.track_end(());
    /// # let _ = res;
    /// ```
    fn track_end<G: Send + Sync + 'static>(self, guard: G) -> Self::Output<G>;
}

/// A response that can enforce [`StreamTimeouts`] on the stream it carries.
///
/// Called by the [`timeout`](crate::timeout) layer when the response future
/// resolved in time. A unary response returns itself; a streamed response
/// wraps its stream or body in [`TimeoutStream`] / [`TimeoutBody`]. When
/// `timeouts.is_none()` an implementation may skip the wrapping.
///
/// How a timeout shows up in the stream is the implementation's choice:
/// [`TimeoutStream`] yields one item built by a user-supplied hook from the
/// [`Elapsed`](crate::timeout::Elapsed) and then ends; [`TimeoutBody`] yields
/// an error frame ([`TimeoutError::Elapsed`](crate::timeout::TimeoutError))
/// and then ends.
///
/// # Example
///
/// ```
/// use abacus_layers::stream::{StreamTimeout, StreamTimeouts};
/// use std::time::Duration;
///
/// // Unary types ignore stream timeouts.
/// let n: u32 = 7u32.stream_timeout(StreamTimeouts::new().idle(Duration::from_secs(1)));
/// assert_eq!(n, 7);
/// ```
#[cfg(feature = "timeout")]
#[cfg_attr(docsrs, doc(cfg(feature = "timeout")))]
pub trait StreamTimeout: Sized {
    /// The response with the timeouts applied.
    type Output;

    /// Apply `timeouts` to the stream this response carries, if any.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::{StreamTimeout, StreamTimeouts};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let res = http::Response::new(http_body_util::Empty::<bytes::Bytes>::new());
    /// let res = res.stream_timeout(StreamTimeouts::new().idle(Duration::from_secs(15)));
    /// # let _ = res;
    /// # }
    /// ```
    fn stream_timeout(self, timeouts: StreamTimeouts) -> Self::Output;
}

impl<B> TrackEnd for http::Response<B> {
    type Output<G: Send + Sync + 'static> = http::Response<GuardedBody<B, G>>;

    #[inline]
    fn track_end<G: Send + Sync + 'static>(self, guard: G) -> Self::Output<G> {
        self.map(|body| GuardedBody::new(body, guard))
    }
}

#[cfg(feature = "timeout")]
impl<B> StreamTimeout for http::Response<B> {
    type Output = http::Response<TimeoutBody<B>>;

    #[inline]
    fn stream_timeout(self, timeouts: StreamTimeouts) -> Self::Output {
        self.map(|body| TimeoutBody::new(body, timeouts))
    }
}

impl<T: 'static> TrackEnd for std::pin::Pin<Box<dyn futures_core::Stream<Item = T> + Send>> {
    type Output<G: Send + Sync + 'static> = Self;

    fn track_end<G: Send + Sync + 'static>(self, guard: G) -> Self {
        Box::pin(GuardedStream::new(self, guard))
    }
}

#[cfg(feature = "timeout")]
impl<T, E> StreamTimeout
    for std::pin::Pin<Box<dyn futures_core::Stream<Item = Result<T, E>> + Send>>
where
    T: 'static,
    E: From<crate::timeout::Elapsed> + 'static,
{
    type Output = Self;

    fn stream_timeout(self, timeouts: StreamTimeouts) -> Self {
        if timeouts.is_none() {
            return self;
        }
        Box::pin(TimeoutStream::new(self, timeouts, |e| Err(E::from(e))))
    }
}
