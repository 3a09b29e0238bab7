use std::time::Duration;

use chrono::Utc;
use payments::GatewayConfig;
use reqwest::Method;
use serde_json::json;
use testkit::stripe::StripeStandIn;
use testkit::{eventually, new_user_id};

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn a_payment_charges_the_order_price_in_cents_once_and_is_announced() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    let response = app.pay(Some(&buyer), &order, "pm_card_visa").await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    assert_eq!(response.body["orderId"], json!(order));
    assert_eq!(response.body["status"], "succeeded");
    assert_eq!(response.body["stripeId"], "pi_standin_1");

    let requests = app.stripe.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(
        sent.form["amount"], "1999",
        "integer cents, no floating point"
    );
    assert_eq!(sent.form["currency"], "usd");
    assert_eq!(sent.form["metadata[orderId]"], order);
    assert_eq!(sent.form["payment_method"], "pm_card_visa");
    assert_eq!(sent.form["confirm"], "true");
    assert_eq!(
        sent.idempotency_key.as_deref(),
        Some(format!("gittix-order-{order}-pm_card_visa").as_str())
    );

    let events = app.expect_payment_events(1).await;
    assert_eq!(events[0]["data"]["orderId"], json!(order));
    assert_eq!(events[0]["data"]["amountCents"], 1999);
    assert_eq!(events[0]["data"]["stripeId"], "pi_standin_1");
    assert_eq!(events[0]["data"]["id"], response.body["id"]);

    let again = app.pay(Some(&buyer), &order, "pm_card_visa").await;
    assert_eq!(
        (again.status, again.error_message()),
        (409, "Order is already paid")
    );
    assert_eq!(app.stripe.requests().len(), 1, "no second charge attempt");
}

#[tokio::test]
async fn payment_input_and_ownership_are_checked_first() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    assert_eq!(app.pay(None, &order, "pm_card_visa").await.status, 401);
    let invalid = app
        .request(
            Method::POST,
            "/api/payments",
            Some(&buyer),
            Some(json!({"orderId": "x", "paymentMethod": ""})),
        )
        .await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.error_fields(), ["orderId", "paymentMethod"]);
    let unknown = app
        .pay(Some(&buyer), "507f1f77bcf86cd799439011", "pm_card_visa")
        .await;
    assert_eq!(
        (unknown.status, unknown.error_message()),
        (404, "Order not found")
    );
    let stranger = app.pay(Some(&new_user_id()), &order, "pm_card_visa").await;
    assert_eq!(stranger.status, 403);
    assert!(app.stripe.requests().is_empty());
}

#[tokio::test]
async fn cancelled_completed_and_expired_orders_are_refused() {
    let app = spawn_app().await;
    let (buyer, cancelled) = app.open_order().await;
    app.cancel(&cancelled).await;
    let response = app.pay(Some(&buyer), &cancelled, "pm_card_visa").await;
    assert_eq!(
        (response.status, response.error_message()),
        (409, "Cannot pay for a cancelled order")
    );

    let (buyer2, completed) = app.open_order().await;
    app.complete(&completed, None).await;
    eventually("the replica complete", Duration::from_secs(10), || async {
        let response = app.pay(Some(&buyer2), &completed, "pm_card_visa").await;
        (response.error_message() == "Order is already paid").then_some(())
    })
    .await;

    let (buyer3, expired) = app
        .order(1000, Utc::now() - chrono::Duration::seconds(1))
        .await;
    let response = app.pay(Some(&buyer3), &expired, "pm_card_visa").await;
    assert_eq!(
        (response.status, response.error_message()),
        (409, "Order has expired")
    );
    assert!(app.stripe.requests().is_empty(), "Stripe never called");
}

#[tokio::test]
async fn a_declined_card_is_402_with_stripes_message_and_nothing_is_recorded() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    let response = app
        .pay(Some(&buyer), &order, "pm_card_chargeDeclined")
        .await;
    assert_eq!(
        (response.status, response.error_message()),
        (402, "Your card was declined.")
    );
    assert_eq!(app.payments_stored().await, 0);
    // Another card afterwards is a new attempt and succeeds.
    assert_eq!(
        app.pay(Some(&buyer), &order, "pm_card_visa").await.status,
        201
    );
    app.expect_payment_events(1).await;
    // Stripe answered both calls (a decline is an answer): timed as such.
    assert_charges_timed(&app.address, "ok").await;
}

#[tokio::test]
async fn stripe_timing_out_is_503_and_nothing_is_recorded() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    let response = app.pay(Some(&buyer), &order, "pm_card_slow").await;
    assert_eq!(response.status, 503, "{:?}", response.body);
    assert!(
        response
            .error_message()
            .contains("payment provider is unavailable"),
        "{}",
        response.error_message()
    );
    assert_eq!(app.payments_stored().await, 0);
    app.expect_payment_events(0).await;
    // The charging slot was released: a retry goes through.
    assert_eq!(
        app.pay(Some(&buyer), &order, "pm_card_visa").await.status,
        201
    );
    assert_charges_timed(&app.address, "error").await;
}

#[tokio::test]
async fn stripe_unreachable_is_503() {
    let unreachable = GatewayConfig::Stripe {
        secret_key: common::config::Secret::new("sk_test_x"),
        webhook_secret: common::config::Secret::new("whsec_x"),
        api_base: Some("http://127.0.0.1:9/".into()),
        timeout: Duration::from_secs(1),
    };
    let app = spawn_app_with(unreachable, StripeStandIn::start().await).await;
    let (buyer, order) = app.open_order().await;
    let response = app.pay(Some(&buyer), &order, "pm_card_visa").await;
    assert_eq!(response.status, 503);
    assert_eq!(app.payments_stored().await, 0);
}

#[tokio::test]
async fn two_concurrent_payments_for_one_order_charge_once() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    let (a, b) = tokio::join!(
        app.pay(Some(&buyer), &order, "pm_card_visa"),
        app.pay(Some(&buyer), &order, "pm_card_visa"),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{:?} {:?}", a.body, b.body);
    assert_eq!(app.stripe.intents(), 1);
    assert_eq!(app.payments_stored().await, 1);
    app.expect_payment_events(1).await;
}

#[tokio::test]
async fn the_simulated_gateway_pays_without_any_network_call() {
    let stripe = StripeStandIn::start().await;
    let app = spawn_app_with(GatewayConfig::Simulated, stripe).await;
    let (buyer, order) = app.open_order().await;
    let response = app.pay(Some(&buyer), &order, "pm_card_visa").await;
    assert_eq!(response.status, 201);
    assert!(
        response.body["stripeId"]
            .as_str()
            .unwrap()
            .starts_with("pi_simulated_")
    );
    assert!(app.stripe.requests().is_empty());
    app.expect_payment_events(1).await;
}

/// Asserts that `/metrics` times at least one call to charge with this outcome.
async fn assert_charges_timed(address: &str, outcome: &str) {
    let metrics = reqwest::get(format!("{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(
            |line| line.starts_with("stripe_request_duration_seconds_count{")
                && line.contains(r#"operation="charge""#)
                && line.contains(&format!(r#"outcome="{outcome}""#))
        ),
        "no charge timed with outcome {outcome}:\n{metrics}"
    );
}
