use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use testkit::{eventually, new_user_id};

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn creating_a_ticket_needs_a_session() {
    let app = spawn_app().await;
    let response = app
        .post("/api/tickets", json!({"title": "Gig", "price": 10}))
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(response.error_message(), "Not authenticated");
}

#[tokio::test]
async fn invalid_titles_and_prices_are_reported_per_field() {
    let app = spawn_app().await;
    let user = new_user_id();
    let cases = [
        (
            json!({"title": "  ", "price": 10}),
            vec!["title"],
            "blank title",
        ),
        (
            json!({"title": "x".repeat(121), "price": 10}),
            vec!["title"],
            "long title",
        ),
        (json!({"price": 10}), vec!["title"], "missing title"),
        (
            json!({"title": "Gig", "price": 0}),
            vec!["price"],
            "zero price",
        ),
        (
            json!({"title": "Gig", "price": -3}),
            vec!["price"],
            "negative price",
        ),
        (
            json!({"title": "Gig", "price": 10.001}),
            vec!["price"],
            "three decimals",
        ),
        (
            json!({"title": "Gig", "price": 1000000.5}),
            vec!["price"],
            "too expensive",
        ),
        (
            json!({"title": "Gig", "price": "10"}),
            vec!["price"],
            "price as a string",
        ),
        (json!({}), vec!["title", "price"], "empty body"),
        (
            json!({"title": "Gig", "price": 0.49}),
            vec!["price"],
            "below the smallest card charge",
        ),
    ];
    for (body, fields, why) in cases {
        let response = app
            .request(Method::POST, "/api/tickets", Some(&user), Some(body))
            .await;
        assert_eq!(response.status, 400, "{why}");
        assert_eq!(response.error_fields(), fields, "{why}");
    }
    let cheap = app
        .request(
            Method::POST,
            "/api/tickets",
            Some(&user),
            Some(json!({"title": "Gig", "price": 0.3})),
        )
        .await;
    assert_eq!(
        cheap.error_message(),
        "Price must be at least 0.50, the smallest amount a card can be charged"
    );
    let smallest = app
        .request(
            Method::POST,
            "/api/tickets",
            Some(&user),
            Some(json!({"title": "Gig", "price": 0.5})),
        )
        .await;
    assert_eq!(smallest.status, 201, "{:?}", smallest.body);
}

/// The optional details, null when not given (details.rs).
const DETAILS: [&str; 7] = [
    "venue",
    "city",
    "startsAt",
    "section",
    "row",
    "seat",
    "description",
];

#[tokio::test]
async fn a_created_ticket_is_returned_and_announced_in_cents() {
    let app = spawn_app().await;
    let seller = new_user_id();
    let response = app.create(&seller, "  Opera night ", 19.99).await;
    assert_eq!(response.status, 201);
    let id = response.body["id"].as_str().unwrap().to_owned();
    let mut expected = json!({"id": id, "title": "Opera night", "price": 19.99, "userId": seller, "orderId": null, "status": "available", "version": 0});
    for field in DETAILS {
        expected[field] = json!(null);
    }
    assert_eq!(response.body, expected);
    let events = eventually("ticket.created", Duration::from_secs(10), || async {
        let events = app.events("ticket.created").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events.len(), 1);
    let mut expected = json!({"id": id, "title": "Opera night", "priceCents": 1999, "userId": seller, "version": 0});
    for field in DETAILS {
        expected[field] = json!(null);
    }
    assert_eq!(events[0]["data"], expected);
}

#[tokio::test]
async fn a_seller_listing_faster_than_the_limit_gets_429_and_others_do_not() {
    let app = spawn_app_with(|config| config.listings_per_minute = 2).await;
    let (seller, other) = (new_user_id(), new_user_id());
    for _ in 0..2 {
        assert_eq!(app.create(&seller, "Concert", 10.0).await.status, 201);
    }
    let refused = app.create(&seller, "Concert", 10.0).await;
    assert_eq!(refused.status, 429);
    assert!(refused.headers.contains_key("retry-after"));
    assert!(
        refused.error_message().contains("too fast"),
        "{:?}",
        refused.body
    );
    assert_eq!(app.create(&other, "Concert", 10.0).await.status, 201);
}
