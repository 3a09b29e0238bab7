use chrono::Utc;
use serde_json::json;
use testkit::stripe::succeeded_event;

use crate::helpers::{WEBHOOK_SECRET, spawn_app};

fn signed(body: &serde_json::Value) -> Option<String> {
    Some(payments::sign_webhook(
        &serde_json::to_vec(body).unwrap(),
        WEBHOOK_SECRET,
        Utc::now().timestamp(),
    ))
}

#[tokio::test]
async fn requires_action_is_202_and_the_webhook_completes_the_payment_once() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    let response = app
        .pay(Some(&buyer), &order, "pm_card_threeDSecure2Required")
        .await;
    assert_eq!(response.status, 202, "{:?}", response.body);
    assert_eq!(response.body["status"], "requires_action");
    assert_eq!(response.body["clientSecret"], "pi_standin_1_secret_standin");
    assert_eq!(app.payments_stored().await, 0);

    let event = succeeded_event("pi_standin_1", &order, 1999);
    let delivered = app.webhook(&event, signed(&event)).await;
    assert_eq!(delivered.status, 200, "{:?}", delivered.body);
    assert_eq!(delivered.body["handled"], true);
    // Stripe retries deliveries: the second changes nothing and emits nothing.
    let again = app.webhook(&event, signed(&event)).await;
    assert_eq!(
        (again.status, again.body["handled"].clone()),
        (200, json!(false))
    );
    let events = app.expect_payment_events(1).await;
    assert_eq!(events[0]["data"]["stripeId"], "pi_standin_1");
    assert_eq!(events[0]["data"]["amountCents"], 1999);
    let paid = app.pay(Some(&buyer), &order, "pm_card_visa").await;
    assert_eq!(
        (paid.status, paid.error_message()),
        (409, "Order is already paid")
    );
}

#[tokio::test]
async fn a_webhook_after_the_synchronous_success_changes_nothing() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    assert_eq!(
        app.pay(Some(&buyer), &order, "pm_card_visa").await.status,
        201
    );
    let event = succeeded_event("pi_standin_1", &order, 1999);
    let delivered = app.webhook(&event, signed(&event)).await;
    assert_eq!(
        (delivered.status, delivered.body["handled"].clone()),
        (200, json!(false))
    );
    app.expect_payment_events(1).await;
}

#[tokio::test]
async fn webhooks_without_a_valid_signature_are_400_and_ignored() {
    let app = spawn_app().await;
    let (_, order) = app.open_order().await;
    let event = succeeded_event("pi_forged", &order, 1);
    let missing = app.webhook(&event, None).await;
    assert_eq!(missing.status, 400);
    let forged = payments::sign_webhook(
        &serde_json::to_vec(&event).unwrap(),
        "whsec_wrong",
        Utc::now().timestamp(),
    );
    assert_eq!(app.webhook(&event, Some(forged)).await.status, 400);
    let stale = payments::sign_webhook(
        &serde_json::to_vec(&event).unwrap(),
        WEBHOOK_SECRET,
        Utc::now().timestamp() - 3600,
    );
    assert_eq!(app.webhook(&event, Some(stale)).await.status, 400);
    assert_eq!(
        app.webhook(&event, Some("t=1,v1=zz".into())).await.status,
        400
    );
    assert_eq!(app.payments_stored().await, 0);
    app.expect_payment_events(0).await;
}

#[tokio::test]
async fn an_oversized_webhook_body_is_413_in_the_json_error_shape() {
    let app = spawn_app().await;
    let big = json!({"type": "payment_intent.succeeded", "pad": "x".repeat(70 * 1024)});
    let response = app.webhook(&big, Some("t=1,v1=00".into())).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.error_message(), "Request body is too large");
}

#[tokio::test]
async fn a_second_successful_intent_is_refunded_once_another_completes_the_order() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    // Card A needs 3-D Secure, which the buyer finishes at Stripe; meanwhile the buyer
    // pays with card B.
    assert_eq!(
        app.pay(Some(&buyer), &order, "pm_card_threeDSecure2Required")
            .await
            .status,
        202
    );
    app.stripe.succeed_intent("pi_standin_1");
    let paid = app.pay(Some(&buyer), &order, "pm_card_visa").await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    // Stripe reports card A's success (as may the cancellation payments tried): both
    // charges are recorded, once each.
    let late = succeeded_event("pi_standin_1", &order, 1999);
    assert_eq!(app.webhook(&late, signed(&late)).await.status, 200);
    app.expect_payment_events(2).await;
    // Orders completes the order with card B's payment: card A's is refunded, once.
    app.complete(&order, paid.body["id"].as_str()).await;
    app.payment_state_becomes("pi_standin_1", "refunded").await;
    app.payment_state_becomes("pi_standin_2", "settled").await;
    // Stripe retrying the delivery changes nothing.
    let again = app.webhook(&late, signed(&late)).await;
    assert_eq!(again.body["handled"], json!(false));
    let events = app.expect_refund_events(1).await;
    assert_eq!(events[0]["data"]["stripeId"], "pi_standin_1");
    assert_eq!(events[0]["data"]["reason"], "duplicate");
    let refunds = app.stripe.refunds();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["payment_intent"], "pi_standin_1");
    assert_eq!(refunds[0]["reason"], "duplicate");
}

#[tokio::test]
async fn an_unknown_payment_method_is_400_not_500() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    let response = app.pay(Some(&buyer), &order, "pm_unknown").await;
    assert_eq!(response.status, 400, "{:?}", response.body);
    assert_eq!(response.error_fields(), ["paymentMethod"]);
    let long = "pm_".to_owned() + &"x".repeat(200);
    let response = app.pay(Some(&buyer), &order, &long).await;
    assert_eq!(response.status, 400);
}
