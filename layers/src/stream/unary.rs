use super::TrackEnd;
#[cfg(feature = "timeout")]
use super::{StreamTimeout, StreamTimeouts};

/// A response that never streams.
///
/// Wrap any type in `Unary` to use it as a response with the stream-aware
/// layers: guards are dropped and stream timeouts ignored as soon as the
/// response future resolves. Common std types (`String`, `Vec<T>`, integers,
/// ...) implement the traits directly; for your own types you can also use
/// [`unary_response!`](crate::unary_response).
///
/// # Example
///
/// ```
/// use abacus_layers::stream::{TrackEnd, Unary};
///
/// #[derive(Debug, PartialEq)]
/// struct Reply { answer: u64 }
///
/// let r = Unary(Reply { answer: 42 }).track_end(());
/// assert_eq!(r.into_inner(), Reply { answer: 42 });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Unary<T>(pub T);

impl<T> Unary<T> {
    /// Unwrap the response.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(abacus_layers::stream::Unary(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Unary<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Unary<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> From<T> for Unary<T> {
    fn from(value: T) -> Self {
        Unary(value)
    }
}

impl<T> TrackEnd for Unary<T> {
    type Output<G: Send + Sync + 'static> = Self;

    #[inline]
    fn track_end<G: Send + Sync + 'static>(self, _guard: G) -> Self {
        self
    }
}

#[cfg(feature = "timeout")]
impl<T> StreamTimeout for Unary<T> {
    type Output = Self;

    #[inline]
    fn stream_timeout(self, _timeouts: StreamTimeouts) -> Self {
        self
    }
}

/// Implement the stream traits for response types that never stream.
///
/// Expands to [`TrackEnd`](crate::stream::TrackEnd) (the guard is dropped at
/// once) and, with the `timeout` feature,
/// [`StreamTimeout`](crate::stream::StreamTimeout) (timeouts are ignored)
/// with `Output = Self`. Generic types need a hand-written impl (three lines
/// each, see the [`stream`](crate::stream) module).
///
/// # Example
///
/// ```
/// use abacus_layers::stream::TrackEnd;
///
/// struct Pong;
/// struct Answer(u64);
/// abacus_layers::unary_response!(Pong, Answer);
///
/// let Answer(n) = Answer(42).track_end(());
/// assert_eq!(n, 42);
/// ```
#[cfg(feature = "timeout")]
#[macro_export]
macro_rules! unary_response {
    ($($ty:ty),+ $(,)?) => {
        $(
            impl $crate::stream::TrackEnd for $ty {
                type Output<G: ::core::marker::Send + ::core::marker::Sync + 'static> = Self;
                #[inline]
                fn track_end<G: ::core::marker::Send + ::core::marker::Sync + 'static>(self, _guard: G) -> Self {
                    self
                }
            }
            impl $crate::stream::StreamTimeout for $ty {
                type Output = Self;
                #[inline]
                fn stream_timeout(self, _timeouts: $crate::stream::StreamTimeouts) -> Self {
                    self
                }
            }
        )+
    };
}

/// Implement the stream traits for response types that never stream.
///
/// Expands to [`TrackEnd`](crate::stream::TrackEnd) (the guard is dropped at
/// once) with `Output = Self`.
///
/// # Example
///
/// ```
/// use abacus_layers::stream::TrackEnd;
///
/// struct Pong;
/// abacus_layers::unary_response!(Pong);
/// let _pong = Pong.track_end(());
/// ```
#[cfg(not(feature = "timeout"))]
#[macro_export]
macro_rules! unary_response {
    ($($ty:ty),+ $(,)?) => {
        $(
            impl $crate::stream::TrackEnd for $ty {
                type Output<G: ::core::marker::Send + ::core::marker::Sync + 'static> = Self;
                #[inline]
                fn track_end<G: ::core::marker::Send + ::core::marker::Sync + 'static>(self, _guard: G) -> Self {
                    self
                }
            }
        )+
    };
}

crate::unary_response!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    &'static str,
    Box<str>,
);

impl<T> TrackEnd for Vec<T> {
    type Output<G: Send + Sync + 'static> = Self;

    #[inline]
    fn track_end<G: Send + Sync + 'static>(self, _guard: G) -> Self {
        self
    }
}

#[cfg(feature = "timeout")]
impl<T> StreamTimeout for Vec<T> {
    type Output = Self;

    #[inline]
    fn stream_timeout(self, _timeouts: StreamTimeouts) -> Self {
        self
    }
}
