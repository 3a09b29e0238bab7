//! Metrics in the Prometheus text format at `GET /metrics` on each service's port.
//!
//! The services' ports are reached from outside only through the ingress, which routes
//! `/api/<service>` prefixes alone, so `/metrics` stays inside the cluster. Names:
//! `http_requests_total` and `http_request_duration_seconds` per route and status class;
//! `events_handled_total` (by consumer and outcome), `event_handle_duration_seconds`,
//! `events_dead_lettered_total`, `events_pending`; `outbox_events_published_total`,
//! `outbox_pending_events`, `outbox_oldest_event_age_seconds`; and each service's business counters (`orders_total` by
//! outcome, `payments_total`, `revenue_cents_total`, `refunds_total`,
//! `stripe_request_duration_seconds`, `expiration_lateness_seconds`,
//! `auth_hashes_in_progress`; notifications' `emails_sent_total`, `emails_failed_total`,
//! `emails_suppressed_total` and `emails_possibly_lost_total` by template,
//! `email_send_duration_seconds`, `email_template_cache_total`).

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::{Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: 1 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder, labelling every series with `service`. Call once,
/// first thing in `main` (tests get an unlabelled one from [`router`]).
pub fn install(service: &str) {
    HANDLE.get_or_init(|| build(Some(service)));
}

fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get_or_init(|| build(None)).as_ref()
}

fn build(service: Option<&str>) -> Option<PrometheusHandle> {
    let mut builder = PrometheusBuilder::new();
    if let Some(service) = service {
        builder = builder.add_global_label("service", service);
    }
    let installed = builder
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(PrometheusBuilder::install_recorder);
    match installed {
        Ok(handle) => Some(handle),
        Err(err) => {
            tracing::warn!(error = %err, "metrics recorder not installed");
            None
        }
    }
}

/// `GET /metrics`.
pub fn router() -> Router {
    let handle = handle().cloned();
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                let body = handle.map(|h| {
                    h.run_upkeep();
                    h.render()
                });
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    body.unwrap_or_default(),
                )
                    .into_response()
            }
        }),
    )
}

/// Counts a finished request and its latency by route (the pattern, not the path:
/// bounded labels), method and status class.
pub fn record_request(
    route: Option<&MatchedPath>,
    method: &Method,
    status: StatusCode,
    latency: Duration,
) {
    let route = route.map_or("unmatched", MatchedPath::as_str);
    let (requests, duration) = request_series(route, method_label(method), status_class(status));
    requests.increment(1);
    duration.record(latency.as_secs_f64());
}

/// The two series of a route, method and status class, registered once: looking them up
/// by their labels on every request (hashing, copying the key) costs more than the rest
/// of the counting.
fn request_series(
    route: &str,
    method: &'static str,
    status: &'static str,
) -> (metrics::Counter, metrics::Histogram) {
    type Series = Vec<(
        &'static str,
        &'static str,
        metrics::Counter,
        metrics::Histogram,
    )>;
    static KNOWN: OnceLock<RwLock<HashMap<String, Series>>> = OnceLock::new();
    let known = KNOWN.get_or_init(RwLock::default);
    let find = |series: &Series| {
        series
            .iter()
            .find(|(m, s, _, _)| *m == method && *s == status)
            .map(|(_, _, counter, histogram)| (counter.clone(), histogram.clone()))
    };
    if let Some(found) = known
        .read()
        .ok()
        .and_then(|map| map.get(route).and_then(find))
    {
        return found;
    }
    // Handles taken before a recorder exists would count nothing, forever: make sure one
    // does (a service installs its own first thing in `main`).
    let _ = handle();
    let labels = vec![
        metrics::Label::new("route", route.to_owned()),
        metrics::Label::new("method", method),
        metrics::Label::new("status", status),
    ];
    let counter = metrics::counter!("http_requests_total", labels.clone());
    let histogram = metrics::histogram!("http_request_duration_seconds", labels);
    if let Ok(mut map) = known.write() {
        // Routes, methods and statuses are bounded, and so is this map.
        map.entry(route.to_owned()).or_default().push((
            method,
            status,
            counter.clone(),
            histogram.clone(),
        ));
    }
    (counter, histogram)
}

/// Static labels: no allocation per request, and no unbounded label from a made-up method.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn requests_are_counted_by_route_and_rendered_at_metrics() {
        let app = Router::new()
            .route("/things/{id}", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(crate::observe::middleware))
            .merge(router());
        for id in ["a", "b"] {
            let request = axum::http::Request::get(format!("/things/{id}"))
                .body(Body::empty())
                .unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        let response = app
            .oneshot(
                axum::http::Request::get("/metrics")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let text = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(text.to_vec()).unwrap();
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("http_requests_total{") && l.contains(r#"route="/things/{id}""#)
            })
            .unwrap_or_else(|| panic!("no request counter in:\n{text}"));
        assert!(
            line.contains(r#"status="2xx""#) && line.ends_with(" 2"),
            "{line}"
        );
        assert!(
            text.contains("http_request_duration_seconds_bucket{"),
            "{text}"
        );
    }
}
