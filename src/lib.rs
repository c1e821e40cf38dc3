//! # abacus
//!
//! A fast A2A v1.0 agent server framework: hyper serves a tower stack of
//! reusable layers (`abacus-layers`) around one core
//! `Service<A2ARequest>` that runs your [`Agent`](agent::Agent).
//! The flagship agent is a math agent.
//!
//! ```no_run
//! use abacus::agent::{Agent, RequestContext, TaskUpdater};
//! use abacus::protocol::types::{A2AError, Part};
//!
//! struct Echo;
//!
//! #[async_trait::async_trait]
//! impl Agent for Echo {
//!     async fn execute(&self, ctx: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
//!         up.add_artifact(vec![Part::text(ctx.text())]).await?;
//!         up.complete(None).await
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let card = abacus::card::CardBuilder::new("echo", "echoes text").build();
//! abacus::Server::new(Echo, card).run().await
//! # }
//! ```
#![deny(missing_docs)]

pub mod agent;
pub mod auth;
pub mod card;
pub mod client;
pub mod config;
pub mod core;
pub mod cpu;
pub mod external;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
pub mod grpc;
pub mod health;
pub mod http;
pub mod llm;
pub mod math;
pub mod otel;
pub mod protocol;
pub mod push;
mod server;
pub mod stack;
pub mod store;
pub mod telemetry;

pub use server::Server;
