//! The keyed GCRA: one theoretical arrival time (TAT) per key, in a sharded
//! map with a hard cap on its size.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::time::Instant;

/// How many requests a key may make: a steady rate and a burst.
///
/// GCRA (the generic cell rate algorithm, a leaky bucket kept as one
/// timestamp): requests are spaced by the *emission interval* (`period / n`),
/// and up to `burst` of them may come at once. A key that was quiet long
/// enough has its whole burst again.
///
/// # Example
///
/// ```
/// use abacus_layers::rate_limit::Quota;
/// use std::time::Duration;
///
/// let q = Quota::per_minute(6000).with_burst(10);
/// assert_eq!(q.interval(), Duration::from_millis(10));
/// assert_eq!(q.burst(), 10);
/// // The burst defaults to one period's worth.
/// assert_eq!(Quota::per_second(100).burst(), 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    interval: Duration,
    burst: u32,
}

impl Quota {
    /// `n` requests per `period`, a burst of `n` (0 is taken as 1).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::Quota;
    /// use std::time::Duration;
    ///
    /// let q = Quota::new(3, Duration::from_secs(1));
    /// assert_eq!(q.interval(), Duration::from_nanos(333_333_333));
    /// ```
    pub fn new(n: u32, period: Duration) -> Self {
        let n = n.max(1);
        Self {
            interval: (period / n).max(Duration::from_nanos(1)),
            burst: n,
        }
    }

    /// `n` requests a second, a burst of `n`.
    ///
    /// # Example
    ///
    /// ```
    /// let q = abacus_layers::rate_limit::Quota::per_second(5);
    /// assert_eq!(q.interval(), std::time::Duration::from_millis(200));
    /// ```
    pub fn per_second(n: u32) -> Self {
        Self::new(n, Duration::from_secs(1))
    }

    /// `n` requests a minute, a burst of `n`.
    ///
    /// # Example
    ///
    /// ```
    /// let q = abacus_layers::rate_limit::Quota::per_minute(60);
    /// assert_eq!(q.interval(), std::time::Duration::from_secs(1));
    /// ```
    pub fn per_minute(n: u32) -> Self {
        Self::new(n, Duration::from_secs(60))
    }

    /// `n` requests an hour, a burst of `n`.
    ///
    /// # Example
    ///
    /// ```
    /// let q = abacus_layers::rate_limit::Quota::per_hour(3600);
    /// assert_eq!(q.interval(), std::time::Duration::from_secs(1));
    /// ```
    pub fn per_hour(n: u32) -> Self {
        Self::new(n, Duration::from_secs(3600))
    }

    /// One request every `interval`, a burst of 1.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::Quota;
    /// use std::time::Duration;
    /// let q = Quota::with_interval(Duration::from_millis(250));
    /// assert_eq!((q.interval(), q.burst()), (Duration::from_millis(250), 1));
    /// ```
    pub fn with_interval(interval: Duration) -> Self {
        Self {
            interval: interval.max(Duration::from_nanos(1)),
            burst: 1,
        }
    }

    /// The same rate with `burst` requests at once (0 is taken as 1).
    ///
    /// # Example
    ///
    /// ```
    /// let q = abacus_layers::rate_limit::Quota::per_second(100).with_burst(0);
    /// assert_eq!(q.burst(), 1);
    /// ```
    pub fn with_burst(self, burst: u32) -> Self {
        Self {
            burst: burst.max(1),
            ..self
        }
    }

    /// The time between two requests at the steady rate.
    ///
    /// # Example
    ///
    /// ```
    /// let q = abacus_layers::rate_limit::Quota::per_second(4);
    /// assert_eq!(q.interval().as_millis(), 250);
    /// ```
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Requests allowed at once.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(abacus_layers::rate_limit::Quota::per_hour(10).burst(), 10);
    /// ```
    pub fn burst(&self) -> u32 {
        self.burst
    }
}

/// A quota in nanoseconds: the emission interval `t` and the tolerance
/// `tau = (burst - 1) * t`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Gcra {
    t: u64,
    tau: u64,
}

impl From<Quota> for Gcra {
    fn from(q: Quota) -> Self {
        let t = u64::try_from(q.interval.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        Self {
            t,
            tau: t.saturating_mul(u64::from(q.burst.max(1)) - 1),
        }
    }
}

impl Gcra {
    /// Admit one request at `now` for the key whose TAT is `tat` (0 for a
    /// key never seen): `Ok` with the TAT updated, or the wait until the
    /// request would be admitted, the TAT left alone.
    #[inline]
    fn admit(&self, tat: &mut u64, now: u64) -> Result<(), u64> {
        let base = (*tat).max(now);
        let ahead = base - now;
        if ahead > self.tau {
            return Err(ahead - self.tau);
        }
        *tat = base.saturating_add(self.t);
        Ok(())
    }
}

pub(super) type QuotaLookup<K> = Box<dyn Fn(&K) -> Option<Quota> + Send + Sync>;

/// The limiter's settings, fixed when the layer is built.
pub(super) struct Settings<K> {
    pub(super) default: Quota,
    pub(super) overrides: HashMap<K, Quota>,
    pub(super) lookup: Option<QuotaLookup<K>>,
    pub(super) max_keys: usize,
    pub(super) sweep_every: Duration,
}

/// Every key's TAT, the cap, and the counts.
pub(super) struct Limiter<K> {
    tats: DashMap<K, u64>,
    /// Entries in `tats`, counted here: `DashMap::len` locks every shard,
    /// which deadlocks while an entry of one is held.
    tracked: AtomicUsize,
    origin: Instant,
    default: Gcra,
    overrides: HashMap<K, Gcra>,
    lookup: Option<QuotaLookup<K>>,
    max_keys: usize,
    sweep_every: u64,
    /// When the next sweep of idle keys is due (nanoseconds since `origin`).
    next_sweep: AtomicU64,
    /// Held by the one caller sweeping or evicting; others do not wait.
    sweeping: Mutex<()>,
    allowed: AtomicU64,
    limited: AtomicU64,
    evicted: AtomicU64,
}

impl<K: Hash + Eq> Limiter<K> {
    pub(super) fn new(settings: Settings<K>) -> Self {
        let sweep_every = nanos(settings.sweep_every).max(1);
        Self {
            tats: DashMap::new(),
            tracked: AtomicUsize::new(0),
            origin: Instant::now(),
            default: settings.default.into(),
            overrides: settings
                .overrides
                .into_iter()
                .map(|(k, q)| (k, q.into()))
                .collect(),
            lookup: settings.lookup,
            max_keys: settings.max_keys.max(1),
            sweep_every,
            next_sweep: AtomicU64::new(sweep_every),
            sweeping: Mutex::new(()),
            allowed: AtomicU64::new(0),
            limited: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        nanos(Instant::now().saturating_duration_since(self.origin))
    }

    fn gcra(&self, key: &K) -> Gcra {
        if let Some(g) = self.overrides.get(key) {
            return *g;
        }
        match &self.lookup {
            Some(lookup) => lookup(key).map_or(self.default, Gcra::from),
            None => self.default,
        }
    }

    /// Admit one request of `key` now, or say how long it must wait.
    pub(super) fn check(&self, key: K) -> Result<(), Duration> {
        let now = self.now();
        if now >= self.next_sweep.load(Ordering::Relaxed) {
            self.sweep_due(now);
        }
        let gcra = self.gcra(&key);
        let outcome = match self.tats.get_mut(&key) {
            Some(mut tat) => gcra.admit(&mut tat, now),
            None => self.insert(key, gcra, now),
        };
        match outcome {
            Ok(()) => {
                self.allowed.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(wait) => {
                self.limited.fetch_add(1, Ordering::Relaxed);
                Err(Duration::from_nanos(wait))
            }
        }
    }

    /// The slow path: a key not tracked yet (or evicted a moment ago).
    #[cold]
    fn insert(&self, key: K, gcra: Gcra, now: u64) -> Result<(), u64> {
        if self.tracked.load(Ordering::Relaxed) >= self.max_keys {
            self.make_room(now);
        }
        match self.tats.entry(key) {
            // Another caller inserted it meanwhile.
            Entry::Occupied(mut e) => gcra.admit(e.get_mut(), now),
            Entry::Vacant(e) => {
                let mut tat = 0;
                // A fresh key always has its burst (at least 1).
                let outcome = gcra.admit(&mut tat, now);
                e.insert(tat);
                self.tracked.fetch_add(1, Ordering::Relaxed);
                outcome
            }
        }
    }

    /// The periodic sweep, by whichever caller first sees it due.
    fn sweep_due(&self, now: u64) {
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        // One caller wins the sweep; the others go on at once.
        if self
            .next_sweep
            .compare_exchange(
                due,
                now.saturating_add(self.sweep_every),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.sweep_idle(now);
        }
    }

    /// Forget every idle key (its TAT is past: it has its whole burst
    /// again, exactly as a key never seen). Shrinks the map after a big
    /// drop. Returns how many keys were forgotten; 0 without sweeping if
    /// another caller is sweeping.
    pub(super) fn sweep_idle(&self, now: u64) -> usize {
        let _guard = match self.sweeping.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return 0,
        };
        self.forget_idle(now)
    }

    fn forget_idle(&self, now: u64) -> usize {
        let mut removed = 0;
        self.tats.retain(|_, tat| {
            let keep = *tat > now;
            removed += usize::from(!keep);
            keep
        });
        self.tracked.fetch_sub(removed, Ordering::Relaxed);
        let left = self.tracked.load(Ordering::Relaxed);
        if removed > 0 && self.tats.capacity() > 4 * left.max(1024) {
            self.tats.shrink_to_fit();
        }
        removed
    }

    /// The map is full: forget the idle keys, and if that frees nothing,
    /// evict the keys closest to idle (the smallest TATs) down to 7/8 of
    /// the cap. An evicted key starts afresh: it gains at most its
    /// remaining debt (`tat - now`, under one burst), and no new key is
    /// refused because the map is full.
    #[cold]
    fn make_room(&self, now: u64) {
        // Wait for a caller already making room (or sweeping), then look
        // again: it usually freed an eighth of the map. The map overshoots
        // the cap by at most the callers between this check and their insert.
        let _guard = self
            .sweeping
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.tracked.load(Ordering::Relaxed) < self.max_keys {
            return;
        }
        self.forget_idle(now);
        let tracked = self.tracked.load(Ordering::Relaxed);
        let target = self.max_keys - self.max_keys / 8 - 1;
        if tracked <= target {
            return;
        }
        let excess = tracked - target;
        let mut tats: Vec<u64> = self.tats.iter().map(|e| *e.value()).collect();
        if tats.is_empty() {
            return;
        }
        let nth = (excess - 1).min(tats.len() - 1);
        let (_, threshold, _) = tats.select_nth_unstable(nth);
        let threshold = *threshold;
        drop(tats);
        let mut removed = 0;
        self.tats.retain(|_, tat| {
            let evict = removed < excess && *tat <= threshold;
            removed += usize::from(evict);
            !evict
        });
        self.tracked.fetch_sub(removed, Ordering::Relaxed);
        self.evicted.fetch_add(removed as u64, Ordering::Relaxed);
    }

    /// Sweep now (for the handle).
    pub(super) fn sweep_now(&self) -> usize {
        self.sweep_idle(self.now())
    }

    pub(super) fn tracked(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    pub(super) fn max_keys(&self) -> usize {
        self.max_keys
    }

    pub(super) fn allowed(&self) -> u64 {
        self.allowed.load(Ordering::Relaxed)
    }

    pub(super) fn limited(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    pub(super) fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }
}

impl<K> fmt::Debug for Limiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("default", &self.default)
            .field("overrides", &self.overrides.len())
            .field("tracked", &self.tracked.load(Ordering::Relaxed))
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(quota: Quota, max_keys: usize) -> Limiter<u32> {
        Limiter::new(Settings {
            default: quota,
            overrides: HashMap::new(),
            lookup: None,
            max_keys,
            sweep_every: Duration::from_secs(3600),
        })
    }

    #[test]
    fn gcra_admits_the_burst_then_spaces_requests_by_the_interval() {
        // 10 a second (t = 100 ms), burst 3 (tau = 200 ms).
        let g = Gcra::from(Quota::per_second(10).with_burst(3));
        let ms = 1_000_000;
        let mut tat = 0;
        for _ in 0..3 {
            assert_eq!(g.admit(&mut tat, 0), Ok(()));
        }
        assert_eq!(tat, 300 * ms);
        assert_eq!(g.admit(&mut tat, 0), Err(100 * ms));
        assert_eq!(g.admit(&mut tat, 60 * ms), Err(40 * ms));
        assert_eq!(tat, 300 * ms, "a refusal leaves the TAT alone");
        assert_eq!(g.admit(&mut tat, 100 * ms), Ok(()));
        assert_eq!(g.admit(&mut tat, 100 * ms), Err(100 * ms));
        // Quiet for long: the whole burst again, no more.
        for _ in 0..3 {
            assert_eq!(g.admit(&mut tat, 10_000 * ms), Ok(()));
        }
        assert!(g.admit(&mut tat, 10_000 * ms).is_err());
    }

    #[test]
    fn huge_quotas_saturate_instead_of_overflowing() {
        let g = Gcra::from(Quota::per_hour(1).with_burst(u32::MAX));
        let mut tat = u64::MAX - 1;
        assert_eq!(g.admit(&mut tat, 0), Ok(()));
        assert_eq!(tat, u64::MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_map_evicts_the_keys_closest_to_idle() {
        let l = limiter(Quota::per_hour(1), 8);
        for key in 0..8 {
            l.check(key).unwrap();
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(l.tracked(), 8);
        // Full of active keys: key 8 evicts the oldest ones (smallest TAT).
        l.check(8).unwrap();
        assert!(l.tracked() <= 8);
        assert!(l.evicted() >= 1);
        assert!(!l.tats.contains_key(&0), "the oldest key went first");
        assert!(l.tats.contains_key(&7) && l.tats.contains_key(&8));
    }
}
