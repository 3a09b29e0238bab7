//! The payment deadline, its grace, and what a payment may complete (issue: money is
//! never taken for nothing).

use std::time::Duration;

use common::events::{ExpirationComplete, PaymentCreated, PaymentRefunded};
use reqwest::Method;
use testkit::{eventually, new_user_id};

use crate::events::payment_for;
use crate::helpers::{Options, TestApp, settle, spawn_app, spawn_app_with};

async fn placed_order(app: &TestApp, price: f64) -> (String, String) {
    let (_, ticket) = app.listed_ticket(price).await;
    let buyer = new_user_id();
    let order = app.order(&buyer, &ticket).await;
    assert_eq!(order.status, 201, "{:?}", order.body);
    (buyer, order.body["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn an_expiry_at_the_deadline_waits_out_the_grace_so_a_charge_in_flight_completes() {
    let app = spawn_app_with(Options {
        window: Duration::from_secs(1),
        payment_grace: Duration::from_secs(4),
        ..Options::default()
    })
    .await;
    let (buyer, order) = placed_order(&app, 10.0).await;
    // The deadline passes and the expiry arrives, while a charge is still in flight.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.publish(ExpirationComplete {
        order_id: order.clone(),
    })
    .await;
    settle().await;
    assert_eq!(app.order_status(&buyer, &order).await, "created");
    // The charge succeeds within the grace: the order completes, never cancelled.
    app.publish(payment_for(&order)).await;
    app.wait_for_status(&buyer, &order, "complete").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(app.order_status(&buyer, &order).await, "complete");
    assert!(app.events("order.cancelled").await.is_empty());
    let completed = app.events("order.completed").await;
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["data"]["paymentId"], format!("pay-{order}"));
    // Stored with the order, so its snapshot names the payment too.
    let stored = app
        .orders_collection()
        .await
        .find_one(bson::doc! {"_id": order.parse::<bson::oid::ObjectId>().unwrap()})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.get_str("paymentId").unwrap(), format!("pay-{order}"));
}

#[tokio::test]
async fn an_unpaid_order_is_cancelled_once_the_grace_has_passed() {
    let app = spawn_app_with(Options {
        window: Duration::from_secs(1),
        payment_grace: Duration::from_secs(2),
        ..Options::default()
    })
    .await;
    let (buyer, order) = placed_order(&app, 10.0).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.publish(ExpirationComplete {
        order_id: order.clone(),
    })
    .await;
    app.wait_for_status(&buyer, &order, "cancelled").await;
}

#[tokio::test]
async fn a_payment_of_another_amount_or_currency_does_not_complete_the_order() {
    let app = spawn_app().await;
    let (buyer, order) = placed_order(&app, 10.0).await;
    app.publish(PaymentCreated {
        amount_cents: 999,
        ..payment_for(&order)
    })
    .await;
    app.publish(PaymentCreated {
        id: format!("eur-{order}"),
        currency: "eur".into(),
        ..payment_for(&order)
    })
    .await;
    settle().await;
    assert_eq!(app.order_status(&buyer, &order).await, "created");
    // The right charge still completes it.
    app.publish(payment_for(&order)).await;
    app.wait_for_status(&buyer, &order, "complete").await;
}

#[tokio::test]
async fn a_refund_shows_on_the_order_once() {
    let app = spawn_app().await;
    let (buyer, order) = placed_order(&app, 10.0).await;
    let path = format!("/api/orders/{order}");
    let before = app.request(Method::GET, &path, Some(&buyer), None).await;
    assert!(before.body["refund"].is_null(), "{:?}", before.body);
    let refunded = PaymentRefunded {
        id: "refund-1".into(),
        payment_id: format!("pay-{order}"),
        order_id: order.clone(),
        stripe_id: "pi_test".into(),
        refund_id: "re_1".into(),
        amount_cents: 1000,
        currency: "usd".into(),
        reason: "order cancelled".into(),
    };
    app.publish(refunded.clone()).await;
    app.publish(refunded).await;
    let shown = eventually(
        "the refund on the order",
        Duration::from_secs(10),
        || async {
            let body = app
                .request(Method::GET, &path, Some(&buyer), None)
                .await
                .body;
            (!body["refund"].is_null()).then_some(body)
        },
    )
    .await;
    assert_eq!(shown["refund"]["amount"], 10.0);
    assert_eq!(shown["refund"]["currency"], "usd");
    assert_eq!(shown["refund"]["status"], "succeeded");
    settle().await;
    let stored = app
        .orders_collection()
        .await
        .find_one(bson::doc! {"_id": order.parse::<bson::oid::ObjectId>().unwrap()})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.get_array("refunds").unwrap().len(),
        1,
        "recorded once"
    );
}
