//! Routes of the tickets service, all under `/api/tickets`; registered in [`openapi`],
//! which also serves their OpenAPI document.

mod live;
mod openapi;
mod tickets;

use axum::Router;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let (routes, _document) = openapi::routes();
    routes.with_state(state)
}
