use std::time::Duration;

use common::events::{CancelReason, OrderCancelled, OrderCreated, OrderTicket, OrderTicketRef};
use serde_json::Value;
use testkit::{eventually, new_user_id};

use crate::helpers::{TestApp, spawn_app};

fn created(order: &str, ticket: &str) -> OrderCreated {
    OrderCreated {
        id: order.to_owned(),
        user_id: new_user_id(),
        expires_at: chrono::Utc::now(),
        ticket: OrderTicket {
            id: ticket.to_owned(),
            price_cents: 2000,
        },
        version: 0,
    }
}

fn cancelled(order: &str, ticket: &str) -> OrderCancelled {
    OrderCancelled {
        id: order.to_owned(),
        ticket: OrderTicketRef {
            id: ticket.to_owned(),
        },
        version: 1,
        reason: Some(CancelReason::Buyer),
    }
}

async fn ticket(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/tickets/{id}")).await.body
}

async fn wait_for_order_id(app: &TestApp, id: &str, expected: Option<&str>) -> Value {
    eventually(
        &format!("orderId {expected:?}"),
        Duration::from_secs(10),
        || async {
            let t = ticket(app, id).await;
            (t["orderId"].as_str() == expected).then_some(t)
        },
    )
    .await
}

/// Lets the listeners drain what was published, so "nothing happened" is meaningful.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(700)).await;
}

#[tokio::test]
async fn order_created_reserves_once_even_when_redelivered() {
    let app = spawn_app().await;
    let (_, id) = app.listed_ticket().await;
    let first = app.publish(created("o1", &id)).await;
    let reserved = wait_for_order_id(&app, &id, Some("o1")).await;
    assert_eq!(reserved["version"], 1);
    // The same event again (a redelivery under another message id).
    app.publish(first.data.clone()).await;
    settle().await;
    assert_eq!(ticket(&app, &id).await["version"], 1);
    let updates = app.events("ticket.updated").await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["data"]["orderId"], "o1");
    assert_eq!(updates[0]["data"]["version"], 1);
}

#[tokio::test]
async fn only_the_holding_orders_cancellation_frees_the_ticket() {
    let app = spawn_app().await;
    let (_, id) = app.listed_ticket().await;
    app.publish(created("o1", &id)).await;
    wait_for_order_id(&app, &id, Some("o1")).await;

    app.publish(cancelled("someone-else", &id)).await;
    settle().await;
    assert_eq!(
        ticket(&app, &id).await["orderId"],
        "o1",
        "another order's cancellation"
    );

    app.publish(cancelled("o1", &id)).await;
    let free = wait_for_order_id(&app, &id, None).await;
    assert_eq!(free["version"], 2);
    app.publish(cancelled("o1", &id)).await;
    settle().await;
    assert_eq!(
        ticket(&app, &id).await["version"],
        2,
        "a repeated cancellation changes nothing"
    );
}

#[tokio::test]
async fn a_cancellation_that_overtakes_its_creation_leaves_the_ticket_free() {
    let app = spawn_app().await;
    let (_, id) = app.listed_ticket().await;
    app.publish(cancelled("o1", &id)).await;
    settle().await;
    app.publish(created("o1", &id)).await;
    settle().await;
    let t = ticket(&app, &id).await;
    assert!(t["orderId"].is_null(), "{t}");
    // The next buyer can still reserve it.
    app.publish(created("o2", &id)).await;
    wait_for_order_id(&app, &id, Some("o2")).await;
}

#[tokio::test]
async fn a_new_order_waits_until_the_previous_holder_is_cancelled() {
    let app = spawn_app().await;
    let (_, id) = app.listed_ticket().await;
    app.publish(created("o1", &id)).await;
    wait_for_order_id(&app, &id, Some("o1")).await;
    // o2's creation arrives before o1's cancellation: it must wait, not be lost.
    app.publish(created("o2", &id)).await;
    settle().await;
    assert_eq!(ticket(&app, &id).await["orderId"], "o1");
    app.publish(cancelled("o1", &id)).await;
    let t = wait_for_order_id(&app, &id, Some("o2")).await;
    assert_eq!(t["version"], 3);
}

#[tokio::test]
async fn a_state_request_is_answered_with_the_ticket_as_it_is() {
    let app = spawn_app().await;
    let (seller, id) = app.listed_ticket().await;
    app.publish(created("o1", &id)).await;
    wait_for_order_id(&app, &id, Some("o1")).await;
    app.publish(common::events::TicketResyncRequested {
        id: id.clone(),
        known_version: Some(0),
        requested_by: "orders".into(),
    })
    .await;
    let snapshot = eventually("a ticket.snapshot", Duration::from_secs(10), || async {
        app.events("ticket.snapshot").await.pop()
    })
    .await;
    let data = &snapshot["data"];
    assert_eq!(data["id"], id.as_str());
    assert_eq!(data["orderId"], "o1");
    assert_eq!(data["userId"], seller.as_str());
    assert_eq!(data["version"], 1);
}

#[tokio::test]
async fn a_lost_cancellation_is_recovered_from_the_holders_state() {
    let app = spawn_app().await;
    let (_, id) = app.listed_ticket().await;
    app.publish(created("o1", &id)).await;
    wait_for_order_id(&app, &id, Some("o1")).await;
    // o1's cancellation never arrives; o2 waits for the ticket and asks for o1's state.
    app.publish(created("o2", &id)).await;
    // Either cancellation may be the lost one: it asks about the holder and the waiting order.
    let requests = eventually(
        "order.resync_requested",
        Duration::from_secs(30),
        || async {
            let requests = app.events("order.resync_requested").await;
            (requests.len() >= 2).then_some(requests)
        },
    )
    .await;
    let mut asked: Vec<&str> = requests
        .iter()
        .map(|r| r["data"]["id"].as_str().unwrap())
        .collect();
    asked.sort_unstable();
    asked.dedup();
    assert_eq!(asked, ["o1", "o2"]);
    assert!(
        requests
            .iter()
            .all(|r| r["data"]["requestedBy"] == "tickets")
    );
    // orders answers: o1 is cancelled. The ticket is freed, then o2 takes it.
    app.publish(common::events::OrderSnapshot {
        id: "o1".into(),
        user_id: new_user_id(),
        status: "cancelled".into(),
        expires_at: chrono::Utc::now(),
        ticket: OrderTicket {
            id: id.clone(),
            price_cents: 2000,
        },
        payment_id: None,
        version: 1,
    })
    .await;
    let held = eventually("o2 holds the ticket", Duration::from_secs(30), || async {
        let t = ticket(&app, &id).await;
        (t["orderId"] == "o2").then_some(t)
    })
    .await;
    assert_eq!(
        held["version"], 3,
        "released, then reserved: one version each"
    );
}
