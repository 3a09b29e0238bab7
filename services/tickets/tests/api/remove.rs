//! Sellers take tickets off sale: `DELETE /api/tickets/{id}` and `ticket.removed`.
use std::time::Duration;

use common::events::{OrderCreated, OrderTicket};
use reqwest::Method;
use serde_json::json;
use testkit::{eventually, new_user_id};

use crate::helpers::{TestApp, spawn_app};

async fn remove(app: &TestApp, user: Option<&str>, id: &str) -> testkit::JsonResponse {
    app.request(Method::DELETE, &format!("/api/tickets/{id}"), user, None)
        .await
}

pub fn order_created(order: &str, ticket: &str, price_cents: i64) -> OrderCreated {
    OrderCreated {
        id: order.to_owned(),
        user_id: new_user_id(),
        expires_at: chrono::Utc::now(),
        ticket: OrderTicket {
            id: ticket.to_owned(),
            price_cents,
        },
        version: 0,
    }
}

#[tokio::test]
async fn the_seller_removes_a_free_ticket_which_leaves_the_list_and_is_announced() {
    let app = spawn_app().await;
    let (seller, id) = app.listed_ticket().await;
    let (_, other) = app.listed_ticket().await;
    let removed = remove(&app, Some(&seller), &id).await;
    assert_eq!(removed.status, 204, "{:?}", removed.body);

    let list = app.get("/api/tickets").await.body;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [other.as_str()]);
    let shown = app.get(&format!("/api/tickets/{id}")).await.body;
    assert_eq!(
        (shown["status"].as_str(), shown["version"].as_i64()),
        (Some("removed"), Some(1))
    );

    let events = eventually("ticket.removed", Duration::from_secs(10), || async {
        let events = app.events("ticket.removed").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(
        events[0]["data"],
        json!({"id": id, "userId": seller, "version": 1})
    );

    // Twice is a no-op; editing it is refused.
    assert_eq!(remove(&app, Some(&seller), &id).await.status, 204);
    let edit = app
        .update(Some(&seller), &id, json!({"title": "Back", "price": 10}))
        .await;
    assert_eq!(edit.status, 409);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.events("ticket.removed").await.len(), 1);
    assert_eq!(
        app.get(&format!("/api/tickets/{id}")).await.body["version"],
        1
    );
}

#[tokio::test]
async fn removing_checks_401_then_404_then_403_then_409() {
    let app = spawn_app().await;
    let (seller, id) = app.listed_ticket().await;
    assert_eq!(remove(&app, None, &id).await.status, 401);
    for unknown in ["507f1f77bcf86cd799439011", "nope"] {
        let response = remove(&app, Some(&seller), unknown).await;
        assert_eq!(
            (response.status, response.error_message()),
            (404, "Ticket not found")
        );
    }
    let other = remove(&app, Some(&new_user_id()), &id).await;
    assert_eq!(other.status, 403);

    app.publish(order_created("o1", &id, 2000)).await;
    eventually("reserved", Duration::from_secs(10), || async {
        (app.get(&format!("/api/tickets/{id}")).await.body["status"] == "reserved").then_some(())
    })
    .await;
    let reserved = remove(&app, Some(&seller), &id).await;
    assert_eq!(
        (reserved.status, reserved.error_message()),
        (409, "Cannot remove a reserved ticket")
    );
    assert_eq!(
        app.get(&format!("/api/tickets/{id}")).await.body["status"],
        "reserved"
    );
}

/// orders placed the order from its replica before it learned of the removal: the order
/// wins, so that a removed ticket never has an active order; once it lets go, the removal
/// stands.
#[tokio::test]
async fn an_order_placed_before_the_removal_was_known_reserves_the_ticket() {
    let app = spawn_app().await;
    let (seller, id) = app.listed_ticket().await;
    assert_eq!(remove(&app, Some(&seller), &id).await.status, 204);
    app.publish(order_created("o1", &id, 2000)).await;
    let t = eventually("reserved", Duration::from_secs(10), || async {
        let t = app.get(&format!("/api/tickets/{id}")).await.body;
        (t["status"] == "reserved").then_some(t)
    })
    .await;
    assert_eq!(
        (t["orderId"].as_str(), t["version"].as_i64()),
        (Some("o1"), Some(2))
    );
    let updates = eventually("ticket.updated", Duration::from_secs(10), || async {
        let events = app.events("ticket.updated").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(updates[0]["data"]["version"], 2);

    // When that order is cancelled, the ticket goes off sale again: the seller's removal
    // stands.
    app.publish(common::events::OrderCancelled {
        id: "o1".into(),
        ticket: common::events::OrderTicketRef { id: id.clone() },
        version: 1,
        reason: Some(common::events::CancelReason::Expired),
    })
    .await;
    let t = eventually("removed again", Duration::from_secs(10), || async {
        let t = app.get(&format!("/api/tickets/{id}")).await.body;
        (t["status"] == "removed").then_some(t)
    })
    .await;
    assert_eq!(
        (t["orderId"].clone(), t["version"].as_i64()),
        (json!(null), Some(3))
    );
    let removals = eventually(
        "the second ticket.removed",
        Duration::from_secs(10),
        || async {
            let events = app.events("ticket.removed").await;
            (events.len() == 2).then_some(events)
        },
    )
    .await;
    assert_eq!(removals[1]["data"]["version"], 3);
    assert!(
        app.get("/api/tickets")
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
}
