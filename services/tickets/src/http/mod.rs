//! Routes of the tickets service, all under `/api/tickets`.

mod tickets;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/tickets",
            get(tickets::list_tickets).post(tickets::create_ticket),
        )
        .route(
            "/api/tickets/{id}",
            get(tickets::show_ticket).put(tickets::update_ticket),
        )
        .with_state(state)
}
