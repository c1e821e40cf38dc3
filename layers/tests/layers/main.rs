//! Behaviour tests for every layer (one binary, one module per layer).

mod common;

mod auth;
mod cache;
mod circuit_breaker;
mod concurrency;
mod jwt;
mod metrics;
mod rate_limit;
mod remote_cache;
mod retry;
mod stack;
mod stream;
mod timeout;
