//! The core service: one `tower::Service<A2ARequest>` implementing every
//! A2A v1.0 operation, for every binding, on top of an [`Agent`](crate::agent::Agent)
//! and a [`TaskStore`](crate::store::TaskStore).

mod bus;
mod log;
mod replica;
pub(crate) mod running;
mod service;
mod stream;

pub use service::{Core, CoreBuilder};
