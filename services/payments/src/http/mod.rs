//! Routes of the payments service, all under `/api/payments`.

mod history;
mod payments;

use axum::Router;
use axum::routing::post;

use crate::app::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/payments",
            post(payments::create_payment).get(history::list_payments),
        )
        .route("/api/payments/webhook", post(payments::stripe_webhook))
        .with_state(state)
}
