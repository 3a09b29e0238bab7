//! The stylesheet, scripts and icon, compiled into the binary: the client needs no file
//! system and no CDN.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;

const CSS: &str = include_str!("../../assets/app.css");
const ORDER_JS: &str = include_str!("../../assets/order.js");
const STRIPE_JS: &str = include_str!("../../assets/stripe-pay.js");
const TICKET_LIVE_JS: &str = include_str!("../../assets/ticket-live.js");
const FAVICON: &str = include_str!("../../assets/favicon.svg");

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/assets/app.css",
            get(|| asset("text/css; charset=utf-8", CSS)),
        )
        .route(
            "/assets/order.js",
            get(|| asset("text/javascript; charset=utf-8", ORDER_JS)),
        )
        .route(
            "/assets/stripe-pay.js",
            get(|| asset("text/javascript; charset=utf-8", STRIPE_JS)),
        )
        .route(
            "/assets/ticket-live.js",
            get(|| asset("text/javascript; charset=utf-8", TICKET_LIVE_JS)),
        )
        .route(
            "/assets/favicon.svg",
            get(|| asset("image/svg+xml", FAVICON)),
        )
        .route("/favicon.ico", get(|| asset("image/svg+xml", FAVICON)))
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
}
