//! Telemetry for every Minhu process: one `tracing` subscriber (pretty or JSON logs), spans
//! and [`metrics`] exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and the W3C
//! trace context carried in gRPC metadata so that one request is one trace across services.
//!
//! Server spans follow the OpenTelemetry RPC semantic conventions ([`server_span`],
//! [`record_grpc_status`]): `rpc.system`, `rpc.service`, `rpc.method`,
//! `rpc.grpc.status_code`, span status ERROR for the server's own failures, and the
//! authenticated caller (`enduser.id`, `minhu.org.kind`, `minhu.org.id`), never a
//! reporter's personal data.
//!
//! Call [`init`] first thing in `main` and keep the returned [`Telemetry`] until the process
//! ends; [`Telemetry::shutdown`] flushes spans and metrics still buffered.

mod links;
pub mod metrics;
mod propagation;

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    Resource,
    metrics::{PeriodicReader, SdkMeterProvider},
    propagation::TraceContextPropagator,
    trace::SdkTracerProvider,
};
use tracing_subscriber::{EnvFilter, Layer as _, layer::SubscriberExt as _, util::SubscriberInitExt as _};

pub use links::{StoredContext, current_context, link_to, parse_context};
pub use propagation::{
    TraceContextInterceptor, client_span, extract_context, inject_context, inject_span_context, is_server_error,
    record_grpc_status, server_span,
};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    #[default]
    Pretty,
    /// One JSON object a line, for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pretty" | "text" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format `{other}` (expected `pretty` or `json`)")),
        }
    }
}

/// What [`init`] needs to know.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `service.name` on every exported span, e.g. `minhu-dispatch`.
    pub service_name: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// `EnvFilter` directives used when `RUST_LOG` is unset, e.g. `info`.
    pub default_filter: String,
    /// `EnvFilter` directives for the spans exported over OTLP, independent of the log
    /// filter so that quiet logs (`RUST_LOG=warn`) do not switch tracing off.
    pub trace_filter: String,
    /// OTLP/gRPC collector endpoint; `None` disables export (of spans and metrics).
    pub otlp_endpoint: Option<String>,
    /// How often metrics are exported; `None` is the SDK's default (60 s, or the standard
    /// `OTEL_METRIC_EXPORT_INTERVAL` in milliseconds). Tests use a short one.
    pub metrics_interval: Option<Duration>,
}

impl TelemetryConfig {
    /// Reads `MINHU_LOG_FORMAT` (`pretty`|`json`), `MINHU_TRACE_FILTER` (default `info`) and the standard
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; unset or empty values keep the defaults.
    pub fn from_env(service_name: impl Into<String>) -> Result<Self, String> {
        let log_format = match std::env::var("MINHU_LOG_FORMAT") {
            Ok(v) if !v.is_empty() => v.parse().map_err(|e| format!("MINHU_LOG_FORMAT: {e}"))?,
            _ => LogFormat::default(),
        };
        let otlp_endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|v| !v.is_empty());
        let trace_filter =
            std::env::var("MINHU_TRACE_FILTER").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "info".into());
        Ok(Self {
            service_name: service_name.into(),
            log_format,
            default_filter: "info".into(),
            trace_filter,
            otlp_endpoint,
            metrics_interval: None,
        })
    }
}

/// Keeps the tracer provider alive; flush it with [`Telemetry::shutdown`] before exiting.
#[derive(Debug)]
#[must_use = "dropping Telemetry early stops span export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
}

/// Installs the global subscriber and propagator. Must run inside a Tokio runtime when an
/// OTLP endpoint is configured (the exporter's channel is built on it).
///
/// Installing twice in one process (tests) keeps the first subscriber and is not an error.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, opentelemetry_otlp::ExporterBuildError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.default_filter));
    let fmt = match config.log_format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => {
            tracing_subscriber::fmt::layer().json().with_current_span(true).with_writer(std::io::stderr).boxed()
        }
    };

    let (provider, meters) = match &config.otlp_endpoint {
        Some(endpoint) => (
            Some(otlp_provider(&config.service_name, endpoint)?),
            Some(otlp_meters(&config.service_name, endpoint, config.metrics_interval)?),
        ),
        None => (None, None),
    };
    // Each layer has its own filter: what is logged and what is exported are separate choices.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(config.service_name.clone()))
            .with_filter(EnvFilter::new(&config.trace_filter))
    });

    // `try_init` fails only when a subscriber is already set (several services, one test
    // process); the first one wins and keeps exporting.
    let _ = tracing_subscriber::registry().with(fmt.with_filter(filter)).with(otel).try_init();
    if let Some(p) = &provider {
        opentelemetry::global::set_tracer_provider(p.clone());
    }
    if let Some(m) = &meters {
        opentelemetry::global::set_meter_provider(m.clone());
    }
    Ok(Telemetry { provider, meters })
}

fn otlp_meters(
    service_name: &str,
    endpoint: &str,
    interval: Option<Duration>,
) -> Result<SdkMeterProvider, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::MetricExporter::builder().with_tonic().with_endpoint(endpoint).build()?;
    let mut reader = PeriodicReader::builder(exporter);
    if let Some(interval) = interval {
        reader = reader.with_interval(interval);
    }
    Ok(SdkMeterProvider::builder()
        .with_reader(reader.build())
        .with_resource(Resource::builder().with_service_name(service_name.to_owned()).build())
        .build())
}

fn otlp_provider(
    service_name: &str,
    endpoint: &str,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint).build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service_name.to_owned()).build())
        .build())
}

impl Telemetry {
    /// Exports the spans ended so far (and the metrics as they are now) and waits for the
    /// collector to take them; a no-op
    /// without an OTLP endpoint. Blocking, like [`shutdown`](Self::shutdown): call it off
    /// the runtime's worker threads (`spawn_blocking`, `block_in_place`), since the
    /// exporter's channel needs the runtime to make progress meanwhile.
    pub fn flush(&self) -> Result<(), opentelemetry_sdk::error::OTelSdkError> {
        // Both, even when one fails: a collector without a metrics pipeline still gets spans.
        let metrics = self.meters.as_ref().map_or(Ok(()), SdkMeterProvider::force_flush);
        let spans = self.provider.as_ref().map_or(Ok(()), SdkTracerProvider::force_flush);
        spans.and(metrics)
    }

    /// Flushes buffered spans and stops the exporter. Blocking, so run it off the runtime's
    /// worker threads (e.g. in `spawn_blocking`) at the very end of `main`.
    pub fn shutdown(self) {
        if let Some(meters) = self.meters
            && let Err(error) = meters.shutdown()
        {
            eprintln!("telemetry: flushing metrics failed: {error}");
        }
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            eprintln!("telemetry: flushing spans failed: {error}");
        }
    }
}
