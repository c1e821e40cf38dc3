/// Decides whether a response may be cached, and how it is stored.
///
/// `V` is the cached value (cloned out of the cache on every hit). Built-in
/// policies: [`CloneIf`] (cache the response itself, if a predicate allows)
/// and [`MapCached`] (store a derived value, e.g. a serialized body).
///
/// # Example
///
/// ```
/// use abacus_layers::cache::CachePolicy;
/// use std::{pin::Pin, sync::Arc};
///
/// enum Response { Unary(Arc<str>), Stream(Pin<Box<dyn futures_core::Stream<Item = String> + Send>>) }
///
/// #[derive(Clone)]
/// struct UnaryOnly;
/// impl CachePolicy<Response, Arc<str>> for UnaryOnly {
///     fn to_cached(&self, res: &Response) -> Option<Arc<str>> {
///         match res { Response::Unary(body) => Some(body.clone()), Response::Stream(_) => None }
///     }
///     fn to_response(&self, body: Arc<str>) -> Response {
///         Response::Unary(body)
///     }
/// }
/// ```
pub trait CachePolicy<Res, V> {
    /// The value to cache for `res`, or `None` if it may not be cached.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::cache::{CachePolicy, CloneIf};
    /// let p = CloneIf(|s: &String| s.len() < 1024);
    /// assert_eq!(p.to_cached(&"ok".to_string()), Some("ok".to_string()));
    /// ```
    fn to_cached(&self, res: &Res) -> Option<V>;

    /// Rebuild a response from a cached value.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::cache::{CachePolicy, CloneIf};
    /// let p = CloneIf(|_: &u32| true);
    /// assert_eq!(p.to_response(5), 5);
    /// ```
    fn to_response(&self, value: V) -> Res;
}

/// Cache the response itself (it must be `Clone`) when the predicate returns
/// `true`.
///
/// # Example
///
/// ```
/// use abacus_layers::cache::{CachePolicy, CloneIf};
/// let p = CloneIf(|res: &Vec<u8>| !res.is_empty());
/// assert_eq!(p.to_cached(&vec![]), None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneIf<F>(pub F);

impl<Res, F> CachePolicy<Res, Res> for CloneIf<F>
where
    Res: Clone,
    F: Fn(&Res) -> bool,
{
    #[inline]
    fn to_cached(&self, res: &Res) -> Option<Res> {
        (self.0)(res).then(|| res.clone())
    }

    #[inline]
    fn to_response(&self, value: Res) -> Res {
        value
    }
}

/// Cache a value derived from the response: `to_cached` returns `None` for
/// responses that may not be cached, `to_response` rebuilds a response.
///
/// # Example
///
/// ```
/// use abacus_layers::cache::{CachePolicy, MapCached};
///
/// // Cache the body of successful responses only.
/// let p = MapCached {
///     to_cached: |res: &Result<String, u16>| res.as_ref().ok().cloned(),
///     to_response: |body: String| Ok::<_, u16>(body),
/// };
/// assert_eq!(p.to_cached(&Err(503)), None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MapCached<T, F> {
    /// `Fn(&Res) -> Option<V>`
    pub to_cached: T,
    /// `Fn(V) -> Res`
    pub to_response: F,
}

impl<Res, V, T, F> CachePolicy<Res, V> for MapCached<T, F>
where
    T: Fn(&Res) -> Option<V>,
    F: Fn(V) -> Res,
{
    #[inline]
    fn to_cached(&self, res: &Res) -> Option<V> {
        (self.to_cached)(res)
    }

    #[inline]
    fn to_response(&self, value: V) -> Res {
        (self.to_response)(value)
    }
}

/// Weighs cache entries against [`max_capacity`](super::CacheBuilder::max_capacity).
///
/// Implemented for every `Fn(&K, &V) -> u32 + Send + Sync + 'static`; the
/// default, [`OnePerEntry`], makes the capacity a number of entries.
///
/// # Example
///
/// ```
/// use abacus_layers::cache::Weigh;
/// let by_len = |_k: &String, v: &Vec<u8>| v.len() as u32;
/// assert_eq!(by_len.weigh(&"k".to_string(), &vec![0; 10]), 10);
/// ```
pub trait Weigh<K, V>: Send + Sync + 'static {
    /// The weight of an entry.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::cache::{OnePerEntry, Weigh};
    /// assert_eq!(Weigh::<u8, u8>::weigh(&OnePerEntry, &1, &2), 1);
    /// ```
    fn weigh(&self, key: &K, value: &V) -> u32;
}

impl<K, V, F> Weigh<K, V> for F
where
    F: Fn(&K, &V) -> u32 + Send + Sync + 'static,
{
    #[inline]
    fn weigh(&self, key: &K, value: &V) -> u32 {
        self(key, value)
    }
}

/// Every entry weighs 1: the capacity is a number of entries.
///
/// # Example
///
/// ```
/// use abacus_layers::cache::{OnePerEntry, Weigh};
/// assert_eq!(Weigh::<&str, Vec<u8>>::weigh(&OnePerEntry, &"k", &vec![0; 100]), 1);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct OnePerEntry;

impl<K, V> Weigh<K, V> for OnePerEntry {
    #[inline]
    fn weigh(&self, _key: &K, _value: &V) -> u32 {
        1
    }
}
