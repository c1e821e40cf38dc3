//! Integration tests of the abacus crate (one binary, one module per area).

mod common;

mod auth;
mod cpu;

mod deploy;
mod examples;
mod external;
mod health;
mod math_agent;
mod outage;
mod persistence;
mod postgres_outage;
mod protocol;
mod rate_limit;
mod readme;
mod slow_clients;
mod storage_faults;
mod websocket;
