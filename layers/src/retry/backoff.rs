use std::time::Duration;

use crate::util::rng::SeedRng;

/// How a delay is randomised.
///
/// With `ceiling = min(max, initial * 2^(retry - 1))`:
///
/// | jitter | delay |
/// |---|---|
/// | `None` | `ceiling` |
/// | `Full` | uniform in `[0, ceiling]` |
/// | `Equal` | `ceiling / 2` + uniform in `[0, ceiling / 2]` |
/// | `Decorrelated` | `min(max, uniform in [initial, 3 * previous delay])`, previous starting at `initial` |
///
/// Full jitter spreads retries best; decorrelated grows less predictably but
/// never drops below `initial` (see the AWS architecture blog, "Exponential
/// Backoff And Jitter").
///
/// # Example
///
/// ```
/// use abacus_layers::retry::{Backoff, Jitter};
/// use std::time::Duration;
/// let b = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(5))
///     .jitter(Jitter::Decorrelated);
/// # let _ = b;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// No randomness: exactly the exponential ceiling.
    None,
    /// Uniform between zero and the ceiling (the default).
    #[default]
    Full,
    /// Half the ceiling plus uniform up to the other half.
    Equal,
    /// Uniform between `initial` and three times the previous delay, capped.
    Decorrelated,
}

/// Exponential backoff with jitter.
///
/// # Example
///
/// ```
/// use abacus_layers::retry::Backoff;
/// use std::time::Duration;
///
/// let b = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1));
/// assert_eq!(b.ceiling(1), Duration::from_millis(100));
/// assert_eq!(b.ceiling(3), Duration::from_millis(400));
/// assert_eq!(b.ceiling(10), Duration::from_secs(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: Jitter,
}

impl Default for Backoff {
    /// 100 ms doubling up to 10 s, full jitter.
    fn default() -> Self {
        Self::exponential(Duration::from_millis(100), Duration::from_secs(10))
    }
}

impl Backoff {
    /// Delays doubling from `initial` up to `max`, with full jitter.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::Backoff;
    /// use std::time::Duration;
    /// let b = Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1));
    /// # let _ = b;
    /// ```
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            jitter: Jitter::Full,
        }
    }

    /// Set the jitter.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::{Backoff, Jitter};
    /// let b = Backoff::default().jitter(Jitter::None);
    /// # let _ = b;
    /// ```
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The delay before retry number `retry` (1 for the first retry) without
    /// jitter: `min(max, initial * 2^(retry - 1))`. Every jittered delay is at
    /// most this (decorrelated: at most `max`).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::Backoff;
    /// use std::time::Duration;
    /// let b = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1));
    /// assert_eq!(b.ceiling(2), Duration::from_millis(200));
    /// ```
    pub fn ceiling(&self, retry: u32) -> Duration {
        let shift = retry.saturating_sub(1).min(63);
        let factor = 1u32.checked_shl(shift).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay before retry `retry`, given the previous delay.
    pub(crate) fn delay(&self, retry: u32, previous: Duration, rng: &SeedRng) -> Duration {
        let ceiling = self.ceiling(retry);
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => ceiling.mul_f64(rng.next_f64()),
            Jitter::Equal => {
                let half = ceiling / 2;
                half + half.mul_f64(rng.next_f64())
            }
            Jitter::Decorrelated => {
                let lo = self.initial;
                let hi = previous.max(lo).saturating_mul(3);
                (lo + (hi - lo).mul_f64(rng.next_f64())).min(self.max)
            }
        }
    }

    pub(crate) fn initial(&self) -> Duration {
        self.initial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_bounds() {
        let rng = SeedRng::new(42);
        let b = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(2));
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            let b = b.jitter(jitter);
            let mut prev = b.initial();
            for retry in 1..20 {
                let d = b.delay(retry, prev, &rng);
                match jitter {
                    Jitter::None => assert_eq!(d, b.ceiling(retry)),
                    Jitter::Full => assert!(d <= b.ceiling(retry)),
                    Jitter::Equal => {
                        assert!(d >= b.ceiling(retry) / 2 && d <= b.ceiling(retry))
                    }
                    Jitter::Decorrelated => {
                        assert!(d >= b.initial() && d <= Duration::from_secs(2));
                        assert!(d <= prev * 3);
                    }
                }
                prev = d;
            }
        }
    }

    #[test]
    fn seeded_is_deterministic() {
        let b = Backoff::default();
        let (r1, r2) = (SeedRng::new(7), SeedRng::new(7));
        for retry in 1..10 {
            assert_eq!(
                b.delay(retry, Duration::ZERO, &r1),
                b.delay(retry, Duration::ZERO, &r2)
            );
        }
    }
}
