use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::json;
use testkit::{eventually, new_user_id};

use crate::helpers::spawn_app;

#[tokio::test]
async fn ordering_needs_a_session_and_a_valid_known_ticket() {
    let app = spawn_app().await;
    let (seller, ticket) = app.listed_ticket(20.0).await;
    let buyer = new_user_id();
    let anonymous = app.post("/api/orders", json!({"ticketId": ticket})).await;
    assert_eq!(anonymous.status, 401);
    for body in [
        json!({}),
        json!({"ticketId": "nope"}),
        json!({"ticketId": 12}),
    ] {
        let response = app
            .request(
                Method::POST,
                "/api/orders",
                Some(&buyer),
                Some(body.clone()),
            )
            .await;
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(response.error_fields(), ["ticketId"], "{body}");
    }
    let unknown = app.order(&buyer, "507f1f77bcf86cd799439011").await;
    assert_eq!(
        (unknown.status, unknown.error_message()),
        (404, "Ticket not found")
    );
    let own = app.order(&seller, &ticket).await;
    assert_eq!(
        (own.status, own.error_message()),
        (400, "You cannot buy your own ticket")
    );
}

#[tokio::test]
async fn an_order_reserves_its_ticket_until_its_window_closes() {
    let app = spawn_app().await;
    let (_, ticket) = app.listed_ticket(19.99).await;
    let buyer = new_user_id();
    let before = Utc::now();
    let response = app.order(&buyer, &ticket).await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    let order = &response.body;
    assert_eq!(order["status"], "created");
    assert_eq!(order["userId"], json!(buyer));
    assert_eq!(order["version"], 0);
    assert_eq!(
        order["ticket"],
        json!({"id": ticket, "title": "Concert", "price": 19.99, "venue": null, "city": null,
            "startsAt": null, "section": null, "row": null, "seat": null, "description": null})
    );
    let expires: DateTime<Utc> = order["expiresAt"].as_str().unwrap().parse().unwrap();
    let window = (expires - before).num_seconds();
    assert!((899..=901).contains(&window), "{window}");

    let order_id = order["id"].as_str().unwrap();
    app.wait_for_event("order.created", order_id).await;
    let events = app.events("order.created").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["data"]["ticket"],
        json!({"id": ticket, "priceCents": 1999})
    );
    assert_eq!(events[0]["data"]["version"], 0);

    let second = app.order(&new_user_id(), &ticket).await;
    assert_eq!(
        (second.status, second.error_message()),
        (409, "Ticket is already reserved")
    );
}

#[tokio::test]
async fn of_200_concurrent_buyers_of_one_ticket_exactly_one_gets_it() {
    let app = spawn_app().await;
    let (_, ticket) = app.listed_ticket(50.0).await;
    let buyers: Vec<String> = (0..200).map(|_| new_user_id()).collect();
    let attempts = buyers.iter().map(|buyer| {
        let app = &app;
        let ticket = ticket.clone();
        async move { app.order(buyer, &ticket).await.status }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        199,
        "{statuses:?}"
    );
    let created = eventually("one order.created", Duration::from_secs(10), || async {
        let events = app.events("order.created").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(created.len(), 1);
    let stored = app
        .orders_collection()
        .await
        .count_documents(bson::doc! {})
        .await
        .unwrap();
    assert_eq!(stored, 1);
}
