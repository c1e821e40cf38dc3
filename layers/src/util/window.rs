//! A time-bucketed rolling pair of counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Which bucket of an `n`-bucket window an instant falls in.
#[derive(Debug)]
struct Epochs {
    bucket_nanos: u128,
    origin: Instant,
    n: u64,
}

impl Epochs {
    fn new(window: Duration, n: usize) -> Self {
        let n = n.max(1);
        Self {
            bucket_nanos: (window.as_nanos() / n as u128).max(1),
            origin: Instant::now(),
            n: n as u64,
        }
    }

    /// The bucket period `now` is in, counted from the start.
    #[inline]
    fn at(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.origin).as_nanos() / self.bucket_nanos) as u64
    }

    /// The slot of period `epoch` in the bucket array.
    #[inline]
    fn slot(&self, epoch: u64) -> usize {
        (epoch % self.n) as usize
    }

    /// Whether a bucket of period `bucket` is in the window ending in `epoch`.
    #[inline]
    fn in_window(&self, bucket: u64, epoch: u64) -> bool {
        bucket <= epoch && epoch - bucket < self.n
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    epoch: u64,
    a: u64,
    b: u64,
}

const EMPTY: Bucket = Bucket {
    epoch: u64::MAX,
    a: 0,
    b: 0,
};

/// Two counters (`a`, `b`) summed over a sliding window of `n` buckets.
///
/// The window covers the current bucket and the `n - 1` before it, so its
/// effective length is between `(n - 1) / n` and `1` times `window`.
#[derive(Debug)]
pub(crate) struct RollingCounts {
    buckets: Box<[Bucket]>,
    epochs: Epochs,
}

impl RollingCounts {
    pub(crate) fn new(window: Duration, n: usize) -> Self {
        let epochs = Epochs::new(window, n);
        Self {
            buckets: vec![EMPTY; epochs.n as usize].into_boxed_slice(),
            epochs,
        }
    }

    /// Add to the counters of the current bucket.
    pub(crate) fn add(&mut self, now: Instant, a: u64, b: u64) {
        let epoch = self.epochs.at(now);
        let bucket = &mut self.buckets[self.epochs.slot(epoch)];
        if bucket.epoch != epoch {
            *bucket = Bucket { epoch, a: 0, b: 0 };
        }
        bucket.a += a;
        bucket.b += b;
    }

    /// The sums of both counters over the window ending now.
    pub(crate) fn sums(&self, now: Instant) -> (u64, u64) {
        let epoch = self.epochs.at(now);
        self.buckets
            .iter()
            .filter(|b| self.epochs.in_window(b.epoch, epoch))
            .fold((0, 0), |(a, b), bucket| (a + bucket.a, b + bucket.b))
    }

    /// Forget everything.
    #[cfg_attr(not(feature = "circuit-breaker"), allow(dead_code))]
    pub(crate) fn clear(&mut self) {
        self.buckets.iter_mut().for_each(|b| *b = EMPTY);
    }
}

/// One counter over a sliding window like [`RollingCounts`], lock-free:
/// for counts every request adds to, where a shared lock would serialize
/// all of them. A bucket that rolls over while another thread adds to it
/// may lose that thread's addition; fine for rates.
#[derive(Debug)]
#[cfg_attr(not(feature = "circuit-breaker"), allow(dead_code))]
pub(crate) struct AtomicRollingCount {
    /// `(epoch, count)` per bucket.
    buckets: Box<[(AtomicU64, AtomicU64)]>,
    epochs: Epochs,
}

#[cfg_attr(not(feature = "circuit-breaker"), allow(dead_code))]
impl AtomicRollingCount {
    pub(crate) fn new(window: Duration, n: usize) -> Self {
        let epochs = Epochs::new(window, n);
        Self {
            buckets: (0..epochs.n)
                .map(|_| (AtomicU64::new(u64::MAX), AtomicU64::new(0)))
                .collect(),
            epochs,
        }
    }

    /// Add one to the current bucket.
    #[inline]
    pub(crate) fn increment(&self, now: Instant) {
        let epoch = self.epochs.at(now);
        let (tag, count) = &self.buckets[self.epochs.slot(epoch)];
        let seen = tag.load(Ordering::Acquire);
        if seen != epoch {
            // First add of a new period: the winner resets the bucket.
            if tag
                .compare_exchange(seen, epoch, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                count.store(0, Ordering::Release);
            }
        }
        count.fetch_add(1, Ordering::AcqRel);
    }

    /// The sum over the window ending now.
    pub(crate) fn sum(&self, now: Instant) -> u64 {
        let epoch = self.epochs.at(now);
        self.buckets
            .iter()
            .filter(|(tag, _)| self.epochs.in_window(tag.load(Ordering::Acquire), epoch))
            .map(|(_, count)| count.load(Ordering::Acquire))
            .sum()
    }

    /// Forget everything.
    pub(crate) fn clear(&self) {
        for (tag, count) in self.buckets.iter() {
            tag.store(u64::MAX, Ordering::Release);
            count.store(0, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slides() {
        let mut w = RollingCounts::new(Duration::from_secs(10), 10);
        w.add(Instant::now(), 1, 2);
        assert_eq!(w.sums(Instant::now()), (1, 2));
        tokio::time::advance(Duration::from_secs(5)).await;
        w.add(Instant::now(), 1, 0);
        assert_eq!(w.sums(Instant::now()), (2, 2));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(w.sums(Instant::now()), (1, 0));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(w.sums(Instant::now()), (0, 0));
        w.add(Instant::now(), 3, 3);
        w.clear();
        assert_eq!(w.sums(Instant::now()), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn atomic_count_slides_like_the_locked_one() {
        let w = AtomicRollingCount::new(Duration::from_secs(10), 10);
        w.increment(Instant::now());
        assert_eq!(w.sum(Instant::now()), 1);
        tokio::time::advance(Duration::from_secs(5)).await;
        w.increment(Instant::now());
        w.increment(Instant::now());
        assert_eq!(w.sum(Instant::now()), 3);
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(w.sum(Instant::now()), 2);
        // The bucket of second 0 is reused ten buckets later: reset, not added to.
        tokio::time::advance(Duration::from_secs(9)).await;
        w.increment(Instant::now());
        assert_eq!(w.sum(Instant::now()), 1);
        w.clear();
        assert_eq!(w.sum(Instant::now()), 0);
    }

    #[test]
    fn atomic_count_loses_nothing_between_threads_within_a_bucket() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let w = AtomicRollingCount::new(Duration::from_secs(3600), 10);
        let now = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..10_000).for_each(|_| w.increment(now)));
            }
        });
        assert_eq!(w.sum(now), 40_000);
    }
}
