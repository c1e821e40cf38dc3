//! The HTTP adapter: hyper serving the tower stack directly.
//!
//! `POST /` carries JSON-RPC (SSE for the streaming methods), the agent card
//! lives at `/.well-known/agent-card.json`, and extra `GET` routes (health,
//! metrics) are plugged in by the server. Everything else is 404 or 405.

mod body;
mod router;
mod server;
mod sse;
pub mod ws;

pub use body::ResponseBody;
pub use router::{rpc_error_for, rpc_error_for_ref, GetRoute, HttpApp, HttpOptions};
pub use server::{serve, shutdown_signal};
