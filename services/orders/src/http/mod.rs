//! Routes of the orders service, all under `/api/orders`.

mod orders;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/orders",
            get(orders::list_orders).post(orders::create_order),
        )
        .route(
            "/api/orders/{id}",
            get(orders::show_order).delete(orders::cancel_order),
        )
        .with_state(state)
}
