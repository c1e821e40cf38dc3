//! A time-bucketed rolling pair of counters.

use std::time::Duration;

use tokio::time::Instant;

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
    bucket_nanos: u128,
    origin: Instant,
}

impl RollingCounts {
    pub(crate) fn new(window: Duration, n: usize) -> Self {
        let n = n.max(1);
        let bucket_nanos = (window.as_nanos() / n as u128).max(1);
        Self {
            buckets: vec![EMPTY; n].into_boxed_slice(),
            bucket_nanos,
            origin: Instant::now(),
        }
    }

    #[inline]
    fn epoch(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.origin).as_nanos() / self.bucket_nanos) as u64
    }

    /// Add to the counters of the current bucket.
    pub(crate) fn add(&mut self, now: Instant, a: u64, b: u64) {
        let epoch = self.epoch(now);
        let n = self.buckets.len() as u64;
        let bucket = &mut self.buckets[(epoch % n) as usize];
        if bucket.epoch != epoch {
            *bucket = Bucket { epoch, a: 0, b: 0 };
        }
        bucket.a += a;
        bucket.b += b;
    }

    /// The sums of both counters over the window ending now.
    pub(crate) fn sums(&self, now: Instant) -> (u64, u64) {
        let epoch = self.epoch(now);
        let n = self.buckets.len() as u64;
        self.buckets
            .iter()
            .filter(|b| b.epoch <= epoch && epoch - b.epoch < n)
            .fold((0, 0), |(a, b), bucket| (a + bucket.a, b + bucket.b))
    }

    /// Forget everything.
    #[cfg_attr(not(feature = "circuit-breaker"), allow(dead_code))]
    pub(crate) fn clear(&mut self) {
        self.buckets.iter_mut().for_each(|b| *b = EMPTY);
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
}
