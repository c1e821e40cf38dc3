use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::util::{lock, window::RollingCounts};

const BUCKETS: usize = 10;

/// Limits retries to a share of the original requests over a sliding window.
///
/// Every original request [`deposit`](Self::deposit)s; every retry must
/// [`withdraw`](Self::withdraw). Within the last `window`, at most
///
/// ```text
/// floor(min_per_sec * window_secs) + floor(retry_ratio * requests)
/// ```
///
/// retries are allowed, so a `retry_ratio` of `0.2` lets retries add at most
/// 20 % extra load (plus the small constant floor that lets a quiet client
/// retry at all). The count is exact integer arithmetic (the ratio is kept in
/// parts per million), unlike tower's `TpsBudget`, which over-allocates for
/// ratios below 1.0 (tower issue 857).
///
/// The window is split into 10 buckets; a request leaves the window 9/10 to
/// 10/10 of `window` after it was counted. Time is `tokio::time`, so a paused
/// test clock drives it. Share one budget between layers with
/// `Arc<RetryBudget>`.
///
/// # Example
///
/// ```
/// use abacus_layers::retry::RetryBudget;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.1);
/// for _ in 0..100 { budget.deposit(); }
/// let granted = (0..20).filter(|_| budget.withdraw()).count();
/// assert_eq!(granted, 10);
/// # }
/// ```
pub struct RetryBudget {
    counts: Mutex<RollingCounts>,
    window: Duration,
    reserve: u64,
    ratio_ppm: u64,
}

impl RetryBudget {
    /// A budget over `window` allowing `min_per_sec` retries per second plus
    /// `retry_ratio` (0.2 = 20 %) of the requests in the window.
    ///
    /// Must be created inside a Tokio runtime when the test clock is paused
    /// (it reads `tokio::time::Instant`).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::RetryBudget;
    /// use std::time::Duration;
    /// let budget = RetryBudget::new(Duration::from_secs(10), 10, 0.2);
    /// assert_eq!(budget.remaining(), 100); // the floor: 10/s over 10 s
    /// ```
    pub fn new(window: Duration, min_per_sec: u32, retry_ratio: f32) -> Self {
        let window = window.max(Duration::from_millis(1));
        let reserve = (u128::from(min_per_sec) * window.as_millis() / 1000) as u64;
        let ratio_ppm = (f64::from(retry_ratio.max(0.0)) * 1_000_000.0).round() as u64;
        Self {
            counts: Mutex::new(RollingCounts::new(window, BUCKETS)),
            window,
            reserve,
            ratio_ppm,
        }
    }

    /// Count an original request.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::RetryBudget;
    /// use std::time::Duration;
    /// let budget = RetryBudget::new(Duration::from_secs(1), 0, 0.5);
    /// budget.deposit();
    /// budget.deposit();
    /// assert_eq!(budget.remaining(), 1);
    /// ```
    pub fn deposit(&self) {
        lock(&self.counts).add(Instant::now(), 1, 0);
    }

    /// Take one retry from the budget; `false` if it is empty.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::RetryBudget;
    /// use std::time::Duration;
    /// let budget = RetryBudget::new(Duration::from_secs(1), 0, 1.0);
    /// assert!(!budget.withdraw());
    /// budget.deposit();
    /// assert!(budget.withdraw());
    /// ```
    pub fn withdraw(&self) -> bool {
        let now = Instant::now();
        let mut counts = lock(&self.counts);
        let (requests, retries) = counts.sums(now);
        if retries < self.allowed(requests) {
            counts.add(now, 0, 1);
            true
        } else {
            false
        }
    }

    /// Retries that could be withdrawn now.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::RetryBudget;
    /// use std::time::Duration;
    /// assert_eq!(RetryBudget::new(Duration::from_secs(2), 3, 0.0).remaining(), 6);
    /// ```
    pub fn remaining(&self) -> u64 {
        let (requests, retries) = lock(&self.counts).sums(Instant::now());
        self.allowed(requests).saturating_sub(retries)
    }

    #[inline]
    fn allowed(&self, requests: u64) -> u64 {
        let share = (u128::from(requests) * u128::from(self.ratio_ppm) / 1_000_000) as u64;
        self.reserve.saturating_add(share)
    }
}

impl Default for RetryBudget {
    /// 10 s window, 10 retries per second floor, 20 % of requests.
    fn default() -> Self {
        Self::new(Duration::from_secs(10), 10, 0.2)
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("window", &self.window)
            .field("reserve", &self.reserve)
            .field("ratio_ppm", &self.ratio_ppm)
            .field("remaining", &self.remaining())
            .finish()
    }
}
