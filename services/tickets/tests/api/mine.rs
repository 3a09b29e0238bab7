//! `GET /api/tickets/mine`: a seller's tickets by state; sold ones with what they earned.
use std::time::Duration;

use common::events::{OrderCompleted, OrderTicket, OrderTicketRef};
use reqwest::Method;
use serde_json::Value;
use testkit::{eventually, new_user_id};

use crate::helpers::{TestApp, spawn_app};
use crate::remove::order_created;

async fn mine(app: &TestApp, user: &str, query: &str) -> testkit::JsonResponse {
    app.request(
        Method::GET,
        &format!("/api/tickets/mine{query}"),
        Some(user),
        None,
    )
    .await
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

fn completed(order: &str, ticket: &str) -> OrderCompleted {
    OrderCompleted {
        id: order.to_owned(),
        ticket: OrderTicketRef {
            id: ticket.to_owned(),
        },
        version: 1,
        payment_id: Some("p1".into()),
    }
}

async fn wait_for_status(app: &TestApp, id: &str, status: &str) -> Value {
    eventually(
        &format!("ticket {status}"),
        Duration::from_secs(10),
        || async {
            let t = app.get(&format!("/api/tickets/{id}")).await.body;
            (t["status"] == status).then_some(t)
        },
    )
    .await
}

#[tokio::test]
async fn mine_needs_a_session_and_a_known_status() {
    let app = spawn_app().await;
    let anonymous = app.get("/api/tickets/mine").await;
    assert_eq!(anonymous.status, 401);
    let bad = mine(&app, &new_user_id(), "?status=lost&limit=0").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error_fields(), ["status", "limit"]);
}

#[tokio::test]
async fn a_seller_sees_each_ticket_available_reserved_or_sold_with_what_it_earned() {
    let app = spawn_app().await;
    let seller = new_user_id();
    let mut listed = Vec::new();
    for title in ["A", "B", "C", "D"] {
        let created = app.create(&seller, title, 20.0).await;
        listed.push(created.body["id"].as_str().unwrap().to_owned());
    }
    let (free, reserved, sold, removed) = (&listed[0], &listed[1], &listed[2], &listed[3]);
    app.create(&new_user_id(), "Someone else's", 5.0).await;

    app.publish(order_created("o-reserved", reserved, 2000))
        .await;
    // The sold one was reserved at 15.00 (its price then), then paid.
    app.publish(order_created("o-sold", sold, 1500)).await;
    wait_for_status(&app, sold, "reserved").await;
    app.publish(completed("o-sold", sold)).await;
    let t = wait_for_status(&app, sold, "sold").await;
    assert_eq!(t["orderId"], "o-sold");
    let sale = eventually(
        "the sale's ticket.updated",
        Duration::from_secs(10),
        || async {
            app.events("ticket.updated")
                .await
                .into_iter()
                .find(|e| e["data"]["id"] == sold.as_str() && e["data"]["version"] == 2)
        },
    )
    .await;
    assert_eq!(sale["data"]["sold"], true);
    assert_eq!(sale["data"]["orderId"], "o-sold");
    wait_for_status(&app, reserved, "reserved").await;
    let delete = app
        .request(
            Method::DELETE,
            &format!("/api/tickets/{removed}"),
            Some(&seller),
            None,
        )
        .await;
    assert_eq!(delete.status, 204);

    let all = mine(&app, &seller, "").await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    assert_eq!(ids(&all.body), [sold, reserved, free].map(String::to_owned));
    let by_id = |id: &str| {
        all.body
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id(free)["status"], "available");
    assert!(by_id(free)["earned"].is_null());
    assert_eq!(by_id(reserved)["status"], "reserved");
    assert!(by_id(reserved)["earned"].is_null());
    assert_eq!(by_id(sold)["status"], "sold");
    assert_eq!(by_id(sold)["earned"], 15.0);

    for (status, expected) in [("available", free), ("reserved", reserved), ("sold", sold)] {
        let page = mine(&app, &seller, &format!("?status={status}")).await;
        assert_eq!(ids(&page.body), [expected.to_owned()], "{status}");
    }

    // Sold: it can no longer be removed, and a repeated completion changes nothing.
    let delete = app
        .request(
            Method::DELETE,
            &format!("/api/tickets/{sold}"),
            Some(&seller),
            None,
        )
        .await;
    assert_eq!(
        (delete.status, delete.error_message()),
        (409, "Cannot remove a sold ticket")
    );
    let edit = app
        .update(
            Some(&seller),
            sold,
            serde_json::json!({"title": "C", "price": 1}),
        )
        .await;
    assert_eq!(
        (edit.status, edit.error_message()),
        (409, "Cannot edit a sold ticket")
    );
    app.publish(completed("o-sold", sold)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        app.get(&format!("/api/tickets/{sold}")).await.body["version"],
        2
    );
}

#[tokio::test]
async fn mine_pages_keep_the_status() {
    let app = spawn_app().await;
    let seller = new_user_id();
    let mut expected = Vec::new();
    for n in 0..5 {
        let created = app.create(&seller, &format!("T{n}"), 10.0).await;
        expected.push(created.body["id"].as_str().unwrap().to_owned());
    }
    let reserved = expected.remove(2);
    app.publish(order_created("o1", &reserved, 1000)).await;
    wait_for_status(&app, &reserved, "reserved").await;
    expected.reverse();

    let mut seen = Vec::new();
    let mut path = "/api/tickets/mine?status=available&limit=2".to_owned();
    loop {
        let page = app.request(Method::GET, &path, Some(&seller), None).await;
        assert_eq!(page.status, 200);
        seen.extend(ids(&page.body));
        let Some(link) = page.headers.get("link") else {
            break;
        };
        let link = link.to_str().unwrap();
        assert!(link.contains("status=available"), "{link}");
        path = link
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
    }
    assert_eq!(seen, expected);
}

/// The completion arrived but the creation was lost: orders' snapshot of the paid order
/// reserves and sells the ticket at once, for the order's price.
#[tokio::test]
async fn a_completed_orders_snapshot_sells_the_ticket() {
    let app = spawn_app().await;
    let (seller, id) = app.listed_ticket().await;
    app.publish(common::events::OrderSnapshot {
        id: "o1".into(),
        user_id: new_user_id(),
        status: "complete".into(),
        expires_at: chrono::Utc::now(),
        ticket: OrderTicket {
            id: id.clone(),
            price_cents: 1800,
        },
        payment_id: Some("p1".into()),
        version: 1,
    })
    .await;
    wait_for_status(&app, &id, "sold").await;
    let sold = mine(&app, &seller, "?status=sold").await;
    assert_eq!(sold.body[0]["earned"], 18.0);
}
