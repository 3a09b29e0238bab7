//! Every successful charge either completes its order or is refunded, once; open intents
//! of an order that is over, or of an earlier attempt, are cancelled at Stripe.

use std::time::Duration;

use chrono::Utc;
use payments::GatewayConfig;
use reqwest::Method;
use serde_json::json;
use testkit::stripe::{StripeStandIn, charge_refunded_event, succeeded_event};
use testkit::{eventually, new_user_id};

use crate::helpers::{TestApp, WEBHOOK_SECRET, spawn_app, spawn_app_with};

fn signed(body: &serde_json::Value) -> Option<String> {
    Some(payments::sign_webhook(
        &serde_json::to_vec(body).unwrap(),
        WEBHOOK_SECRET,
        Utc::now().timestamp(),
    ))
}

async fn intent_cancelled_at_stripe(app: &TestApp, id: &str) {
    eventually(
        "the intent cancelled at Stripe",
        Duration::from_secs(15),
        || async { (app.stripe.intent_status(id).as_deref() == Some("canceled")).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_cancelled_orders_payment_is_refunded_once_and_announced() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    let paid = app.pay(Some(&buyer), &order, "pm_card_visa").await;
    assert_eq!(paid.status, 201);
    let payment_id = paid.body["id"].as_str().unwrap().to_owned();
    app.cancel(&order).await;

    let payment = app.payment_state_becomes("pi_standin_1", "refunded").await;
    let refund = payment.get_document("refund").unwrap();
    assert_eq!(refund.get_str("refundId").unwrap(), "re_standin_1");
    assert_eq!(refund.get_str("reason").unwrap(), "order_cancelled");
    let events = app.expect_refund_events(1).await;
    let data = &events[0]["data"];
    assert_eq!(data["id"], refund.get_object_id("id").unwrap().to_hex());
    assert_eq!(data["paymentId"], json!(payment_id));
    assert_eq!(data["orderId"], json!(order));
    assert_eq!(data["stripeId"], "pi_standin_1");
    assert_eq!(data["refundId"], "re_standin_1");
    assert_eq!(data["amountCents"], 1999);
    assert_eq!(data["currency"], "usd");
    assert_eq!(data["reason"], "order_cancelled");

    let requests = app.stripe.refund_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        requests[0].idempotency_key.as_deref(),
        Some(format!("gittix-refund-{payment_id}").as_str())
    );
    assert_eq!(requests[0].form["amount"], "1999");
    assert_eq!(requests[0].form["payment_intent"], "pi_standin_1");

    // A redelivered cancellation and Stripe's charge.refunded change nothing.
    app.cancel(&order).await;
    let hint = charge_refunded_event("pi_standin_1");
    let delivered = app.webhook(&hint, signed(&hint)).await;
    assert_eq!(
        (delivered.status, delivered.body["handled"].clone()),
        (200, json!(false))
    );
    app.expect_refund_events(1).await;
    assert_eq!(app.stripe.refunds().len(), 1);
}

#[tokio::test]
async fn of_two_intents_the_one_order_completed_names_is_settled_the_other_refunded() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    assert_eq!(
        app.pay(Some(&buyer), &order, "pm_card_threeDSecure2Required")
            .await
            .status,
        202
    );
    app.stripe.succeed_intent("pi_standin_1");
    let three_d = succeeded_event("pi_standin_1", &order, 1999);
    assert_eq!(app.webhook(&three_d, signed(&three_d)).await.status, 200);
    // The first is paid and not settled yet: another card is refused as already paid.
    let second = app.pay(Some(&buyer), &order, "pm_card_visa").await;
    assert_eq!(second.error_message(), "Order is already paid");
    let events = app.expect_payment_events(1).await;
    let first_id = events[0]["data"]["id"].as_str().unwrap().to_owned();

    // A second charge reaches us anyway (say from the buyer's other tab, by webhook).
    app.stripe
        .add_succeeded_intent("pi_standin_other", &order, 1999);
    let other = succeeded_event("pi_standin_other", &order, 1999);
    assert_eq!(
        app.webhook(&other, signed(&other)).await.body["handled"],
        json!(true)
    );
    app.expect_payment_events(2).await;

    // Orders completed the order with the 3-D Secure payment.
    app.complete(&order, Some(&first_id)).await;
    app.payment_state_becomes("pi_standin_1", "settled").await;
    app.payment_state_becomes("pi_standin_other", "refunded")
        .await;
    let refunds = app.expect_refund_events(1).await;
    assert_eq!(refunds[0]["data"]["stripeId"], "pi_standin_other");
    assert_eq!(app.stripe.refunds().len(), 1);
}

#[tokio::test]
async fn a_requires_action_intent_confirmed_after_the_order_was_cancelled_is_refunded() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    assert_eq!(
        app.pay(Some(&buyer), &order, "pm_card_threeDSecure2Required")
            .await
            .status,
        202
    );
    // The buyer finishes 3-D Secure just as the order is cancelled: our cancellation
    // finds the intent succeeded.
    app.stripe.succeed_intent("pi_standin_1");
    app.cancel(&order).await;
    let late = succeeded_event("pi_standin_1", &order, 1999);
    assert_eq!(app.webhook(&late, signed(&late)).await.status, 200);

    app.payment_state_becomes("pi_standin_1", "refunded").await;
    app.expect_payment_events(1).await;
    let events = app.expect_refund_events(1).await;
    assert_eq!(events[0]["data"]["reason"], "order_cancelled");
    assert_eq!(app.stripe.refunds().len(), 1);
    assert_eq!(
        app.stripe.intent_status("pi_standin_1").unwrap(),
        "succeeded"
    );
}

#[tokio::test]
async fn a_cancelled_orders_open_intent_is_cancelled_at_stripe() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    assert_eq!(
        app.pay(Some(&buyer), &order, "pm_card_threeDSecure2Required")
            .await
            .status,
        202
    );
    app.cancel(&order).await;
    intent_cancelled_at_stripe(&app, "pi_standin_1").await;
    let intents = app.collection("intents").await;
    eventually("the intent closed", Duration::from_secs(10), || async {
        let intent = intents
            .find_one(bson::doc! {"_id": "pi_standin_1"})
            .await
            .unwrap()?;
        (intent.get_str("status").ok()? == "canceled").then_some(())
    })
    .await;
    // Stripe's own event about it is idempotent.
    let canceled = json!({"id": "evt_c", "type": "payment_intent.canceled",
        "data": {"object": {"id": "pi_standin_1", "status": "canceled"}}});
    assert_eq!(
        app.webhook(&canceled, signed(&canceled)).await.body["handled"],
        json!(false)
    );
    assert_eq!(app.stripe.cancel_requests(), ["pi_standin_1"]);
    assert_eq!(app.payments_stored().await, 0);
    assert!(app.stripe.refund_requests().is_empty());
}

#[tokio::test]
async fn another_card_cancels_the_open_intent_of_the_first() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    assert_eq!(
        app.pay(Some(&buyer), &order, "pm_card_threeDSecure2Required")
            .await
            .status,
        202
    );
    let paid = app.pay(Some(&buyer), &order, "pm_card_visa").await;
    assert_eq!(paid.status, 201);
    intent_cancelled_at_stripe(&app, "pi_standin_1").await;
    app.complete(&order, paid.body["id"].as_str()).await;
    app.payment_state_becomes("pi_standin_2", "settled").await;
    app.expect_refund_events(0).await;
    assert!(app.stripe.refund_requests().is_empty());
}

#[tokio::test]
async fn a_charge_of_another_amount_than_the_orders_price_is_refunded() {
    let app = spawn_app().await;
    let (_, order) = app.open_order().await;
    app.stripe
        .add_succeeded_intent("pi_standin_odd", &order, 500);
    let event = succeeded_event("pi_standin_odd", &order, 500);
    assert_eq!(
        app.webhook(&event, signed(&event)).await.body["handled"],
        json!(true)
    );
    app.payment_state_becomes("pi_standin_odd", "refunded")
        .await;
    let events = app.expect_refund_events(1).await;
    assert_eq!(events[0]["data"]["reason"], "amount_mismatch");
    assert_eq!(events[0]["data"]["amountCents"], 500);
}

#[tokio::test]
async fn refunds_are_retried_through_a_stripe_outage_and_a_restart_without_refunding_twice() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    assert_eq!(
        app.pay(Some(&buyer), &order, "pm_card_visa").await.status,
        201
    );
    // Stripe refunds, but its answers are lost (500) for a while.
    app.stripe.fail_refunds(3);
    app.cancel(&order).await;
    eventually("two failed attempts", Duration::from_secs(10), || async {
        (app.stripe.refund_requests().len() >= 2).then_some(())
    })
    .await;
    let pending = app
        .payment_state_becomes("pi_standin_1", "refund_pending")
        .await;
    assert!(
        pending
            .get_document("refund")
            .unwrap()
            .get_str("lastError")
            .is_ok()
    );

    let app = app.restart().await;
    app.payment_state_becomes("pi_standin_1", "refunded").await;
    app.expect_refund_events(1).await;
    let requests = app.stripe.refund_requests();
    assert!(requests.len() >= 4, "{requests:?}");
    let keys: std::collections::HashSet<_> =
        requests.iter().map(|r| r.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), 1, "one idempotency key for every attempt");
    assert_eq!(app.stripe.refunds().len(), 1, "one refund at Stripe");
}

#[tokio::test]
async fn the_buyer_sees_the_payments_and_refunds_of_an_order() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    let paid = app.pay(Some(&buyer), &order, "pm_card_visa").await;
    assert_eq!(paid.status, 201);
    let before = app.history(Some(&buyer), &order).await;
    assert_eq!(before.status, 200, "{:?}", before.body);
    assert_eq!(before.body["payments"][0]["status"], "succeeded");
    assert_eq!(before.body["refunds"], json!([]));

    app.cancel(&order).await;
    app.payment_state_becomes("pi_standin_1", "refunded").await;
    let after = app.history(Some(&buyer), &order).await;
    assert_eq!(after.body["orderId"], json!(order));
    let payment = &after.body["payments"][0];
    assert_eq!(payment["id"], paid.body["id"]);
    assert_eq!(payment["amount"], json!(19.99));
    assert_eq!(payment["currency"], "usd");
    assert_eq!(payment["status"], "refunded");
    let refund = &after.body["refunds"][0];
    assert_eq!(refund["paymentId"], paid.body["id"]);
    assert_eq!(refund["refundId"], "re_standin_1");
    assert_eq!(refund["amount"], json!(19.99));
    assert_eq!(refund["status"], "succeeded");
    assert_eq!(refund["reason"], "order_cancelled");

    assert_eq!(app.history(None, &order).await.status, 401);
    assert_eq!(app.history(Some(&new_user_id()), &order).await.status, 403);
    let unknown = app.history(Some(&buyer), "507f1f77bcf86cd799439011").await;
    assert_eq!(
        (unknown.status, unknown.error_message()),
        (404, "Order not found")
    );
    assert_eq!(app.history(Some(&buyer), "nonsense").await.status, 404);
}

#[tokio::test]
async fn the_simulated_gateway_refunds_and_cancels_too() {
    let app = spawn_app_with(GatewayConfig::Simulated, StripeStandIn::start().await).await;
    let (buyer, order) = app.open_order().await;
    let paid = app.pay(Some(&buyer), &order, "pm_card_visa").await;
    assert_eq!(paid.status, 201);
    let stripe_id = paid.body["stripeId"].as_str().unwrap().to_owned();
    app.cancel(&order).await;
    let payment = app.payment_state_becomes(&stripe_id, "refunded").await;
    assert!(
        payment
            .get_document("refund")
            .unwrap()
            .get_str("refundId")
            .unwrap()
            .starts_with("re_simulated_")
    );
    app.expect_refund_events(1).await;
    assert!(app.stripe.refund_requests().is_empty());
}

#[tokio::test]
async fn a_charge_that_lands_after_the_order_was_cancelled_is_refunded_not_kept() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    app.stripe.set_latency(Duration::from_millis(900));
    let paying = {
        let (buyer, order) = (buyer.clone(), order.clone());
        let http = app.http.clone();
        tokio::spawn(async move {
            let body = json!({"orderId": order, "paymentMethod": "pm_card_visa"});
            http.request(Method::POST, "/api/payments", Some(&buyer), Some(body))
                .await
                .status
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.cancel(&order).await;
    app.stripe.set_latency(Duration::ZERO);
    assert_eq!(
        paying.await.unwrap(),
        409,
        "never 201 for a cancelled order"
    );
    app.payment_state_becomes("pi_standin_1", "refunded").await;
    app.expect_refund_events(1).await;
    assert_eq!(app.stripe.refunds().len(), 1);
}

#[tokio::test]
async fn a_lost_cancellation_is_recovered_from_the_orders_state_and_the_charge_refunded() {
    let app = spawn_app().await;
    let (buyer, order) = app.open_order().await;
    let paid = app.pay(Some(&buyer), &order, "pm_card_visa").await;
    assert_eq!(paid.status, 201);
    // Version 1 (the cancellation) never arrives; version 2 cannot apply on version 0.
    app.publish(common::events::OrderCompleted {
        id: order.clone(),
        ticket: common::events::OrderTicketRef { id: "t".into() },
        version: 2,
        payment_id: Some("another".into()),
    })
    .await;
    let asked = eventually(
        "an order.resync_requested",
        Duration::from_secs(30),
        || async {
            testkit::stored_events(&app.bus_config, "order.resync_requested")
                .await
                .pop()
        },
    )
    .await;
    assert_eq!(asked["data"]["id"], json!(order));
    assert_eq!(asked["data"]["requestedBy"], "payments");
    // orders answers with the order as it is: cancelled. The charge is refunded.
    app.publish(common::events::OrderSnapshot {
        id: order.clone(),
        user_id: buyer.clone(),
        status: "cancelled".into(),
        expires_at: Utc::now(),
        ticket: common::events::OrderTicket {
            id: "t".into(),
            price_cents: 1999,
        },
        payment_id: None,
        version: 3,
    })
    .await;
    app.payment_state_becomes("pi_standin_1", "refunded").await;
    app.expect_refund_events(1).await;
}
