//! The payments service's OpenAPI document, `GET /api/payments/openapi.json`: its routes
//! are registered here once, with their `#[utoipa::path]` descriptions, so the router and
//! the document come from the same list.

use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{history, payments};
use crate::state::AppState;

pub const DOCUMENT_PATH: &str = "/api/payments/openapi.json";

/// The routes and the document that describes them.
pub fn routes() -> (Router<AppState>, OpenApi) {
    let frame = common::openapi::frame(
        "GitTix payments",
        "Paying for an order (Stripe PaymentIntents, or the simulated gateway), an order's \
         payments and refunds, and Stripe's webhook. Amounts are decimal currency units. \
         Errors are `{\"errors\":[{\"message\":…,\"field\":…}]}`.",
    );
    let routes = OpenApiRouter::with_openapi(frame)
        .routes(routes!(history::list_payments, payments::create_payment))
        .routes(routes!(payments::stripe_webhook));
    common::openapi::split_and_serve(routes, DOCUMENT_PATH)
}
