//! Request ids: one id follows a request through every service it touches.
//!
//! Every HTTP request gets an `X-Request-ID` (the one the ingress or the caller sent, if
//! it is reasonable, else a new one), returned in the response and recorded on the
//! request's span, so every log line of the request carries it. While the request is
//! handled the id is [`current`]: the events it causes carry it in a NATS header (the
//! outbox stores it with each event), listeners handle those events under it, and the web
//! client forwards it on its calls to the services. One purchase's log lines across all
//! services then share one id.

use std::future::Future;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The header, on HTTP requests and responses and on NATS messages.
pub const HEADER: &str = "x-request-id";

/// The longest id kept from a caller; longer ones are replaced.
const MAX_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request (or event) being handled by this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `work` with `id` as the [`current`] id (or as it is, without one).
pub async fn scope<F: Future>(id: Option<String>, work: F) -> F::Output {
    match id {
        Some(id) => CURRENT.scope(id, work).await,
        None => work.await,
    }
}

/// An id from a caller, if it is one we can safely log and pass on: short, and made of
/// letters, digits and `-_.:` only (no spaces or control characters to forge log lines).
pub fn accept(raw: &str) -> Option<String> {
    let fine = !raw.is_empty()
        && raw.len() <= MAX_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    fine.then(|| raw.to_owned())
}

/// A new id.
pub fn generate() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Settles the request's id: the caller's if [`accept`]ed, else a new one. Returns the id
/// and its header value, for the response.
pub fn settle(request: &Request) -> (String, Option<HeaderValue>) {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(accept)
        .unwrap_or_else(generate);
    let value = HeaderValue::from_str(&id).ok();
    (id, value)
}

/// The middleware of the web client (the services' `observe` does the same and more):
/// settles the request's id, returns it on the response, and makes it current. It is
/// also put on the request, where the client's tower-http span reads it
/// ([`crate::telemetry::RequestSpan`]).
pub async fn middleware(mut request: Request, next: Next) -> Response {
    let (id, value) = settle(&request);
    if let Some(value) = &value {
        request.headers_mut().insert(HEADER, value.clone());
    }
    let mut response = scope(Some(id), next.run(request)).await;
    if let Some(value) = value {
        response.headers_mut().insert(HEADER, value);
    }
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

    fn app() -> Router {
        Router::new()
            .route("/", get(|| async { current().unwrap_or_default() }))
            .layer(axum::middleware::from_fn(middleware))
    }

    async fn call(sent: Option<&str>) -> (String, String) {
        let mut request = axum::http::Request::get("/");
        if let Some(id) = sent {
            request = request.header(HEADER, id);
        }
        let response = app()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let header = response.headers()[HEADER].to_str().unwrap().to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (header, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_callers_id_is_kept_returned_and_current_while_handling() {
        assert_eq!(
            call(Some("ingress-42.a:b_c")).await,
            ("ingress-42.a:b_c".to_owned(), "ingress-42.a:b_c".to_owned())
        );
    }

    #[tokio::test]
    async fn a_missing_or_unsafe_id_is_replaced_by_a_new_one() {
        let too_long = "x".repeat(MAX_LEN + 1);
        for sent in [None, Some("two words"), Some(""), Some(too_long.as_str())] {
            let (header, current) = call(sent).await;
            assert_eq!(header, current);
            assert!(
                uuid::Uuid::parse_str(&header).is_ok(),
                "{sent:?} gave {header}"
            );
        }
    }

    #[tokio::test]
    async fn outside_a_request_there_is_no_current_id() {
        assert_eq!(current(), None);
        assert_eq!(
            scope(Some("e1".into()), async { current() }).await,
            Some("e1".into())
        );
    }
}
