//! OpenTelemetry traces, when `[telemetry] otlp_endpoint` is set: one server span per request
//! and a client span for its upstream exchange, continued from the client's W3C `traceparent`
//! (or started) and sent upstream, exported in batches over OTLP/HTTP protobuf.
//!
//! Spans are made with the OpenTelemetry API directly, not through `tracing` (whose every span
//! would then cost on every request): with traces off, a request pays one `Option` check.

mod export;
mod request;

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider,
};
use tollgate_config::TelemetryConfig;

pub use request::{RequestSpan, UpstreamSpan};

/// How long a finished span may wait before its batch is sent.
const EXPORT_EVERY: Duration = Duration::from_secs(1);
/// Longest wait for the collector to take one batch.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Spans waiting for export; more are dropped (counted by the SDK), never queued without bound.
const MAX_QUEUE: usize = 8192;

/// The tracer of one telemetry config, shared across reloads that keep it.
#[derive(Debug)]
pub struct Tracing {
    config: TelemetryConfig,
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

impl Tracing {
    /// The tracer for `config`, exporting with tokio's current runtime; `previous` is kept when
    /// it serves the same config. Must be called within the runtime.
    pub fn reusing(
        config: Option<&TelemetryConfig>,
        previous: Option<&std::sync::Arc<Tracing>>,
    ) -> Option<std::sync::Arc<Tracing>> {
        let config = config?;
        if let Some(previous) = previous.filter(|p| &p.config == config) {
            return Some(previous.clone());
        }
        match Self::new(config) {
            Ok(tracing) => Some(std::sync::Arc::new(tracing)),
            Err(e) => {
                tracing::error!(error = %e, "traces are off: the OTLP exporter could not be built");
                None
            }
        }
    }

    fn new(config: &TelemetryConfig) -> Result<Self, opentelemetry_otlp::ExporterBuildError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(export::OtlpClient::new())
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(config.traces_url.to_string())
            .with_timeout(EXPORT_TIMEOUT)
            .build()?;
        let batches = BatchConfigBuilder::default()
            .with_scheduled_delay(EXPORT_EVERY)
            .with_max_queue_size(MAX_QUEUE)
            .build();
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attributes(
                config
                    .resource
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(
                BatchSpanProcessor::builder(exporter)
                    .with_batch_config(batches)
                    .build(),
            )
            // A client's sampled (or unsampled) traceparent is followed; new traces are
            // recorded at the configured ratio.
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sample_ratio,
            ))))
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("tollgate");
        Ok(Self {
            config: config.clone(),
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
        })
    }

    /// Sends every finished span now (at shutdown, before the process exits). Blocks: call it
    /// off the runtime's threads.
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "spans not exported at shutdown");
        }
    }
}

impl Drop for Tracing {
    fn drop(&mut self) {
        // Shutting down waits for the last export, which runs on the runtime: never block one
        // of its threads (a reload drops the previous tracer on one) for it.
        let provider = self.provider.clone();
        let _ = std::thread::Builder::new()
            .name("tollgate-otel-stop".into())
            .spawn(move || {
                let _ = provider.shutdown();
            });
    }
}
