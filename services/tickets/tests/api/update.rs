use std::time::Duration;

use common::events::{OrderCreated, OrderTicket};
use serde_json::json;
use testkit::{eventually, new_user_id};

use crate::helpers::{TestApp, spawn_app};

async fn reserve(app: &TestApp, ticket_id: &str) {
    app.publish(OrderCreated {
        id: "order-1".into(),
        user_id: new_user_id(),
        expires_at: chrono::Utc::now(),
        ticket: OrderTicket {
            id: ticket_id.to_owned(),
            price_cents: 2000,
        },
        version: 0,
    })
    .await;
    eventually(
        "the ticket to be reserved",
        Duration::from_secs(10),
        || async {
            let ticket = app.get(&format!("/api/tickets/{ticket_id}")).await.body;
            (!ticket["orderId"].is_null()).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_owner_edits_a_free_ticket_and_the_change_is_announced() {
    let app = spawn_app().await;
    let (seller, id) = app.listed_ticket().await;
    let response = app
        .update(
            Some(&seller),
            &id,
            json!({"title": "New title", "price": 25.5}),
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(
        (
            response.body["title"].clone(),
            response.body["price"].clone()
        ),
        (json!("New title"), json!(25.5))
    );
    assert_eq!(response.body["version"], 1);
    assert_eq!(
        app.get(&format!("/api/tickets/{id}")).await.body["title"],
        "New title"
    );
    let events = eventually("ticket.updated", Duration::from_secs(10), || async {
        let events = app.events("ticket.updated").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events[0]["data"]["version"], 1);
    assert_eq!(events[0]["data"]["priceCents"], 2550);
}

#[tokio::test]
async fn update_checks_401_then_400_then_404_then_403_then_409() {
    let app = spawn_app().await;
    let (seller, id) = app.listed_ticket().await;
    let stranger = new_user_id();
    let bad = json!({"title": "", "price": 0});
    let good = json!({"title": "Fine", "price": 5});
    let unknown = "507f1f77bcf86cd799439011";

    assert_eq!(app.update(None, &id, bad.clone()).await.status, 401);
    assert_eq!(
        app.update(Some(&stranger), unknown, bad.clone())
            .await
            .status,
        400
    );
    assert_eq!(
        app.update(Some(&stranger), unknown, good.clone())
            .await
            .status,
        404
    );
    assert_eq!(
        app.update(Some(&stranger), "nonsense", good.clone())
            .await
            .status,
        404
    );
    let forbidden = app.update(Some(&stranger), &id, good.clone()).await;
    assert_eq!(
        (forbidden.status, forbidden.error_message()),
        (403, "Not the owner")
    );
    let too_cheap = app
        .update(Some(&seller), &id, json!({"title": "Fine", "price": 0.25}))
        .await;
    assert_eq!(
        (too_cheap.status, too_cheap.error_fields()),
        (400, vec!["price"])
    );

    reserve(&app, &id).await;
    let reserved = app.update(Some(&seller), &id, good.clone()).await;
    assert_eq!(
        (reserved.status, reserved.error_message()),
        (409, "Cannot edit a reserved ticket")
    );
    // A stranger still learns nothing beyond 403 about a reserved ticket.
    assert_eq!(app.update(Some(&stranger), &id, good).await.status, 403);
}

#[tokio::test]
async fn of_concurrent_updates_to_one_version_one_applies_and_the_rest_get_409() {
    let app = spawn_app().await;
    let (seller, id) = app.listed_ticket().await;
    let attempts = (0..10).map(|n| {
        let app = &app;
        let seller = seller.clone();
        let id = id.clone();
        async move {
            let response = app
                .update(
                    Some(&seller),
                    &id,
                    json!({"title": format!("Edit {n}"), "price": 10 + n}),
                )
                .await;
            (response.status, response.body["title"].clone())
        }
    });
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<_> = results
        .iter()
        .filter(|(status, _)| *status == 200)
        .collect();
    assert!(!winners.is_empty());
    assert!(
        results
            .iter()
            .all(|(status, _)| *status == 200 || *status == 409),
        "{results:?}"
    );
    // Every winner applied on top of the previous one: versions never collide.
    let ticket = app.get(&format!("/api/tickets/{id}")).await.body;
    assert_eq!(ticket["version"].as_i64().unwrap(), winners.len() as i64);
    let events = eventually("all updates announced", Duration::from_secs(10), || async {
        let events = app.events("ticket.updated").await;
        (events.len() == winners.len()).then_some(events)
    })
    .await;
    let versions: Vec<i64> = events
        .iter()
        .map(|e| e["data"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, (1..=winners.len() as i64).collect::<Vec<_>>());
    assert_eq!(events.last().unwrap()["data"]["title"], ticket["title"]);
}
