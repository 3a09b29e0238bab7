//! Logging and request tracing.
//!
//! Human-readable output by default; one JSON object per line with `LOG_FORMAT=json`
//! (what the Kubernetes manifests set). `RUST_LOG` filters as usual. With
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are also exported with OTLP
//! ([`crate::otlp`]) and carry W3C trace context across services
//! ([`crate::trace_context`]); without it, no span leaves the process.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnBodyChunk, DefaultOnEos, MakeSpan, OnResponse, TraceLayer};
use tracing::field::{Field, Visit};
use tracing::{Span, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The exporting provider, kept to flush its last spans when the service stops.
static SPAN_EXPORT: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans go anywhere (an exporter, or a recorder in tests): set by [`span_layer`].
static SPANS_WANTED: AtomicBool = AtomicBool::new(false);

/// Whether a request deserves a span of its own. Only when spans are exported: a log line
/// gets the request's id from [`crate::request_id`] anyway ([`WithRequestId`]), and a
/// span per request costs a tenth of a `currentuser` request (`make bench`).
pub fn request_spans() -> bool {
    SPANS_WANTED.load(Ordering::Relaxed)
}

/// Installs the global subscriber. Call once, first thing in `main` (inside the runtime).
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{service}=info,common=info")));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let lines = if json {
        let format = tracing_subscriber::fmt::format()
            .with_target(true)
            .json()
            .flatten_event(true)
            .with_current_span(true);
        tracing_subscriber::fmt::layer()
            .event_format(WithRequestId::json(format))
            .fmt_fields(JsonSpanFields)
            .boxed()
    } else {
        let format = tracing_subscriber::fmt::format()
            .with_target(true)
            .compact();
        tracing_subscriber::fmt::layer()
            .event_format(WithRequestId::text(format))
            .boxed()
    };
    let (spans, export_error) = match crate::otlp::provider_from_env(service) {
        Ok(Some(provider)) => {
            let layer = span_layer(&provider, service);
            let _ = SPAN_EXPORT.set(provider);
            (Some(layer), None)
        }
        Ok(None) => (None, None),
        Err(err) => (None, Some(err)),
    };
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(spans)
        .try_init();
    if let Err(err) = result {
        // Only possible when something else already installed one, e.g. in tests.
        tracing::debug!(error = %err, "tracing subscriber already installed");
    }
    if let Some(err) = export_error {
        tracing::warn!(error = format!("{err:#}"), "spans will not be exported");
    }
}

/// A layer giving tracing's spans OpenTelemetry ids and handing them to `provider` when
/// they end: the OTLP exporter in a service, a recorder in tests.
pub fn span_layer<S>(provider: &SdkTracerProvider, service: &str) -> impl Layer<S> + use<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    SPANS_WANTED.store(true, Ordering::Relaxed);
    tracing_opentelemetry::layer().with_tracer(provider.tracer(service.to_owned()))
}

/// Sends the spans still waiting in the exporter's batch. Called when a service stops.
pub async fn flush_spans() {
    let Some(provider) = SPAN_EXPORT.get().cloned() else {
        return;
    };
    // Blocks until the exporter's thread has sent them, through this runtime.
    if let Ok(Err(err)) = tokio::task::spawn_blocking(move || provider.force_flush()).await {
        tracing::debug!(error = %err, "flushing spans failed");
    }
}

/// Installs a quiet subscriber for tests; `RUST_LOG` turns it up. Safe to call repeatedly.
pub fn init_for_tests() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// As [`crate::observe`] for the services, as tower-http layers (the web client): a span
/// per request ([`request_span`]) and one line when it ends ([`log_finished`]). A 5xx is
/// logged once, on that line with its cause (`error::ErrorCause`); tower-http's own
/// "response failed" line is off.
pub fn http_trace_layer() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    (),
    RecordResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    (),
> {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(RecordResponse)
        .on_failure(())
}

#[derive(Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let request_id = request
            .headers()
            .get(crate::request_id::HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        request_span(request, request_id)
    }
}

/// The span of one request: method, path, route pattern and request id, continuing the
/// caller's trace if it sent a `traceparent`.
pub fn request_span<B>(request: &Request<B>, request_id: &str) -> Span {
    // The matched route (`/api/tickets/{id}`) groups requests; the raw path is kept too.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("");
    let span = tracing::info_span!(
        "request",
        // Plain strings, not `Display`: recorded without the formatting machinery.
        method = request.method().as_str(),
        path = request.uri().path(),
        route,
        request_id,
    );
    let traceparent = request
        .headers()
        .get(crate::trace_context::HEADER)
        .and_then(|value| value.to_str().ok());
    crate::trace_context::continue_from(&span, traceparent);
    span
}

#[derive(Clone, Copy)]
pub struct RecordResponse;

impl<B> OnResponse<B> for RecordResponse {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
        log_finished(response.status(), latency, None, cause_of(response));
    }
}

/// The cause an [`crate::error::ApiError`] put on its response, if any.
pub fn cause_of<B>(response: &Response<B>) -> Option<&str> {
    response
        .extensions()
        .get::<crate::error::ErrorCause>()
        .map(|cause| &*cause.0)
}

/// What a finished request's line says about the request when it has no span to say it.
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    pub route: &'a str,
    pub path: &'a str,
}

/// The line each finished request leaves. Successful requests are the bulk of the
/// traffic and are counted by the metrics anyway, so their line is at debug
/// (`RUST_LOG=debug` shows it): formatting and writing a line per request costs more than
/// answering `currentuser` (`make bench`). Client errors are at info, server errors a
/// warning with their cause (`error`), a 500 an error: the one line a failure leaves.
/// Status and latency go on this line, not on the span: recording a field on a
/// span re-parses and re-writes all its fields in the JSON format. `request` names the
/// request when the line is not inside its span (the values are only read when the line
/// is written).
pub fn log_finished(
    status: axum::http::StatusCode,
    latency: Duration,
    request: Option<RequestLine<'_>>,
    cause: Option<&str>,
) {
    let latency_ms = latency.as_millis() as u64;
    let code = status.as_u16();
    let method = request.map(|r| r.method);
    let route = request.map(|r| r.route);
    let path = request.map(|r| r.path);
    // One line, at a level that depends on the status: tracing's levels are constants.
    macro_rules! finished {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                status = code,
                latency_ms,
                method,
                route,
                path,
                error = cause,
                $message
            )
        };
    }
    if status == axum::http::StatusCode::INTERNAL_SERVER_ERROR {
        finished!(error, "request failed");
    } else if status.is_server_error() {
        finished!(warn, "request failed");
    } else if status.is_client_error() {
        finished!(info, "request finished");
    } else {
        finished!(debug, "request finished");
    }
}

/// An event format that puts the current request's id ([`crate::request_id::current`])
/// on every line written while the request is handled, span or not: first in the JSON
/// object, or in front of the text line.
pub struct WithRequestId<F> {
    inner: F,
    json: bool,
}

impl<F> WithRequestId<F> {
    pub fn json(inner: F) -> Self {
        Self { inner, json: true }
    }

    pub fn text(inner: F) -> Self {
        Self { inner, json: false }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let Some(id) = crate::request_id::current() else {
            return self.inner.format_event(ctx, writer, event);
        };
        if !self.json {
            write!(writer, "request_id={id} ")?;
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => {
                let mut object = JsonObject(String::from("{"));
                object.0.push_str("\"request_id\":");
                object.string(&id);
                if !rest.starts_with('}') {
                    object.0.push(',');
                }
                writer.write_str(&object.0)?;
                writer.write_str(rest)
            }
            None => writer.write_str(&line),
        }
    }
}

/// The JSON form of span fields, written straight into the string the fmt layer keeps
/// per span (tracing-subscriber's own builds a map of JSON values first, for every span
/// of every request: more than the rest of a `currentuser` request's logging, `make
/// bench`). The same object as its: strings and `Debug` values as strings, numbers and
/// booleans as they are; a field recorded again is appended, and the last one read wins.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSpanFields;

impl<'writer> FormatFields<'writer> for JsonSpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut object = JsonObject(String::from("{"));
        fields.record(&mut object);
        object.0.push('}');
        writer.write_str(&object.0)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut object = JsonObject(match current.fields.strip_suffix('}') {
            Some(open) => open.to_owned(),
            None => String::from("{"),
        });
        fields.record(&mut object);
        object.0.push('}');
        current.fields = object.0;
        Ok(())
    }
}

/// A JSON object being written, without its closing brace.
struct JsonObject(String);

impl JsonObject {
    fn key(&mut self, field: &Field) {
        if !self.0.ends_with('{') {
            self.0.push(',');
        }
        self.string(field.name());
        self.0.push(':');
    }

    fn string(&mut self, value: &str) {
        // Serializing a string into a String cannot fail.
        if let Ok(quoted) = serde_json::to_string(value) {
            self.0.push_str(&quoted);
        }
    }
}

impl Visit for JsonObject {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        self.string(value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        self.string(&format!("{value:?}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        self.0.push_str(&value.to_string());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        self.0.push_str(&value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.0.push_str(if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        match serde_json::Number::from_f64(value) {
            Some(number) => self.0.push_str(&number.to_string()),
            None => self.string(&value.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Log lines written to memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn span_fields_are_the_json_object_of_each_line() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .fmt_fields(JsonSpanFields)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "request",
                route = "/api/\"quoted\"\n",
                n = 7_u64,
                neg = -3_i64,
                ok = true,
                ratio = 0.5,
                debug = ?Some(1),
                later = tracing::field::Empty,
            );
            span.record("later", "set");
            span.in_scope(|| tracing::info!("inside"));
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(
            line["span"],
            serde_json::json!({
                "name": "request",
                "route": "/api/\"quoted\"\n",
                "n": 7,
                "neg": -3,
                "ok": true,
                "ratio": 0.5,
                "debug": "Some(1)",
                "later": "set",
            }),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_line_written_while_handling_a_request_carries_its_id_without_a_span() {
        let lines = Lines::default();
        let writer = lines.clone();
        let format = tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            .with_current_span(true);
        let subscriber = tracing_subscriber::fmt()
            .event_format(WithRequestId::json(format))
            .fmt_fields(JsonSpanFields)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        crate::request_id::scope(Some("purchase-7".into()), async {
            tracing::info!(n = 1, "inside");
        })
        .await;
        tracing::info!(n = 2, "outside");
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["request_id"], "purchase-7", "{text}");
        assert_eq!(lines[0]["n"], 1, "{text}");
        assert!(lines[1].get("request_id").is_none(), "{text}");
        assert_eq!(lines[1]["n"], 2, "{text}");
    }
}
