//! A metric key whose handle can be registered once and kept.
//!
//! Registering looks the key up in the recorder (a hash and a map read)
//! on every use; a kept handle is one atomic operation. Keeping is right
//! with one global recorder, wrong where a test swaps thread-local
//! recorders under the same layer (the first would keep the counts), so the
//! layers make it opt-in (`keep_handles`).

use std::sync::OnceLock;

#[cfg(any(feature = "cache", feature = "rate-limit", feature = "remote-cache"))]
use metrics::Counter;
#[cfg(feature = "concurrency")]
use metrics::Histogram;
use metrics::{Key, Level, Metadata};

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// A counter's key and, once used with keeping on, its handle.
#[cfg(any(feature = "cache", feature = "rate-limit", feature = "remote-cache"))]
#[derive(Clone)]
pub(crate) struct KeptCounter {
    key: Key,
    kept: OnceLock<Counter>,
}

#[cfg(any(feature = "cache", feature = "rate-limit", feature = "remote-cache"))]
impl KeptCounter {
    pub(crate) fn new(key: Key) -> Self {
        Self {
            key,
            kept: OnceLock::new(),
        }
    }

    #[inline]
    pub(crate) fn increment(&self, keep: bool, n: u64) {
        if keep {
            self.kept
                .get_or_init(|| register_counter(&self.key))
                .increment(n);
        } else {
            register_counter(&self.key).increment(n);
        }
    }
}

/// A histogram's key and, once used with keeping on, its handle.
#[cfg(feature = "concurrency")]
#[derive(Clone)]
pub(crate) struct KeptHistogram {
    key: Key,
    kept: OnceLock<Histogram>,
}

#[cfg(feature = "concurrency")]
impl KeptHistogram {
    pub(crate) fn new(key: Key) -> Self {
        Self {
            key,
            kept: OnceLock::new(),
        }
    }

    #[inline]
    pub(crate) fn record(&self, keep: bool, value: f64) {
        if keep {
            self.kept
                .get_or_init(|| register_histogram(&self.key))
                .record(value);
        } else {
            register_histogram(&self.key).record(value);
        }
    }
}

#[cfg(any(feature = "cache", feature = "rate-limit", feature = "remote-cache"))]
fn register_counter(key: &Key) -> Counter {
    metrics::with_recorder(|r| r.register_counter(key, &METADATA))
}

#[cfg(feature = "concurrency")]
fn register_histogram(key: &Key) -> Histogram {
    metrics::with_recorder(|r| r.register_histogram(key, &METADATA))
}
