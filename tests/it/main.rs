//! Integration tests of the abacus crate (one binary, one module per area).

mod common;

mod auth;
mod bindings;
mod card_sign;
mod cli;
mod client;
mod cpu;

mod deploy;
mod event_log;
mod examples;
mod external;
mod grpc;
mod health;
mod interop;
mod jwt;
mod llm;
mod math_agent;
mod otel;
mod outage;
mod ownership;
mod persistence;
mod playground;
mod postgres_outage;
mod protocol;
mod push;
mod rate_limit;
mod readme;
mod redis_cache;
mod replicas;
mod slow_clients;
mod storage_faults;
mod tls;
mod websocket;
