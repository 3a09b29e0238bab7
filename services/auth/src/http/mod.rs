//! Routes of the auth service, all under `/api/users`.

mod admin;
mod keys;
mod openapi;
mod reset;
mod session;
mod sessions;
mod users;

use axum::Router;

use crate::state::AppState;

/// Registered in [`openapi`], which also serves their OpenAPI document.
pub fn router(state: AppState) -> Router {
    let (routes, _document) = openapi::routes();
    routes.with_state(state)
}
