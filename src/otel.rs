//! OpenTelemetry traces: an OTLP exporter behind the `tracing` spans, and
//! W3C trace context (`traceparent`, `tracestate`) read from every incoming
//! request and sent on every outbound call.
//!
//! Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; then the standard variables
//! apply: `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, the default,
//! `http/json` or `grpc`), `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_SERVICE_NAME` (default `abacus`),
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_SCHEDULE_DELAY` and friends. Built
//! on the `opentelemetry-otlp` and `tracing-opentelemetry` crates (cargo
//! feature `otel`, on by default); without the feature every function here
//! is a no-op, so callers need no `cfg`.
//!
//! The spans are ordinary `tracing` spans of target [`TARGET`] (the request,
//! the agent's work, store writes) with the decisions of the layers (shed,
//! timed out, cache hit, breaker open) as events in them; the log output
//! leaves that target out, so tracing costs the logs nothing.
//!
//! ```
//! // Outbound: the current span's context as `traceparent`.
//! let mut headers = http::HeaderMap::new();
//! abacus::otel::inject(&mut headers);
//! // Without an exporter (or a current span) nothing is added.
//! assert!(headers.get("traceparent").is_none());
//! ```

/// The `tracing` target of the spans and events exported as traces.
pub const TARGET: &str = "abacus::otel";

#[cfg(feature = "otel")]
mod enabled {
    use super::TARGET;
    use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;
    use std::sync::OnceLock;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

    /// Whether the standard variables ask for an exporter.
    pub(crate) fn configured() -> bool {
        [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
    }

    /// The protocol of `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` or
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`; `http/protobuf` when neither is set.
    fn protocol() -> Result<Protocol, String> {
        let value = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_else(|_| "http/protobuf".into());
        match value.trim() {
            "http/protobuf" => Ok(Protocol::HttpBinary),
            "http/json" => Ok(Protocol::HttpJson),
            "grpc" => Ok(Protocol::Grpc),
            other => Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other:?}: expected grpc, http/protobuf or http/json"
            )),
        }
    }

    /// The layer that turns spans of [`TARGET`] into exported traces, if
    /// configured. Must be called inside a Tokio runtime: the exporter's
    /// HTTP client and gRPC channel run on it.
    pub(crate) fn layer<S>(
    ) -> Result<Option<Box<dyn tracing_subscriber::Layer<S> + Send + Sync>>, String>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
    {
        use tracing_subscriber::Layer as _;
        if !configured() {
            return Ok(None);
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "OpenTelemetry export needs a Tokio runtime".to_string())?;
        let exporter = match protocol()? {
            Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_protocol(Protocol::Grpc)
                .build(),
            http => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(http)
                .with_http_client(client::OnRuntime::new(runtime))
                .build(),
        }
        .map_err(|e| format!("OpenTelemetry exporter: {e}"))?;
        let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "abacus".into());
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service).build())
            .build();
        let tracer = provider.tracer("abacus");
        let _ = PROVIDER.set(provider);
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let only_ours =
            tracing_subscriber::filter::Targets::new().with_target(TARGET, tracing::Level::TRACE);
        Ok(Some(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(only_ours)
                .boxed(),
        ))
    }

    /// Exports what is still buffered; called once at shutdown.
    pub(crate) fn shutdown() {
        if let Some(p) = PROVIDER.get() {
            let _ = p.force_flush();
            let _ = p.shutdown();
        }
    }

    struct Headers<'h>(&'h http::HeaderMap);

    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(http::HeaderName::as_str).collect()
        }
    }

    struct HeadersMut<'h>(&'h mut http::HeaderMap);

    impl Injector for HeadersMut<'_> {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(key.as_bytes()),
                http::HeaderValue::from_str(&value),
            ) {
                self.0.insert(k, v);
            }
        }
    }

    pub(crate) fn set_parent(span: &tracing::Span, headers: &http::HeaderMap) {
        if PROVIDER.get().is_none() || !headers.contains_key("traceparent") {
            return;
        }
        let cx = TraceContextPropagator::new().extract(&Headers(headers));
        let _ = span.set_parent(cx);
    }

    pub(crate) fn inject(headers: &mut http::HeaderMap) {
        if PROVIDER.get().is_none() {
            return;
        }
        let cx = tracing::Span::current().context();
        TraceContextPropagator::new().inject_context(&cx, &mut HeadersMut(headers));
    }

    /// The exporter's HTTP client: our hyper-util client, each export run
    /// on the server's runtime. The SDK's batch processor exports from a
    /// thread of its own, outside any runtime, where hyper cannot start
    /// connections; `opentelemetry-http`'s clients are reqwest (a second
    /// HTTP stack) or hyper with the same constraint.
    mod client {
        use bytes::Bytes;
        use http_body_util::{BodyExt, Full, Limited};
        use hyper_util::client::legacy::{connect::HttpConnector, Client};
        use hyper_util::rt::TokioExecutor;
        use opentelemetry_http::{HttpClient, HttpError};

        /// Largest collector answer read (the OTLP answers are tiny).
        const MAX_RESPONSE: usize = 1 << 20;

        pub(super) struct OnRuntime {
            runtime: tokio::runtime::Handle,
            client: Client<HttpConnector, Full<Bytes>>,
        }

        impl OnRuntime {
            pub(super) fn new(runtime: tokio::runtime::Handle) -> Self {
                let client = Client::builder(TokioExecutor::new()).build_http();
                OnRuntime { runtime, client }
            }
        }

        impl std::fmt::Debug for OnRuntime {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("OnRuntime")
            }
        }

        #[async_trait::async_trait]
        impl HttpClient for OnRuntime {
            async fn send_bytes(
                &self,
                request: http::Request<Bytes>,
            ) -> Result<http::Response<Bytes>, HttpError> {
                let client = self.client.clone();
                let (parts, body) = request.into_parts();
                let request = http::Request::from_parts(parts, Full::new(body));
                let task = self.runtime.spawn(async move {
                    let response = client.request(request).await?;
                    let (parts, body) = response.into_parts();
                    let body = Limited::new(body, MAX_RESPONSE).collect().await?.to_bytes();
                    Ok::<_, HttpError>(http::Response::from_parts(parts, body))
                });
                task.await?
            }
        }
    }
}

/// A layer's decision (`shed`, `timed_out`, `cache_hit`, `breaker_open`,
/// `rate_limited`) as an event of the current span: the request's, in the
/// trace (nothing when tracing is off).
pub(crate) fn decision(what: &'static str) {
    tracing::info!(target: TARGET, decision = what, "a2a.layer");
}

/// The layer exporting the [`TARGET`] spans when `OTEL_EXPORTER_OTLP_ENDPOINT`
/// is set (else `None`); an error names a bad protocol or exporter setting.
#[cfg(feature = "otel")]
pub(crate) use enabled::layer;

/// Flushes and stops the exporter (at shutdown; a no-op when off).
pub fn shutdown() {
    #[cfg(feature = "otel")]
    enabled::shutdown();
}

/// Whether traces are exported: `OTEL_EXPORTER_OTLP_ENDPOINT` or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and the feature is on).
///
/// ```
/// let _on = abacus::otel::configured();
/// ```
pub fn configured() -> bool {
    #[cfg(feature = "otel")]
    return enabled::configured();
    #[cfg(not(feature = "otel"))]
    false
}

/// Makes `span` the child of the caller's trace when `headers` carry a
/// `traceparent` (and tracing is on).
///
/// ```
/// let span = tracing::info_span!(target: abacus::otel::TARGET, "a2a.request");
/// abacus::otel::set_parent(&span, &http::HeaderMap::new());
/// ```
pub fn set_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    #[cfg(feature = "otel")]
    enabled::set_parent(span, headers);
    #[cfg(not(feature = "otel"))]
    let _ = (span, headers);
}

/// Adds `traceparent` / `tracestate` of the current span to an outbound
/// request's `headers` (when tracing is on).
pub fn inject(headers: &mut http::HeaderMap) {
    #[cfg(feature = "otel")]
    enabled::inject(headers);
    #[cfg(not(feature = "otel"))]
    let _ = headers;
}

/// The current span's context as `(traceparent, tracestate)`, to keep with
/// work done later, such as a webhook waiting in the outbox; `(None, None)`
/// when tracing is off.
///
/// ```
/// assert_eq!(abacus::otel::current_context(), (None, None));
/// ```
pub fn current_context() -> (Option<String>, Option<String>) {
    let mut headers = http::HeaderMap::new();
    inject(&mut headers);
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    (text("traceparent"), text("tracestate"))
}

/// Makes `span` the child of a context kept by [`current_context`]: a
/// bad or missing `traceparent` leaves `span` a root.
///
/// ```
/// let span = tracing::info_span!(target: abacus::otel::TARGET, "push.deliver");
/// abacus::otel::set_parent_from(&span, Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), None);
/// ```
pub fn set_parent_from(span: &tracing::Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    let Some(parent) = traceparent.and_then(|v| http::HeaderValue::from_str(v).ok()) else {
        return;
    };
    let mut headers = http::HeaderMap::with_capacity(2);
    headers.insert("traceparent", parent);
    if let Some(state) = tracestate.and_then(|v| http::HeaderValue::from_str(v).ok()) {
        headers.insert("tracestate", state);
    }
    set_parent(span, &headers);
}
