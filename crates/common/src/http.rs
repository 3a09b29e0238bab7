//! The HTTP plumbing every service shares: the JSON body extractor with our error shape,
//! ids from paths (a malformed one is a 404),
//! the default layers (404/405 in JSON, body limit, timeout, tracing) and serving with
//! graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::{Layer, Service};

use crate::error::ApiError;

/// Request bodies above this size are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub use crate::observe::REQUEST_TIMEOUT;

/// `axum::Json`, but a malformed, oversized or mistyped body is an [`ApiError`].
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `axum::extract::Query`, but a malformed query string is an [`ApiError`] in the common
/// JSON shape (axum's own rejection is plain text).
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path`, but a segment that cannot be decoded (invalid UTF-8) is an
/// [`ApiError`] in the common JSON shape (axum's own rejection is plain text).
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Parses a record's id from a URL path. A malformed id cannot name an existing record,
/// so it is a 404 "`what` not found", like an unknown one.
pub fn parse_id(raw: &str, what: &str) -> Result<bson::oid::ObjectId, ApiError> {
    raw.parse().map_err(|_| not_found(what))
}

/// The 404 for a record that does not exist.
pub fn not_found(what: &str) -> ApiError {
    ApiError::NotFound(format!("{what} not found"))
}

/// Adds what every service's router needs around its own routes. The body limit is not
/// here: [`HttpServer::serve`] puts it around the whole service ([`with_body_limit`]).
pub fn with_defaults(router: Router) -> Router {
    router
        .fallback(|| async { ApiError::NotFound("Route not found".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Request id, span, time limit, metrics and the finishing line.
        .layer(axum::middleware::from_fn(crate::observe::middleware))
}

/// `service` with request bodies limited to [`MAX_BODY_BYTES`], once around the whole
/// service: a layer on a `Router` wraps every route instead, one more boxed service and
/// future per request (`make bench`).
pub fn with_body_limit<S>(
    service: S,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send>
+ Clone
+ Send
+ Sync
+ 'static
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send,
{
    DefaultBodyLimit::max(MAX_BODY_BYTES).layer(service)
}

/// A bound listener: binding happens before serving so that port 0 works and the real
/// port can be read back (tests, logs).
pub struct HttpServer {
    listener: TcpListener,
}

impl HttpServer {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves `service` (with [`with_body_limit`]) until `shutdown` fires, then stops
    /// accepting and drains in-flight requests.
    pub async fn serve<S>(self, service: S, shutdown: CancellationToken) -> std::io::Result<()>
    where
        S: Service<Request, Response = Response, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send,
    {
        // The peer address is what rate limits key on when no trusted proxy is in front.
        let service = axum::ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(
            with_body_limit(service),
        );
        axum::serve(self.listener, service)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::post;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[derive(serde::Deserialize)]
    struct Input {
        #[allow(dead_code)]
        name: String,
    }

    fn app() -> impl Service<Request<Body>, Response = Response, Error = Infallible, Future: Send> {
        with_body_limit(with_defaults(Router::new().route(
            "/things",
            post(|ApiJson(_): ApiJson<Input>| async { StatusCode::CREATED }),
        )))
    }

    async fn send(req: Request<Body>) -> (StatusCode, serde_json::Value) {
        let response = app().oneshot(req).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    fn post_json(body: impl Into<Body>) -> Request<Body> {
        Request::post("/things")
            .header("content-type", "application/json")
            .body(body.into())
            .unwrap()
    }

    #[test]
    fn malformed_ids_are_not_found() {
        for raw in ["", "123", "zzzzzzzzzzzzzzzzzzzzzzzz", "../etc/passwd"] {
            let err = parse_id(raw, "Ticket").err();
            assert!(matches!(err, Some(ApiError::NotFound(_))), "{raw}");
        }
        assert!(parse_id("507f1f77bcf86cd799439011", "Ticket").is_ok());
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_answer_in_json() {
        let (status, body) = send(Request::get("/nope").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["errors"][0]["message"], "Route not found");
        let (status, body) = send(Request::get("/things").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["errors"][0]["message"], "Method not allowed");
    }

    #[tokio::test]
    async fn malformed_and_mistyped_json_is_400() {
        let (status, body) = send(post_json("{not json")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["errors"][0]["message"].is_string());
        let (status, _) = send(post_json(r#"{"name": 5}"#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn oversized_bodies_are_413() {
        let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        let (status, body) = send(post_json(big)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["errors"][0]["message"], "Request body is too large");
    }

    #[tokio::test]
    async fn a_missing_content_type_is_415() {
        let req = Request::post("/things")
            .body(Body::from(r#"{"name":"a"}"#))
            .unwrap();
        let (status, _) = send(req).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
