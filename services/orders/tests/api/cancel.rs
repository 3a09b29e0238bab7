use reqwest::Method;
use testkit::new_user_id;

use crate::helpers::{settle, spawn_apps};

#[tokio::test]
async fn cancelling_frees_the_ticket_once_and_a_second_cancel_is_a_no_op() {
    let apps = spawn_apps().await;
    let (_, ticket) = apps.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let order = apps.place(&buyer, &ticket).await;
    apps.wait_for_ticket_holder(&ticket, Some(&order)).await;
    let path = format!("/api/orders/{order}");

    assert_eq!(
        apps.orders_api(Method::DELETE, &path, Some(&new_user_id()), None)
            .await
            .status,
        403
    );
    assert_eq!(
        apps.orders_api(Method::DELETE, &path, Some(&buyer), None)
            .await
            .status,
        204
    );
    apps.wait_for_ticket_holder(&ticket, None).await;
    assert_eq!(apps.order_status(&buyer, &order).await, "cancelled");
    assert_eq!(
        apps.orders_api(Method::DELETE, &path, Some(&buyer), None)
            .await
            .status,
        204
    );
    settle().await;
    let cancelled = apps.events("order.cancelled").await;
    assert_eq!(cancelled.len(), 1, "no second event");
    assert_eq!(cancelled[0]["data"]["version"], 1);
    assert_eq!(cancelled[0]["data"]["reason"], "buyer");

    // The ticket can be bought again.
    assert_eq!(apps.order(&new_user_id(), &ticket).await.status, 201);
}

#[tokio::test]
async fn a_completed_order_cannot_be_cancelled() {
    let apps = spawn_apps().await;
    let (_, ticket) = apps.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let order = apps.place(&buyer, &ticket).await;
    // The ticket is held before the payment, so the check below is about the
    // refused cancellation and not about when tickets saw the order.
    apps.wait_for_ticket_holder(&ticket, Some(&order)).await;
    apps.publish(crate::events::payment_for(&order)).await;
    apps.wait_for_status(&buyer, &order, "complete").await;
    let response = apps
        .orders_api(
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
    assert_eq!(
        apps.ticket(&ticket).await["orderId"],
        order.as_str(),
        "a sold ticket stays reserved"
    );
}
