use std::time::Duration;

use bytes::Bytes;

/// A request to the remote store of a [`RemoteCache`](super::RemoteCache).
///
/// The store is any `tower::Service<RemoteOp, Response = Option<Bytes>>`:
/// [`Get`](Self::Get) answers the stored value (`None`: absent),
/// [`Set`](Self::Set) answers `None`. Its error type is free: every error
/// is a miss (or a lost write) to the layer.
///
/// # Example
///
/// ```
/// use abacus_layers::remote_cache::RemoteOp;
/// use bytes::Bytes;
/// use std::time::Duration;
///
/// let set = RemoteOp::Set { key: "k".into(), value: Bytes::from_static(b"v"), ttl: Duration::from_secs(60) };
/// assert_eq!(set.key(), "k");
/// assert_eq!(RemoteOp::Get("k".into()).key(), "k");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteOp {
    /// Read the value stored under the key.
    Get(String),
    /// Store `value` under `key` for `ttl`.
    Set {
        /// The key.
        key: String,
        /// The encoded response.
        value: Bytes,
        /// How long the store should keep it.
        ttl: Duration,
    },
}

impl RemoteOp {
    /// The key the operation reads or writes.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::remote_cache::RemoteOp;
    /// assert_eq!(RemoteOp::Get("answer".into()).key(), "answer");
    /// ```
    pub fn key(&self) -> &str {
        match self {
            RemoteOp::Get(key) | RemoteOp::Set { key, .. } => key,
        }
    }
}

// The store's answer never streams: a store wrapped in the timeout layer (or
// any stream-aware layer) needs these.
crate::unary_response!(Option<Bytes>);
