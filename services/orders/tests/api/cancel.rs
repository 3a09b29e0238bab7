use reqwest::Method;
use testkit::new_user_id;

use crate::helpers::{settle, spawn_app};

#[tokio::test]
async fn cancelling_frees_the_ticket_once_and_a_second_cancel_is_a_no_op() {
    let app = spawn_app().await;
    let (_, ticket) = app.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let order = app.place(&buyer, &ticket).await;
    app.wait_for_event("order.created", &order).await;
    let path = format!("/api/orders/{order}");

    assert_eq!(
        app.request(Method::DELETE, &path, Some(&new_user_id()), None)
            .await
            .status,
        403
    );
    assert_eq!(
        app.request(Method::DELETE, &path, Some(&buyer), None)
            .await
            .status,
        204
    );
    app.wait_for_event("order.cancelled", &order).await;
    assert_eq!(app.order_status(&buyer, &order).await, "cancelled");
    assert_eq!(
        app.request(Method::DELETE, &path, Some(&buyer), None)
            .await
            .status,
        204
    );
    settle().await;
    let cancelled = app.events("order.cancelled").await;
    assert_eq!(cancelled.len(), 1, "no second event");
    assert_eq!(cancelled[0]["data"]["version"], 1);
    assert_eq!(cancelled[0]["data"]["reason"], "buyer");

    // The ticket can be bought again.
    assert_eq!(app.order(&new_user_id(), &ticket).await.status, 201);
}

#[tokio::test]
async fn a_completed_order_cannot_be_cancelled() {
    let app = spawn_app().await;
    let (_, ticket) = app.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let order = app.place(&buyer, &ticket).await;
    // The order is announced (the ticket held) before the payment, so the check below is
    // about the refused cancellation.
    app.wait_for_event("order.created", &order).await;
    app.publish(crate::events::payment_for(&order)).await;
    app.wait_for_status(&buyer, &order, "complete").await;
    let response = app
        .request(
            Method::DELETE,
            &format!("/api/orders/{order}"),
            Some(&buyer),
            None,
        )
        .await;
    assert_eq!(
        (response.status, response.error_message()),
        (409, "Cannot cancel a completed order")
    );
    settle().await;
    assert!(
        app.events("order.cancelled").await.is_empty(),
        "a sold ticket stays reserved: nothing tells tickets to free it"
    );
}
