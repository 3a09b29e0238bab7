//! Routes of the payments service, all under `/api/payments`; registered in [`openapi`],
//! which also serves their OpenAPI document.

mod history;
mod openapi;
mod payments;

use axum::Router;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let (routes, _document) = openapi::routes();
    routes.with_state(state)
}
