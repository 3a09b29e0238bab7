//! The orders service's OpenAPI document, `GET /api/orders/openapi.json`: its routes are
//! registered here once, with their `#[utoipa::path]` descriptions, so the router and the
//! document come from the same list.

use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::orders;
use crate::state::AppState;

pub const DOCUMENT_PATH: &str = "/api/orders/openapi.json";

/// The routes and the document that describes them.
pub fn routes() -> (Router<AppState>, OpenApi) {
    let frame = common::openapi::frame(
        "GitTix orders",
        "Reserving a ticket (an order awaiting payment until its deadline), one's orders, \
         cancelling. Prices are decimal currency units. Errors are \
         `{\"errors\":[{\"message\":…,\"field\":…}]}`.",
    );
    let routes = OpenApiRouter::with_openapi(frame)
        .routes(routes!(orders::list_orders, orders::create_order))
        .routes(routes!(orders::show_order, orders::cancel_order));
    common::openapi::split_and_serve(routes, DOCUMENT_PATH)
}
