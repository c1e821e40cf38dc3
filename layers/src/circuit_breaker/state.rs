use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::util::lock;
use crate::util::window::{AtomicRollingCount, RollingCounts};

/// The state of a circuit breaker.
///
/// # Example
///
/// ```
/// use abacus_layers::circuit_breaker::CircuitState;
/// assert_eq!(CircuitState::HalfOpen.as_str(), "half_open");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls pass; outcomes are counted.
    Closed,
    /// Calls are rejected.
    Open,
    /// A limited number of probe calls pass.
    HalfOpen,
}

impl CircuitState {
    /// `"closed"`, `"open"` or `"half_open"` (metric label values).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::circuit_breaker::CircuitState;
    /// assert_eq!(CircuitState::Open.as_str(), "open");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    /// The gauge value: 0 closed, 1 open, 2 half-open.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::circuit_breaker::CircuitState;
    /// assert_eq!(CircuitState::HalfOpen.code(), 2);
    /// ```
    pub const fn code(self) -> u8 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
        }
    }

    const fn from_code(code: u8) -> Self {
        match code {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state change, passed to the
/// [`on_state_change`](super::CircuitBreakerBuilder::on_state_change) listener.
///
/// # Example
///
/// ```
/// use abacus_layers::circuit_breaker::{CircuitState, Transition};
/// let t = Transition { from: CircuitState::Closed, to: CircuitState::Open };
/// assert_eq!(format!("{} -> {}", t.from, t.to), "closed -> open");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transition {
    /// The state left.
    pub from: CircuitState,
    /// The state entered.
    pub to: CircuitState,
}

/// Decides whether a result counts as a failure for the breaker.
///
/// Implemented for every `Fn(&Result<Res, E>) -> bool`. The default,
/// [`FailOnError`], counts every error and no response.
///
/// # Example
///
/// ```
/// use abacus_layers::circuit_breaker::ClassifyFailure;
///
/// // 5xx responses count too; 4xx errors are the caller's fault and do not.
/// let c = |r: &Result<http::StatusCode, std::io::Error>| match r {
///     Ok(status) => status.is_server_error(),
///     Err(_) => true,
/// };
/// assert!(c.is_failure(&Ok(http::StatusCode::BAD_GATEWAY)));
/// ```
pub trait ClassifyFailure<Res, E> {
    /// `true` if `result` is a failure.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::circuit_breaker::{ClassifyFailure, FailOnError};
    /// assert!(FailOnError.is_failure(&Err::<(), _>("boom")));
    /// ```
    fn is_failure(&self, result: &Result<Res, E>) -> bool;
}

impl<Res, E, F> ClassifyFailure<Res, E> for F
where
    F: Fn(&Result<Res, E>) -> bool,
{
    #[inline]
    fn is_failure(&self, result: &Result<Res, E>) -> bool {
        self(result)
    }
}

/// Every error is a failure; every response a success.
///
/// # Example
///
/// ```
/// use abacus_layers::circuit_breaker::{ClassifyFailure, FailOnError};
/// assert!(!FailOnError.is_failure(&Ok::<_, ()>(1)));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct FailOnError;

impl<Res, E> ClassifyFailure<Res, E> for FailOnError {
    #[inline]
    fn is_failure(&self, result: &Result<Res, E>) -> bool {
        result.is_err()
    }
}

pub(super) type Listener = Arc<dyn Fn(&Transition) + Send + Sync>;

#[derive(Clone)]
pub(super) struct Config {
    pub(super) name: Arc<str>,
    pub(super) failure_rate: f64,
    pub(super) window: Duration,
    pub(super) minimum_calls: u64,
    pub(super) consecutive_failures: u32,
    pub(super) open_duration: Duration,
    pub(super) max_probes: u32,
    pub(super) successes_to_close: u32,
    pub(super) listener: Option<Listener>,
    #[cfg(feature = "metrics")]
    pub(super) state_metric: metrics::SharedString,
    #[cfg(feature = "metrics")]
    pub(super) transitions_metric: metrics::SharedString,
}

struct Inner {
    state: CircuitState,
    /// `a` = calls, `b` = failures, except successful calls while closed,
    /// which are in `Breaker::closed_successes`.
    window: RollingCounts,
    consecutive: u32,
    opened_at: Instant,
    probes_in_flight: u32,
    probe_successes: u32,
    generation: u64,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum TicketKind {
    Closed,
    Probe { generation: u64 },
}

/// The shared state of one breaker.
pub(super) struct Breaker {
    config: Config,
    state: AtomicU8,
    /// Successful calls while closed, counted without the lock (the path
    /// nearly every request takes).
    closed_successes: AtomicRollingCount,
    /// Some failure happened since the last success: a success must reset
    /// `Inner::consecutive` under the lock.
    failure_streak: AtomicBool,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub(super) fn new(config: Config) -> Self {
        let breaker = Self {
            state: AtomicU8::new(CircuitState::Closed.code()),
            closed_successes: AtomicRollingCount::new(config.window, 10),
            failure_streak: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                state: CircuitState::Closed,
                window: RollingCounts::new(config.window, 10),
                consecutive: 0,
                opened_at: Instant::now(),
                probes_in_flight: 0,
                probe_successes: 0,
                generation: 0,
            }),
            config,
        };
        #[cfg(feature = "metrics")]
        breaker.set_state_gauge(CircuitState::Closed);
        breaker
    }

    #[inline]
    pub(super) fn state(&self) -> CircuitState {
        CircuitState::from_code(self.state.load(Ordering::Acquire))
    }

    /// Admit a call, or `None` to reject it.
    pub(super) fn try_acquire(&self) -> Option<TicketKind> {
        if self.state.load(Ordering::Acquire) == CircuitState::Closed.code() {
            return Some(TicketKind::Closed);
        }
        let mut transition = None;
        let admitted = {
            let mut inner = lock(&self.inner);
            if inner.state == CircuitState::Open {
                let now = Instant::now();
                if now < inner.opened_at + self.config.open_duration {
                    return None;
                }
                transition = Some(self.transition(&mut inner, CircuitState::HalfOpen, now));
            }
            match inner.state {
                CircuitState::Closed => Some(TicketKind::Closed),
                CircuitState::HalfOpen if inner.probes_in_flight < self.config.max_probes => {
                    inner.probes_in_flight += 1;
                    Some(TicketKind::Probe {
                        generation: inner.generation,
                    })
                }
                _ => None,
            }
        };
        self.notify(transition);
        admitted
    }

    /// Record the outcome of an admitted call.
    pub(super) fn record(&self, ticket: TicketKind, failure: bool) {
        let now = Instant::now();
        if !failure
            && matches!(ticket, TicketKind::Closed)
            && self.state() == CircuitState::Closed
            && !self.failure_streak.load(Ordering::Acquire)
        {
            // A success cannot trip the breaker: count it, take no lock.
            self.closed_successes.increment(now);
            return;
        }
        let transition = {
            let mut inner = lock(&self.inner);
            match (ticket, inner.state) {
                (TicketKind::Closed, CircuitState::Closed) => {
                    inner.window.add(now, 1, u64::from(failure));
                    if !failure {
                        inner.consecutive = 0;
                        self.failure_streak.store(false, Ordering::Release);
                        None
                    } else {
                        inner.consecutive += 1;
                        self.failure_streak.store(true, Ordering::Release);
                        if self.should_trip(&inner, now) {
                            Some(self.transition(&mut inner, CircuitState::Open, now))
                        } else {
                            None
                        }
                    }
                }
                (TicketKind::Probe { generation }, CircuitState::HalfOpen)
                    if generation == inner.generation =>
                {
                    inner.probes_in_flight -= 1;
                    if failure {
                        Some(self.transition(&mut inner, CircuitState::Open, now))
                    } else {
                        inner.probe_successes += 1;
                        if inner.probe_successes >= self.config.successes_to_close {
                            Some(self.transition(&mut inner, CircuitState::Closed, now))
                        } else {
                            None
                        }
                    }
                }
                // The state changed while the call ran: its outcome is stale.
                _ => None,
            }
        };
        self.notify(transition);
    }

    /// An admitted call was abandoned (its future dropped): free its probe slot.
    pub(super) fn release(&self, ticket: TicketKind) {
        if let TicketKind::Probe { generation } = ticket {
            let mut inner = lock(&self.inner);
            if inner.state == CircuitState::HalfOpen && inner.generation == generation {
                inner.probes_in_flight -= 1;
            }
        }
    }

    pub(super) fn window_counts(&self) -> (u64, u64) {
        let now = Instant::now();
        let (calls, failures) = lock(&self.inner).window.sums(now);
        (calls + self.closed_successes.sum(now), failures)
    }

    pub(super) fn name(&self) -> &str {
        &self.config.name
    }

    fn should_trip(&self, inner: &Inner, now: Instant) -> bool {
        let c = &self.config;
        if c.consecutive_failures > 0 && inner.consecutive >= c.consecutive_failures {
            return true;
        }
        if c.failure_rate > 1.0 {
            return false;
        }
        let (calls, failures) = inner.window.sums(now);
        let calls = calls + self.closed_successes.sum(now);
        calls >= c.minimum_calls.max(1) && failures as f64 >= c.failure_rate * calls as f64
    }

    fn transition(&self, inner: &mut Inner, to: CircuitState, now: Instant) -> Transition {
        let from = inner.state;
        inner.state = to;
        inner.generation += 1;
        inner.probes_in_flight = 0;
        inner.probe_successes = 0;
        inner.consecutive = 0;
        self.failure_streak.store(false, Ordering::Release);
        match to {
            CircuitState::Open => inner.opened_at = now,
            CircuitState::Closed => {
                inner.window.clear();
                self.closed_successes.clear();
            }
            CircuitState::HalfOpen => {}
        }
        self.state.store(to.code(), Ordering::Release);
        Transition { from, to }
    }

    /// Report a transition (outside the lock).
    fn notify(&self, transition: Option<Transition>) {
        let Some(t) = transition else { return };
        if let Some(listener) = &self.config.listener {
            listener(&t);
        }
        #[cfg(feature = "metrics")]
        {
            self.set_state_gauge(t.to);
            let key = metrics::Key::from_parts(
                self.config.transitions_metric.clone(),
                vec![
                    metrics::Label::new("breaker", self.config.name.to_string()),
                    metrics::Label::from_static_parts("from", t.from.as_str()),
                    metrics::Label::from_static_parts("to", t.to.as_str()),
                ],
            );
            metrics::with_recorder(|r| r.register_counter(&key, &METADATA).increment(1));
        }
    }

    #[cfg(feature = "metrics")]
    fn set_state_gauge(&self, state: CircuitState) {
        let key = metrics::Key::from_parts(
            self.config.state_metric.clone(),
            vec![metrics::Label::new("breaker", self.config.name.to_string())],
        );
        metrics::with_recorder(|r| {
            r.register_gauge(&key, &METADATA)
                .set(f64::from(state.code()))
        });
    }
}

#[cfg(feature = "metrics")]
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// Reads a circuit breaker's state; cheap to clone.
///
/// # Example
///
/// ```
/// use abacus_layers::circuit_breaker::{CircuitBreakerLayer, CircuitState};
///
/// let layer = CircuitBreakerLayer::builder().name("upstream").build();
/// let handle = layer.handle();
/// assert_eq!(handle.state(), CircuitState::Closed);
/// assert_eq!(handle.name(), "upstream");
/// ```
#[derive(Clone)]
pub struct CircuitBreakerHandle {
    pub(super) breaker: Arc<Breaker>,
}

impl CircuitBreakerHandle {
    /// The current state. `Open` turns into `HalfOpen` on the first call
    /// after the open duration, not by itself.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::circuit_breaker::{CircuitBreakerLayer, CircuitState};
    /// assert_eq!(CircuitBreakerLayer::new().handle().state(), CircuitState::Closed);
    /// ```
    pub fn state(&self) -> CircuitState {
        self.breaker.state()
    }

    /// The breaker's name (the `breaker` metric label).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::circuit_breaker::CircuitBreakerLayer;
    /// assert_eq!(CircuitBreakerLayer::new().handle().name(), "default");
    /// ```
    pub fn name(&self) -> &str {
        self.breaker.name()
    }

    /// `(calls, failures)` counted in the sliding window while closed.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::circuit_breaker::CircuitBreakerLayer;
    /// assert_eq!(CircuitBreakerLayer::new().handle().window_counts(), (0, 0));
    /// ```
    pub fn window_counts(&self) -> (u64, u64) {
        self.breaker.window_counts()
    }
}

impl fmt::Debug for CircuitBreakerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerHandle")
            .field("name", &self.name())
            .field("state", &self.state())
            .finish()
    }
}

/// An admission: records the outcome, or frees a probe slot if dropped.
pub(super) struct Ticket {
    breaker: Arc<Breaker>,
    kind: TicketKind,
    done: bool,
}

impl Ticket {
    pub(super) fn new(breaker: Arc<Breaker>, kind: TicketKind) -> Self {
        Self {
            breaker,
            kind,
            done: false,
        }
    }

    pub(super) fn record(mut self, failure: bool) {
        self.done = true;
        self.breaker.record(self.kind, failure);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.release(self.kind);
        }
    }
}
