//! Spans recorded in memory, so a test can follow the trace the services make.
//!
//! [`install`] sets the test process's global subscriber once: log lines at `RUST_LOG`
//! (warnings by default) as test output, and every span at info or above recorded with
//! its OpenTelemetry ids, exported the moment it ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Every span that ended since [`install`].
#[derive(Debug, Clone, Default)]
pub struct SpanRecorder(Arc<Mutex<Vec<SpanData>>>);

/// A recorded span: its name, its trace and its fields.
#[derive(Debug, Clone)]
pub struct RecordedSpan {
    pub name: String,
    pub trace_id: String,
    pub attributes: HashMap<String, String>,
}

impl SpanExporter for SpanRecorder {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

impl SpanRecorder {
    /// The spans of the trace `trace_id` (32 hex digits).
    pub fn trace(&self, trace_id: &str) -> Vec<RecordedSpan> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|span| span.span_context.trace_id().to_string() == trace_id)
            .map(|span| RecordedSpan {
                name: span.name.to_string(),
                trace_id: trace_id.to_owned(),
                attributes: span
                    .attributes
                    .iter()
                    .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                    .collect(),
            })
            .collect()
    }
}

/// Installs the global subscriber (once per process) and returns the recorder.
pub fn install() -> SpanRecorder {
    static INSTALLED: OnceLock<(SpanRecorder, SdkTracerProvider)> = OnceLock::new();
    let (recorder, _) = INSTALLED.get_or_init(|| {
        let recorder = SpanRecorder::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(recorder.clone())
            .build();
        let lines = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()));
        let spans = common::telemetry::span_layer(&provider, "test").with_filter(LevelFilter::INFO);
        let _ = tracing_subscriber::registry()
            .with(lines)
            .with(spans)
            .try_init();
        (recorder, provider)
    });
    recorder.clone()
}
