//! Logging set-up (`tracing`), text or JSON.

/// Installs the global `tracing` subscriber: `json` for one JSON object per
/// line, anything else for human-readable text. `RUST_LOG` filters (default `info`).
pub fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if format.eq_ignore_ascii_case("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

use abacus_layers::metrics::prometheus::PrometheusHandle;
use std::sync::OnceLock;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use (every
/// server in the process shares it). `None` if another recorder was
/// installed first by the embedding application.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| match abacus_layers::metrics::prometheus::install() {
            Ok(handle) => {
                start_upkeep(handle.clone());
                Some(handle)
            }
            Err(e) => {
                tracing::warn!(error = %e, "Prometheus metrics disabled");
                None
            }
        })
        .as_ref()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The recorder keeps every histogram sample until it is folded into the
/// buckets by a scrape or an upkeep: without this, a server nobody scrapes
/// grows by 16 bytes a request. A plain thread, so it runs whatever runtime
/// the servers use.
fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("abacus-metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "metrics upkeep thread not started: histograms grow until scraped");
    }
}
