//! The deployment manifests against the real `abacus` binary.
//!
//! Parses every YAML document under `deploy/k8s/*.yaml`,
//! `deploy/prometheus/*.yml` and `docker-compose.yml` (and
//! `deploy/nginx/nginx.conf`), collects every probe path and port, container
//! port, Service target port, scrape endpoint, environment variable and
//! alert-rule metric they reference, then checks each against the binary:
//! its `--help` (flags, defaults, environment variables) and a running
//! `abacus serve` (probe paths answer 200, `/metrics` answers on both
//! listeners and exposes every metric the alerts use). On docker compose
//! every abacus replica service is checked, and nginx's upstreams against
//! them. The Grafana dashboard (`deploy/grafana/abacus.json`) is checked as
//! a dashboard, its every query against the running binary's `/metrics`, and
//! its provisioning against docker compose (`dashboard.rs`).

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The container (k8s) that runs abacus; also the image name, and the name
/// prefix, of the compose replica services.
const CONTAINER: &str = "abacus";
/// The metrics listener's port everywhere in the docs (README, Dockerfile `EXPOSE`).
const METRICS_PORT: u16 = 8090;
/// Set in the manifests but not read through clap: the logging filter reads it.
const EXEMPT_ENV: &[&str] = &["RUST_LOG"];
/// Metrics the alerts use that Prometheus itself produces.
const EXEMPT_METRICS: &[&str] = &["up"];

mod binary;
mod checks;
mod dashboard;
mod manifests;
mod nginx;
mod promql;
