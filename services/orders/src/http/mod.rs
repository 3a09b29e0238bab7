//! Routes of the orders service, all under `/api/orders`; registered in [`openapi`],
//! which also serves their OpenAPI document.

mod openapi;
mod orders;

use axum::Router;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let (routes, _document) = openapi::routes();
    routes.with_state(state)
}
