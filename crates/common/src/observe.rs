//! What happens around every request to a service, in one middleware: its request id, its
//! span (continuing the caller's trace), the time limit, the metrics and the line it
//! leaves when it ends.
//!
//! One middleware instead of a layer for each: axum clones a route's layered service for
//! every request, and each layer adds a boxed clone and a future; on a request as small
//! as `currentuser` the layers cost more than the handler (`make bench`).

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::{Instrument, Span};

use crate::error::ApiError;
use crate::telemetry::RequestLine;

/// Requests taking longer than this are cut off with a 503, so a stuck dependency cannot
/// pile them up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The middleware (outermost on every service's router, see `http::with_defaults`).
pub async fn middleware(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let (id, id_header) = crate::request_id::settle(&request);
    // A span only when spans are exported: log lines carry the request id without one.
    let span = if crate::telemetry::request_spans() {
        crate::telemetry::request_span(&request, &id)
    } else {
        Span::none()
    };
    let answered = handle(request, next, started, id_header).instrument(span);
    crate::request_id::scope(Some(id), answered).await
}

/// The request, within its request id's scope (and its span, if any).
async fn handle(
    request: Request,
    next: Next,
    started: Instant,
    id_header: Option<HeaderValue>,
) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let uri = request.uri().clone();

    let handled = tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await;
    let mut response = handled.unwrap_or_else(|_| {
        ApiError::Unavailable("The request took too long; please try again".into()).into_response()
    });
    if let Some(value) = id_header {
        response
            .headers_mut()
            .insert(crate::request_id::HEADER, value);
    }
    let latency = started.elapsed();
    crate::metrics::record_request(route.as_ref(), &method, response.status(), latency);
    let line = RequestLine {
        method: method.as_str(),
        route: route.as_ref().map_or("", MatchedPath::as_str),
        path: uri.path(),
    };
    let cause = crate::telemetry::cause_of(&response);
    crate::telemetry::log_finished(response.status(), latency, Some(line), cause);
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn call(sent_id: Option<&str>) -> (String, String) {
        let app = Router::new()
            .route(
                "/",
                get(|| async { crate::request_id::current().unwrap_or_default() }),
            )
            .layer(axum::middleware::from_fn(middleware));
        let mut request = axum::http::Request::get("/");
        if let Some(id) = sent_id {
            request = request.header(crate::request_id::HEADER, id);
        }
        let response = app
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let header = response.headers()[crate::request_id::HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (header, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_request_id_is_kept_or_made_returned_and_current_while_handling() {
        assert_eq!(
            call(Some("ingress-7")).await,
            ("ingress-7".to_owned(), "ingress-7".to_owned())
        );
        let (header, current) = call(Some("two words")).await;
        assert_eq!(header, current);
        assert!(uuid::Uuid::parse_str(&header).is_ok(), "{header}");
    }
}
