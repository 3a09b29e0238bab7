//! The pages. Forms post to the client's own routes, which call the services server-side
//! and then redirect (303) or render the form again with the errors next to its fields.
//! Every page works without JavaScript; the order page's countdown and Stripe Elements
//! are the only scripts.

mod account;
mod assets;
mod error;
mod forms;
mod home;
mod orders;
mod tickets;
mod views;
mod visitor;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::http::{MAX_BODY_BYTES, REQUEST_TIMEOUT};
use tower_http::timeout::TimeoutLayer;

use crate::app::AppState;

pub use error::PageError;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home::index))
        .route(
            "/auth/signup",
            get(account::signup_page).post(account::signup),
        )
        .route(
            "/auth/signin",
            get(account::signin_page).post(account::signin),
        )
        .route(
            "/auth/signout",
            get(account::signout_page).post(account::signout),
        )
        .route("/tickets/new", get(tickets::new_page).post(tickets::create))
        .route("/tickets/{id}", get(tickets::show))
        .route("/tickets/{id}/edit", post(tickets::update))
        .route("/tickets/{id}/purchase", post(tickets::purchase))
        .route("/orders", get(orders::index))
        .route("/orders/{id}", get(orders::show))
        .route("/orders/{id}/pay", post(orders::pay))
        .route("/orders/{id}/cancel", post(orders::cancel))
        .merge(assets::router())
        .with_state(state)
}

/// What every response needs: HTML 404 and 405 pages, limits, security headers, tracing.
pub fn with_page_defaults(router: Router, stripe: bool) -> Router {
    let policy = content_security_policy(stripe);
    router
        .fallback(|| async { PageError::NotFound })
        .method_not_allowed_fallback(|| async { PageError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(same_origin_posts))
        .layer(axum::middleware::map_response(move |response: Response| {
            let policy = policy.clone();
            async move { secure(response, policy) }
        }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(common::telemetry::http_trace_layer())
}

/// Scripts only from the client itself, plus Stripe's when a publishable key is configured;
/// no inline script anywhere, so an injected one would not run.
fn content_security_policy(stripe: bool) -> HeaderValue {
    let policy = if stripe {
        "default-src 'self'; script-src 'self' https://js.stripe.com; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: https://*.stripe.com; \
         frame-src https://js.stripe.com https://hooks.stripe.com; \
         connect-src 'self' https://api.stripe.com; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    } else {
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    };
    HeaderValue::from_static(policy)
}

fn secure(mut response: Response, policy: HeaderValue) -> Response {
    let headers = response.headers_mut();
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
        // Pages show a user's own orders: never from a shared cache.
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    response
}

/// Forms are only accepted from GitTix's own pages: a POST whose `Origin` names another
/// host is refused. The session cookie is `SameSite=Lax`, so a cross-site POST carries no
/// session anyway; this also stops another site signing a visitor in to its own account.
async fn same_origin_posts(request: Request, next: Next) -> Response {
    if request.method() == Method::POST && !same_origin(request.headers()) {
        tracing::warn!("refused a cross-site form post");
        return PageError::Forbidden("This form was sent from another site".into()).into_response();
    }
    next.run(request).await
}

/// True without an `Origin` (non-browser clients, older browsers) or when its host is the
/// request's host. Ports are ignored: the ingress may pass on a `Host` without one.
fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host_of = |authority: &str| {
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or("").to_ascii_lowercase(),
            None => authority
                .split(':')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase(),
        }
    };
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| host_of(rest.trim_end_matches('/')))
        .unwrap_or_default();
    let request_host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(host_of)
        .unwrap_or_default();
    !origin_host.is_empty() && origin_host == request_host
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderMap;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        headers
    }

    #[test]
    fn posts_from_our_own_pages_pass_and_others_do_not() {
        assert!(same_origin(&headers(None, "gittix.dev")));
        assert!(same_origin(&headers(
            Some("https://gittix.dev"),
            "gittix.dev"
        )));
        assert!(same_origin(&headers(
            Some("http://localhost:8080"),
            "localhost"
        )));
        assert!(same_origin(&headers(
            Some("http://[::1]:8080"),
            "[::1]:8080"
        )));
        assert!(!same_origin(&headers(
            Some("https://evil.example"),
            "gittix.dev"
        )));
        assert!(!same_origin(&headers(Some("null"), "gittix.dev")));
        assert!(!same_origin(&headers(
            Some("https://gittix.dev.evil.example"),
            "gittix.dev"
        )));
    }
}
