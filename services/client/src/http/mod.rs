//! The pages. Forms post to the client's own routes, which call the services server-side
//! and then redirect (303) or render the form again with the errors next to its fields.
//! Every page works without JavaScript; the order page's countdown and Stripe Elements
//! are the only scripts.

mod account;
mod assets;
mod docs;
mod error;
mod forms;
mod home;
mod listings;
mod orders;
mod reset;
mod tickets;
mod views;
mod visitor;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::http::REQUEST_TIMEOUT;
use tower_http::timeout::TimeoutLayer;

use crate::state::AppState;

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
        .route(
            "/forgot-password",
            get(reset::forgot_page).post(reset::forgot),
        )
        .route("/forgot-password/sent", get(reset::forgot_sent))
        .route("/reset-password", get(reset::reset_page).post(reset::reset))
        .route("/reset-password/done", get(reset::reset_done))
        .route("/tickets/new", get(tickets::new_page).post(tickets::create))
        .route("/tickets/mine", get(listings::index))
        .route("/tickets/{id}", get(tickets::show))
        .route("/tickets/{id}/unlist", post(listings::unlist))
        .route("/tickets/{id}/edit", post(tickets::update))
        .route("/tickets/{id}/purchase", post(tickets::purchase))
        .route("/orders", get(orders::index))
        .route("/orders/{id}", get(orders::show))
        .route("/orders/{id}/pay", post(orders::pay))
        .route("/orders/{id}/cancel", post(orders::cancel))
        .merge(assets::router())
        .merge(docs::router())
        .with_state(state)
}

/// What every response needs: HTML 404 and 405 pages, the time limit, security headers,
/// tracing, and the visitor's address for the services' calls (`trusted_hops` proxies in
/// front). The body limit is `HttpServer::serve`'s, around the whole router.
pub fn with_page_defaults(router: Router, stripe: bool, trusted_hops: usize) -> Router {
    let policy = content_security_policy(stripe);
    router
        .fallback(|| async { PageError::NotFound })
        .method_not_allowed_fallback(|| async { PageError::MethodNotAllowed })
        .layer(tower_cookies::CookieManagerLayer::new())
        .layer(axum::middleware::from_fn(same_origin_posts))
        .layer(axum::middleware::from_fn(count_request))
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| visitor_address(trusted_hops, request, next),
        ))
        .layer(axum::middleware::map_response(move |response: Response| {
            let policy = policy.clone();
            async move { secure(response, policy) }
        }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(common::telemetry::http_trace_layer())
        .layer(axum::middleware::from_fn(common::request_id::middleware))
}

/// Counts the request and its latency by route, method and status class, like the
/// services' (`http_requests_total`, `http_request_duration_seconds`; served on
/// `METRICS_PORT`).
async fn count_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let response = next.run(request).await;
    common::metrics::record_request(
        route.as_ref(),
        &method,
        response.status(),
        started.elapsed(),
    );
    response
}

/// Runs the request with the visitor's address (as the trusted proxies report it) for
/// [`crate::backend`] to pass on as `X-Forwarded-For`: auth's per-address limits (sign-in,
/// sign-up, password reset) then count each visitor, not the client as one address.
async fn visitor_address(trusted_hops: usize, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let address = common::limits::client_address(&parts, trusted_hops);
    let request = Request::from_parts(parts, body);
    crate::backend::with_visitor_address(address, next.run(request)).await
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
        // A route with a policy of its own (the API docs) keeps it.
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(policy);
        // Pages show a user's own orders: never from a shared cache.
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A route with a stricter policy of its own (the password reset pages) keeps it.
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    response
}

/// Forms are only accepted from GitTix's own pages. The browser says where a request
/// comes from: `Sec-Fetch-Site` (every current browser), else `Origin` (sent with every
/// POST by browsers since long before); a POST with neither, or from another site, is
/// refused. The session cookie is `SameSite=Lax`, so a cross-site POST carries no session
/// anyway; this also stops another site signing a visitor in to its own account.
async fn same_origin_posts(request: Request, next: Next) -> Response {
    if request.method() == Method::POST && !same_origin(request.headers()) {
        tracing::warn!("refused a cross-site form post");
        return PageError::Forbidden("This form was sent from another site".into()).into_response();
    }
    next.run(request).await
}

/// True when the request says it comes from this origin: `Sec-Fetch-Site: same-origin`
/// (or `none`: typed or bookmarked), else an `Origin` equal to ours in scheme, host and
/// port. Ours is what the proxy in front saw (`X-Forwarded-Proto`, `X-Forwarded-Host`),
/// else this request's `Host` over plain HTTP.
fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = header("origin") else {
        return false;
    };
    let scheme = header("x-forwarded-proto")
        .and_then(|v| v.split(',').next())
        .map_or("http", str::trim);
    let Some(host) = header("x-forwarded-host")
        .and_then(|v| v.split(',').next())
        .or_else(|| header("host"))
    else {
        return false;
    };
    match (
        normalize(origin),
        normalize(&format!("{scheme}://{}", host.trim())),
    ) {
        (Some(theirs), Some(ours)) => theirs == ours,
        _ => false,
    }
}

/// `scheme://host:port`, lower-cased, with the scheme's default port made explicit.
fn normalize(origin: &str) -> Option<String> {
    let (scheme, authority) = origin.trim_end_matches('/').split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let authority = authority.to_ascii_lowercase();
    if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host.to_owned(), port.to_owned()),
        _ => (authority.clone(), default_port.to_owned()),
    };
    Some(format!("{scheme}://{host}:{port}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_fetch_metadata_decides_when_the_browser_sends_it() {
        for (site, allowed) in [
            ("same-origin", true),
            ("none", true),
            ("same-site", false),
            ("cross-site", false),
        ] {
            let sent = headers(&[("sec-fetch-site", site), ("host", "gittix.dev")]);
            assert_eq!(same_origin(&sent), allowed, "{site}");
        }
    }

    #[test]
    fn otherwise_the_origin_must_match_in_scheme_host_and_port() {
        let ok = |origin: &str, rest: &[(&'static str, &str)]| {
            let mut pairs = vec![("origin", origin)];
            pairs.extend_from_slice(rest);
            same_origin(&headers(&pairs))
        };
        assert!(ok("http://localhost:8080", &[("host", "localhost:8080")]));
        assert!(ok("http://gittix.dev", &[("host", "gittix.dev:80")]));
        assert!(ok(
            "https://gittix.dev",
            &[
                ("host", "internal:3000"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "gittix.dev")
            ]
        ));
        assert!(ok("http://[::1]:8080", &[("host", "[::1]:8080")]));
        assert!(
            !ok("http://localhost:9999", &[("host", "localhost:8080")]),
            "another port"
        );
        assert!(
            !ok(
                "http://gittix.dev",
                &[("host", "gittix.dev"), ("x-forwarded-proto", "https")]
            ),
            "another scheme"
        );
        assert!(!ok("https://evil.example", &[("host", "gittix.dev")]));
        assert!(!ok(
            "https://gittix.dev.evil.example",
            &[("host", "gittix.dev")]
        ));
        assert!(!ok("null", &[("host", "gittix.dev")]));
        assert!(
            !same_origin(&headers(&[("host", "gittix.dev")])),
            "neither header"
        );
    }
}
