//! Routes of the auth service, all under `/api/users`.

mod admin;
mod keys;
mod session;
mod sessions;
mod users;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/users/signup", post(users::signup))
        .route("/api/users/signin", post(users::signin))
        .route("/api/users/currentuser", get(users::current_user))
        .route("/api/users/signout", post(sessions::signout))
        .route(
            "/api/users/refresh",
            post(sessions::refresh).get(sessions::refresh_and_return),
        )
        .route(
            "/api/users/signout-everywhere",
            post(sessions::signout_everywhere),
        )
        .route("/api/users/password", post(sessions::change_password))
        .route("/api/users/{id}/ban", post(admin::ban).delete(admin::unban))
        .route("/api/users/.well-known/jwks.json", get(keys::jwks))
        .with_state(state)
}
