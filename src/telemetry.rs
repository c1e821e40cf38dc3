//! Logging set-up (`tracing`), text or JSON, and the metrics recorder.

/// Installs the process-wide `tracing` subscriber: logs in `format`
/// (`json` or text) filtered by `RUST_LOG` (default `info`), without ANSI
/// colours unless stdout is a terminal, and the OpenTelemetry exporter of
/// [`crate::otel`] when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (call it inside
/// a Tokio runtime for that). The trace spans never reach the logs.
pub fn init_logging(format: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let filter = match format!("{}=off", crate::otel::TARGET).parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let ansi = std::io::stdout().is_terminal();
    let json = format.eq_ignore_ascii_case("json");
    let Some(otel) = otel_layer() else {
        // Without an exporter, one global filter: callsites it disables
        // cost nothing (per-layer filters would ask at every event).
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi);
        let _ = if json {
            builder.json().try_init()
        } else {
            builder.try_init()
        };
        return;
    };
    let fmt = tracing_subscriber::fmt::layer().with_ansi(ansi);
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(otel)
        .with(fmt.with_filter(filter))
        .try_init();
}

type OtelLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// The exporter's layer, or none (off, or misconfigured: said on stderr,
/// as the logger does not exist yet).
fn otel_layer() -> Option<OtelLayer> {
    #[cfg(feature = "otel")]
    match crate::otel::layer() {
        Ok(layer) => layer,
        Err(e) => {
            eprintln!("abacus: traces are not exported: {e}");
            None
        }
    }
    #[cfg(not(feature = "otel"))]
    None
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
