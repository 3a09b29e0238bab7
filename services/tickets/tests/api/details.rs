//! A ticket's optional details: venue, city, date, seat, description.
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{eventually, new_user_id};

use crate::helpers::spawn_app;

const FIELDS: [&str; 7] = [
    "venue",
    "city",
    "startsAt",
    "section",
    "row",
    "seat",
    "description",
];

fn full() -> Value {
    json!({
        "title": "Concert", "price": 20, "venue": " Arena ", "city": "Lyon",
        "startsAt": "2099-05-01T22:00:00+02:00", "section": "A", "row": "3", "seat": "12",
        "description": "Front row",
    })
}

#[tokio::test]
async fn details_are_optional_shown_and_published() {
    let app = spawn_app().await;
    let seller = new_user_id();
    let plain = app.create(&seller, "Gig", 10.0).await;
    assert_eq!(plain.status, 201);
    for field in FIELDS {
        assert!(plain.body[field].is_null(), "{field}: {}", plain.body);
    }

    let created = app
        .request(Method::POST, "/api/tickets", Some(&seller), Some(full()))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let shown = app.get(&format!("/api/tickets/{id}")).await.body;
    assert_eq!(shown["venue"], "Arena", "trimmed");
    assert_eq!(shown["city"], "Lyon");
    assert_eq!(shown["startsAt"], "2099-05-01T20:00:00.000Z");
    assert_eq!(shown["section"], "A");
    assert_eq!(shown["row"], "3");
    assert_eq!(shown["seat"], "12");
    assert_eq!(shown["description"], "Front row");

    let events = eventually(
        "ticket.created",
        std::time::Duration::from_secs(10),
        || async {
            let events = app.events("ticket.created").await;
            (events.len() == 2).then_some(events)
        },
    )
    .await;
    let data = &events
        .iter()
        .find(|e| e["data"]["id"] == id.as_str())
        .unwrap()["data"];
    assert_eq!(data["venue"], "Arena");
    assert_eq!(data["startsAt"], "2099-05-01T20:00:00Z");
    assert_eq!(data["seat"], "12");
}

#[tokio::test]
async fn an_edit_keeps_left_out_details_and_clears_null_ones() {
    let app = spawn_app().await;
    let seller = new_user_id();
    let created = app
        .request(Method::POST, "/api/tickets", Some(&seller), Some(full()))
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();

    // An old client sends only title and price: the details stay.
    let edited = app
        .update(
            Some(&seller),
            &id,
            json!({"title": "Concert!", "price": 25}),
        )
        .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    assert_eq!(edited.body["venue"], "Arena");
    assert_eq!(edited.body["startsAt"], "2099-05-01T20:00:00.000Z");

    let edited = app
        .update(
            Some(&seller),
            &id,
            json!({"title": "Concert!", "price": 25, "venue": null, "seat": "", "city": "Paris"}),
        )
        .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    assert!(edited.body["venue"].is_null());
    assert!(edited.body["seat"].is_null());
    assert_eq!(edited.body["city"], "Paris");
    assert_eq!(edited.body["row"], "3");

    let update = eventually(
        "ticket.updated",
        std::time::Duration::from_secs(10),
        || async {
            let events = app.events("ticket.updated").await;
            (events.len() == 2).then_some(events)
        },
    )
    .await;
    let data = &update[1]["data"];
    assert!(data["venue"].is_null());
    assert_eq!(data["city"], "Paris");
    assert_eq!(data["row"], "3");
}

#[tokio::test]
async fn each_invalid_detail_is_named() {
    let app = spawn_app().await;
    let seller = new_user_id();
    let too_long = |n: usize| json!("x".repeat(n));
    for (field, bad) in [
        ("venue", too_long(121)),
        ("city", too_long(81)),
        ("section", too_long(21)),
        ("row", too_long(21)),
        ("seat", too_long(21)),
        ("description", too_long(2001)),
        ("venue", json!(5)),
        ("startsAt", json!("tomorrow")),
        ("startsAt", json!("2001-01-01T00:00:00Z")),
        ("startsAt", json!(1_900_000_000)),
    ] {
        let mut body = json!({"title": "Gig", "price": 10});
        body[field] = bad.clone();
        let response = app
            .request(
                Method::POST,
                "/api/tickets",
                Some(&seller),
                Some(body.clone()),
            )
            .await;
        assert_eq!(response.status, 400, "{field} {bad}");
        assert_eq!(response.error_fields(), [field], "{field} {bad}");
        let (_, id) = app.listed_ticket().await;
        let response = app
            .request(
                Method::PUT,
                &format!("/api/tickets/{id}"),
                Some(&seller),
                Some(body),
            )
            .await;
        assert_eq!(response.status, 400, "edit: {field} {bad}");
    }
    // At the limits.
    let mut body = json!({"title": "Gig", "price": 10});
    for (field, max) in [
        ("venue", 120),
        ("city", 80),
        ("section", 20),
        ("row", 20),
        ("seat", 20),
        ("description", 2000),
    ] {
        body[field] = json!("é".repeat(max));
    }
    let response = app
        .request(Method::POST, "/api/tickets", Some(&seller), Some(body))
        .await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    // Every bad field at once, with title and price.
    let response = app
        .request(
            Method::POST,
            "/api/tickets",
            Some(&seller),
            Some(json!({"title": "", "price": 0, "city": too_long(81), "startsAt": "x"})),
        )
        .await;
    assert_eq!(
        response.error_fields(),
        ["title", "price", "city", "startsAt"]
    );
}
