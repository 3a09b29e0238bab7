//! The tickets service's OpenAPI document, `GET /api/tickets/openapi.json`: its routes are
//! registered here once, with their `#[utoipa::path]` descriptions, so the router and the
//! document come from the same list.

use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{live, tickets};
use crate::state::AppState;

pub const DOCUMENT_PATH: &str = "/api/tickets/openapi.json";

/// The routes and the document that describes them.
pub fn routes() -> (Router<AppState>, OpenApi) {
    let frame = common::openapi::frame(
        "GitTix tickets",
        "Tickets for sale: list one, edit it, browse the available ones. Prices are decimal \
         currency units. Errors are `{\"errors\":[{\"message\":…,\"field\":…}]}`.",
    );
    let routes = OpenApiRouter::with_openapi(frame)
        .routes(routes!(tickets::list_tickets, tickets::create_ticket))
        .routes(routes!(tickets::my_tickets))
        .routes(routes!(
            tickets::show_ticket,
            tickets::update_ticket,
            tickets::remove_ticket
        ))
        .routes(routes!(live::ticket_events));
    common::openapi::split_and_serve(routes, DOCUMENT_PATH)
}
