use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::timeout::{Elapsed, TimeoutError, TimeoutKind};

/// The timeouts a streamed response must honour.
///
/// * **first item**: an absolute deadline for the first item (or body frame).
///   The [`TimeoutLayer`](crate::timeout::TimeoutLayer) sets it to the
///   request's start plus its `first_item_timeout`, so it measures the time
///   the client waits for the first event.
/// * **idle**: the longest gap allowed between two items once the first has
///   arrived (and before the first, if no first-item deadline is set; then the
///   gap is counted from the moment the wrapper was created).
///
/// `StreamTimeouts` is `Copy` and cheap; [`is_none`](Self::is_none) tells an
/// implementation of [`StreamTimeout`](super::StreamTimeout) that it may skip
/// wrapping.
///
/// # Example
///
/// ```
/// use abacus_layers::stream::StreamTimeouts;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let t = StreamTimeouts::new()
///     .first_item(Duration::from_secs(5))
///     .idle(Duration::from_secs(30));
/// assert!(!t.is_none());
/// assert_eq!(t.idle_timeout(), Some(Duration::from_secs(30)));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamTimeouts {
    first_item: Option<(Instant, Duration)>,
    idle: Option<Duration>,
}

impl StreamTimeouts {
    /// No timeouts.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(abacus_layers::stream::StreamTimeouts::new().is_none());
    /// ```
    pub const fn new() -> Self {
        Self {
            first_item: None,
            idle: None,
        }
    }

    /// Require the first item within `within` from now.
    ///
    /// Reads the clock ([`tokio::time::Instant::now`]).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::StreamTimeouts;
    /// use std::time::Duration;
    /// let t = StreamTimeouts::new().first_item(Duration::from_secs(5));
    /// assert!(t.first_item_deadline().is_some());
    /// ```
    pub fn first_item(self, within: Duration) -> Self {
        self.first_item_after(Instant::now(), within)
    }

    /// Require the first item within `within` from `start`.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::StreamTimeouts;
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    ///
    /// let start = Instant::now();
    /// let t = StreamTimeouts::new().first_item_after(start, Duration::from_secs(5));
    /// assert_eq!(t.first_item_deadline(), Some(start + Duration::from_secs(5)));
    /// ```
    pub fn first_item_after(mut self, start: Instant, within: Duration) -> Self {
        self.first_item = Some((start + within, within));
        self
    }

    /// Allow at most `idle` between two items.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::StreamTimeouts;
    /// use std::time::Duration;
    /// let t = StreamTimeouts::new().idle(Duration::from_secs(15));
    /// assert_eq!(t.idle_timeout(), Some(Duration::from_secs(15)));
    /// ```
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// `true` when no timeout is set: wrapping would be a no-op.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::StreamTimeouts;
    /// assert!(StreamTimeouts::default().is_none());
    /// ```
    pub fn is_none(&self) -> bool {
        self.first_item.is_none() && self.idle.is_none()
    }

    /// The deadline for the first item, if any.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::StreamTimeouts;
    /// assert_eq!(StreamTimeouts::new().first_item_deadline(), None);
    /// ```
    pub fn first_item_deadline(&self) -> Option<Instant> {
        self.first_item.map(|(deadline, _)| deadline)
    }

    /// The idle timeout, if any.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::StreamTimeouts;
    /// assert_eq!(StreamTimeouts::new().idle_timeout(), None);
    /// ```
    pub fn idle_timeout(&self) -> Option<std::time::Duration> {
        self.idle
    }
}

/// Timer state shared by [`TimeoutStream`] and [`TimeoutBody`].
#[derive(Debug)]
struct Clock {
    /// The current deadline: first-item deadline, or last item + idle.
    deadline: Option<Instant>,
    /// The duration reported in the `Elapsed` error for the current deadline.
    after: Duration,
    kind: TimeoutKind,
    idle: Option<Duration>,
    fired: bool,
}

impl Clock {
    fn new(t: StreamTimeouts) -> Self {
        match (t.first_item, t.idle) {
            (Some((deadline, after)), idle) => Clock {
                deadline: Some(deadline),
                after,
                kind: TimeoutKind::FirstItem,
                idle,
                fired: false,
            },
            (None, Some(idle)) => Clock {
                deadline: Some(Instant::now() + idle),
                after: idle,
                kind: TimeoutKind::Idle,
                idle: Some(idle),
                fired: false,
            },
            (None, None) => Clock {
                deadline: None,
                after: Duration::ZERO,
                kind: TimeoutKind::Idle,
                idle: None,
                fired: false,
            },
        }
    }

    /// An item arrived: the next deadline is now + idle.
    #[inline]
    fn on_item(&mut self) {
        self.kind = TimeoutKind::Idle;
        match self.idle {
            Some(idle) => {
                self.deadline = Some(Instant::now() + idle);
                self.after = idle;
            }
            None => self.deadline = None,
        }
    }

    /// The inner stream is pending: arm (lazily) and poll the timer.
    fn poll_elapsed(
        &mut self,
        mut sleep: Pin<&mut Option<Sleep>>,
        cx: &mut Context<'_>,
    ) -> Poll<Elapsed> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        match sleep.as_mut().as_pin_mut() {
            Some(s) => {
                if s.deadline() != deadline {
                    s.reset(deadline);
                }
            }
            None => sleep.set(Some(tokio::time::sleep_until(deadline))),
        }
        let s = sleep.as_pin_mut().expect("timer armed above");
        match s.poll(cx) {
            Poll::Ready(()) => {
                self.fired = true;
                self.deadline = None;
                Poll::Ready(Elapsed::new(self.kind, self.after))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

pin_project! {
    /// A [`Stream`] that enforces [`StreamTimeouts`].
    ///
    /// When a timeout fires, the stream yields one last item built by
    /// `on_elapsed` from the [`Elapsed`] error, and then ends (the inner
    /// stream is no longer polled). A `TimeoutStream` with
    /// [`StreamTimeouts::new()`] never times out.
    ///
    /// The timer is created lazily, the first time the inner stream is
    /// pending, and re-armed (not re-created) after each item.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::{stream::{StreamTimeouts, TimeoutStream}, timeout::Elapsed};
    /// use futures_util::{stream, StreamExt};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // A stream that never yields: the first-item timeout fires.
    /// let t = StreamTimeouts::new().first_item(Duration::from_secs(1));
    /// let s = TimeoutStream::new(stream::pending::<Result<u8, Elapsed>>(), t, Err);
    /// let items: Vec<_> = s.collect().await;
    /// assert!(matches!(items.as_slice(), [Err(_)]));
    /// # }
    /// ```
    pub struct TimeoutStream<S, F> {
        #[pin]
        inner: S,
        #[pin]
        sleep: Option<Sleep>,
        clock: Clock,
        on_elapsed: Option<F>,
    }
}

impl<S, F> TimeoutStream<S, F> {
    /// Wrap `inner`; on a timeout yield `on_elapsed(elapsed)` and end.
    ///
    /// The clock is read now if only an idle timeout is set (the first gap is
    /// counted from here).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::{StreamTimeouts, TimeoutStream};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t = StreamTimeouts::new().idle(Duration::from_secs(30));
    /// let s = TimeoutStream::new(futures_util::stream::iter(["a"]), t, |_e| "timed out");
    /// # let _ = s;
    /// # }
    /// ```
    pub fn new(inner: S, timeouts: StreamTimeouts, on_elapsed: F) -> Self
    where
        S: Stream,
        F: FnOnce(Elapsed) -> S::Item,
    {
        Self {
            inner,
            sleep: None,
            clock: Clock::new(timeouts),
            on_elapsed: Some(on_elapsed),
        }
    }

    /// A reference to the inner stream.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::{StreamTimeouts, TimeoutStream};
    /// let s = TimeoutStream::new(futures_util::stream::iter([1]), StreamTimeouts::new(), |_| 0);
    /// let _inner = s.get_ref();
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, F> std::fmt::Debug for TimeoutStream<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeoutStream")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl<S, F> Stream for TimeoutStream<S, F>
where
    S: Stream,
    F: FnOnce(Elapsed) -> S::Item,
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        if this.clock.fired {
            return Poll::Ready(None);
        }
        match this.inner.poll_next(cx) {
            Poll::Ready(Some(item)) => {
                this.clock.on_item();
                return Poll::Ready(Some(item));
            }
            Poll::Ready(None) => {
                this.clock.deadline = None;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        match this.clock.poll_elapsed(this.sleep, cx) {
            Poll::Ready(elapsed) => {
                let on_elapsed = this.on_elapsed.take().expect("fires once");
                Poll::Ready(Some(on_elapsed(elapsed)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.clock.fired {
            return (0, Some(0));
        }
        // A timeout ends the stream with one item of its own, so the inner
        // stream's promise of one more item still holds, not of more.
        let (lower, upper) = self.inner.size_hint();
        (lower.min(1), upper.and_then(|u| u.checked_add(1)))
    }
}

pin_project! {
    /// An [`http_body::Body`] that enforces [`StreamTimeouts`] between frames.
    ///
    /// On a timeout the body yields one error frame,
    /// [`TimeoutError::Elapsed`], and then ends. Errors of the inner body are
    /// passed on as [`TimeoutError::Inner`]. Bodies that are ready at once
    /// (`Full`, `Empty`) never arm a timer.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::{StreamTimeouts, TimeoutBody};
    /// use http_body_util::{BodyExt, Full};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t = StreamTimeouts::new().idle(Duration::from_secs(1));
    /// let body = TimeoutBody::new(Full::new(bytes::Bytes::from("ok")), t);
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), "ok");
    /// # }
    /// ```
    pub struct TimeoutBody<B> {
        #[pin]
        inner: B,
        #[pin]
        sleep: Option<Sleep>,
        clock: Clock,
    }
}

impl<B> TimeoutBody<B> {
    /// Wrap `inner` with `timeouts`.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::{StreamTimeouts, TimeoutBody};
    /// let body = TimeoutBody::new(http_body_util::Empty::<bytes::Bytes>::new(), StreamTimeouts::new());
    /// # let _ = body;
    /// ```
    pub fn new(inner: B, timeouts: StreamTimeouts) -> Self {
        Self {
            inner,
            sleep: None,
            clock: Clock::new(timeouts),
        }
    }

    /// A reference to the inner body.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::{StreamTimeouts, TimeoutBody};
    /// let body = TimeoutBody::new(http_body_util::Empty::<bytes::Bytes>::new(), StreamTimeouts::new());
    /// let _inner = body.get_ref();
    /// ```
    pub fn get_ref(&self) -> &B {
        &self.inner
    }
}

impl<B> std::fmt::Debug for TimeoutBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeoutBody")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for TimeoutBody<B> {
    type Data = B::Data;
    type Error = TimeoutError<B::Error>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, Self::Error>>> {
        let this = self.project();
        if this.clock.fired {
            return Poll::Ready(None);
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.clock.on_item();
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(e))) => {
                this.clock.deadline = None;
                return Poll::Ready(Some(Err(TimeoutError::Inner(e))));
            }
            Poll::Ready(None) => {
                this.clock.deadline = None;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        this.clock
            .poll_elapsed(this.sleep, cx)
            .map(|elapsed| Some(Err(TimeoutError::Elapsed(elapsed))))
    }

    fn is_end_stream(&self) -> bool {
        self.clock.fired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.clock.fired {
            return SizeHint::with_exact(0);
        }
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_hint_promises_one_item_at_most_of_the_inner_promise() {
        let inner = futures_util::stream::iter([1, 2, 3]);
        let s = TimeoutStream::new(inner, StreamTimeouts::new(), |_| 0);
        // Three promised inside; a timeout would end the stream after one.
        assert_eq!(s.size_hint(), (1, Some(4)));
        let empty = TimeoutStream::new(
            futures_util::stream::empty::<u8>(),
            StreamTimeouts::new(),
            |_| 0,
        );
        assert_eq!(empty.size_hint(), (0, Some(1)));
    }
}
