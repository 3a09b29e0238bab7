//! Routes of the auth service, all under `/api/users`.

mod users;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/users/signup", post(users::signup))
        .route("/api/users/signin", post(users::signin))
        .route("/api/users/signout", post(users::signout))
        .route("/api/users/currentuser", get(users::current_user))
        .with_state(state)
}
