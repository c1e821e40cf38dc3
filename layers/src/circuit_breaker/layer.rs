use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::state::{Breaker, Config};
use super::{CircuitBreaker, CircuitBreakerHandle, FailOnError, Transition};

/// Configures a [`CircuitBreakerLayer`].
///
/// Defaults: name `"default"`, trip at a 50 % failure rate over a 10 s window
/// once at least 20 calls were counted, or after 5 consecutive failures; stay
/// open 30 s; 1 probe at a time in half-open, 1 success to close; every error
/// is a failure.
///
/// # Example
///
/// ```
/// use abacus_layers::circuit_breaker::CircuitBreakerLayer;
/// use std::time::Duration;
///
/// let layer = CircuitBreakerLayer::builder()
///     .name("wolfram")
///     .failure_rate_threshold(0.25)
///     .sliding_window(Duration::from_secs(60))
///     .minimum_calls(50)
///     .consecutive_failures(10)
///     .open_duration(Duration::from_secs(15))
///     .half_open_max_probes(2)
///     .half_open_successes(3)
///     .build();
/// # let _ = layer;
/// ```
pub struct CircuitBreakerBuilder<C = FailOnError> {
    config: Config,
    classifier: C,
}

impl<C> CircuitBreakerBuilder<C> {
    /// Name the breaker (the `breaker` label of its metrics).
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::circuit_breaker::CircuitBreakerLayer::builder().name("db");
    /// # let _ = b;
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = Arc::from(name.into());
        self
    }

    /// Open when at least this share of the calls in the window failed
    /// (`0.5` = 50 %). A value above `1.0` disables the rate trigger.
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::circuit_breaker::CircuitBreakerLayer::builder().failure_rate_threshold(0.3);
    /// # let _ = b;
    /// ```
    pub fn failure_rate_threshold(mut self, rate: f64) -> Self {
        self.config.failure_rate = rate;
        self
    }

    /// The length of the sliding window the failure rate is computed over.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = abacus_layers::circuit_breaker::CircuitBreakerLayer::builder()
    ///     .sliding_window(Duration::from_secs(30));
    /// # let _ = b;
    /// ```
    pub fn sliding_window(mut self, window: Duration) -> Self {
        self.config.window = window;
        self
    }

    /// The failure rate is only judged once the window holds this many calls.
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::circuit_breaker::CircuitBreakerLayer::builder().minimum_calls(100);
    /// # let _ = b;
    /// ```
    pub fn minimum_calls(mut self, calls: u64) -> Self {
        self.config.minimum_calls = calls;
        self
    }

    /// Open after this many failures in a row (`0` disables this trigger).
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::circuit_breaker::CircuitBreakerLayer::builder().consecutive_failures(3);
    /// # let _ = b;
    /// ```
    pub fn consecutive_failures(mut self, failures: u32) -> Self {
        self.config.consecutive_failures = failures;
        self
    }

    /// How long the breaker stays open before it lets probes through.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = abacus_layers::circuit_breaker::CircuitBreakerLayer::builder()
    ///     .open_duration(Duration::from_secs(10));
    /// # let _ = b;
    /// ```
    pub fn open_duration(mut self, duration: Duration) -> Self {
        self.config.open_duration = duration;
        self
    }

    /// At most this many probe calls in flight while half-open (at least 1).
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::circuit_breaker::CircuitBreakerLayer::builder().half_open_max_probes(2);
    /// # let _ = b;
    /// ```
    pub fn half_open_max_probes(mut self, probes: u32) -> Self {
        self.config.max_probes = probes.max(1);
        self
    }

    /// Close after this many successful probes (at least 1).
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::circuit_breaker::CircuitBreakerLayer::builder().half_open_successes(3);
    /// # let _ = b;
    /// ```
    pub fn half_open_successes(mut self, successes: u32) -> Self {
        self.config.successes_to_close = successes.max(1);
        self
    }

    /// Call `listener` on every state change (outside the breaker's lock).
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::circuit_breaker::CircuitBreakerLayer::builder()
    ///     .on_state_change(|t| eprintln!("circuit {} -> {}", t.from, t.to));
    /// # let _ = b;
    /// ```
    pub fn on_state_change<F>(mut self, listener: F) -> Self
    where
        F: Fn(&Transition) + Send + Sync + 'static,
    {
        self.config.listener = Some(Arc::new(listener));
        self
    }

    /// The name of the state gauge (default `circuit_breaker_state`).
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::circuit_breaker::CircuitBreakerLayer::builder()
    ///     .state_metric_name("a2a_circuit_breaker_state");
    /// # let _ = b;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn state_metric_name(mut self, name: impl Into<metrics::SharedString>) -> Self {
        self.config.state_metric = name.into();
        self
    }

    /// The name of the transitions counter (default
    /// `circuit_breaker_transitions_total`).
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::circuit_breaker::CircuitBreakerLayer::builder()
    ///     .transitions_metric_name("a2a_circuit_breaker_transitions_total");
    /// # let _ = b;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn transitions_metric_name(mut self, name: impl Into<metrics::SharedString>) -> Self {
        self.config.transitions_metric = name.into();
        self
    }

    /// Decide what counts as a failure (see
    /// [`ClassifyFailure`](super::ClassifyFailure)).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::circuit_breaker::CircuitBreakerLayer;
    /// let b = CircuitBreakerLayer::builder()
    ///     .failure_if(|r: &Result<http::StatusCode, std::io::Error>| {
    ///         r.as_ref().map_or(true, |s| s.is_server_error())
    ///     });
    /// # let _ = b;
    /// ```
    pub fn failure_if<D>(self, classifier: D) -> CircuitBreakerBuilder<D> {
        CircuitBreakerBuilder {
            config: self.config,
            classifier,
        }
    }

    /// Build the layer (and its shared state).
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::circuit_breaker::CircuitBreakerLayer::builder().build();
    /// # let _ = layer;
    /// ```
    pub fn build(self) -> CircuitBreakerLayer<C> {
        CircuitBreakerLayer {
            breaker: Arc::new(Breaker::new(self.config)),
            classifier: self.classifier,
        }
    }
}

impl<C> fmt::Debug for CircuitBreakerBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerBuilder")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

/// Applies [`CircuitBreaker`] to services; all of them share one breaker.
///
/// # Example
///
/// ```
/// use abacus_layers::circuit_breaker::CircuitBreakerLayer;
/// use tower::{Layer, service_fn};
///
/// let layer = CircuitBreakerLayer::new();
/// let svc = layer.layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
/// # let _ = svc;
/// ```
pub struct CircuitBreakerLayer<C = FailOnError> {
    breaker: Arc<Breaker>,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// A breaker with the [defaults](CircuitBreakerBuilder).
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::circuit_breaker::CircuitBreakerLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configure a breaker.
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::circuit_breaker::CircuitBreakerLayer::builder()
    ///     .consecutive_failures(3)
    ///     .build();
    /// # let _ = layer;
    /// ```
    pub fn builder() -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            config: Config {
                name: Arc::from("default"),
                failure_rate: 0.5,
                window: Duration::from_secs(10),
                minimum_calls: 20,
                consecutive_failures: 5,
                open_duration: Duration::from_secs(30),
                max_probes: 1,
                successes_to_close: 1,
                listener: None,
                #[cfg(feature = "metrics")]
                state_metric: metrics::SharedString::const_str("circuit_breaker_state"),
                #[cfg(feature = "metrics")]
                transitions_metric: metrics::SharedString::const_str(
                    "circuit_breaker_transitions_total",
                ),
            },
            classifier: FailOnError,
        }
    }
}

impl Default for CircuitBreakerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// A handle reading this breaker's state.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::circuit_breaker::{CircuitBreakerLayer, CircuitState};
    /// assert_eq!(CircuitBreakerLayer::new().handle().state(), CircuitState::Closed);
    /// ```
    pub fn handle(&self) -> CircuitBreakerHandle {
        CircuitBreakerHandle {
            breaker: self.breaker.clone(),
        }
    }
}

impl<C: Clone> Clone for CircuitBreakerLayer<C> {
    fn clone(&self) -> Self {
        Self {
            breaker: self.breaker.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

impl<C> fmt::Debug for CircuitBreakerLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("name", &self.breaker.name())
            .field("state", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreaker<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker::new(inner, self.breaker.clone(), self.classifier.clone())
    }
}
