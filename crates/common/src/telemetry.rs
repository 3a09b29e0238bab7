//! Logging and request tracing.
//!
//! Human-readable output by default; one JSON object per line with `LOG_FORMAT=json`
//! (what the Kubernetes manifests set). `RUST_LOG` filters as usual.

use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnBodyChunk, DefaultOnEos, MakeSpan, OnResponse, TraceLayer};
use tracing::Span;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{service}=info,common=info")));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.compact().try_init()
    };
    if let Err(err) = result {
        // Only possible when something else already installed one, e.g. in tests.
        tracing::debug!(error = %err, "tracing subscriber already installed");
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

/// A span per request with method, path, route and request id, and one line with the
/// status and latency when it ends
/// (see [`RecordResponse`] for its level). A 5xx is logged once, at error level with its cause, where it is made
/// (`error::ApiError`); here it is a warning line like any other finished request, and
/// tower-http's own "response failed" line is off.
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
        // The matched route (`/api/tickets/{id}`) groups requests; the raw path is kept too.
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str)
            .unwrap_or("");
        let request_id = request
            .headers()
            .get(crate::request_id::HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            route,
            request_id,
        )
    }
}

#[derive(Clone, Copy)]
pub struct RecordResponse;

/// The line each finished request leaves. Successful requests are the bulk of the traffic
/// and are counted by the metrics anyway, so their line is at debug (`RUST_LOG=debug`
/// shows it): formatting and writing a line per request costs more than answering
/// `currentuser` (`make bench`). Client errors are at info, server errors a warning.
impl<B> OnResponse<B> for RecordResponse {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
        // Status and latency go on this line, not on the span: recording a field on a
        // span re-parses and re-writes all its fields in the JSON format.
        let status = response.status().as_u16();
        let latency_ms = latency.as_millis() as u64;
        if response.status().is_server_error() {
            tracing::warn!(status, latency_ms, "request failed");
        } else if response.status().is_client_error() {
            tracing::info!(status, latency_ms, "request finished");
        } else {
            tracing::debug!(status, latency_ms, "request finished");
        }
    }
}
