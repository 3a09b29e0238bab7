use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use testkit::{eventually, new_user_id, session_cookie, stored_messages};

use crate::helpers::spawn_app;

/// The request id headers of the events stored on `subject` that are about `id`.
async fn request_ids(app: &crate::helpers::TestApp, subject: &str, id: &str) -> Vec<String> {
    stored_messages(&app.bus, &app.bus.subject(subject))
        .await
        .iter()
        .filter(|m| {
            let event: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            event["data"]["id"] == id
        })
        .filter_map(|m| {
            let headers = m.headers.as_ref()?;
            Some(headers.get("x-request-id")?.as_str().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_requests_id_follows_the_events_it_causes() {
    let app = spawn_app().await;
    let (_, ticket) = app.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let response = testkit::send(
        app.builder(Method::POST, "/api/orders")
            .header("cookie", session_cookie(&buyer))
            .header("x-request-id", "purchase-7")
            .json(&json!({"ticketId": ticket})),
    )
    .await;
    assert_eq!(response.status, 201);
    assert_eq!(response.headers["x-request-id"], "purchase-7");
    let order_id = response.body["id"].as_str().unwrap();

    // orders' event carries it on (tickets' `request_ids.rs`: into the ticket update
    // tickets makes on handling it).
    eventually(
        "order.created with the id",
        Duration::from_secs(10),
        || async {
            (request_ids(&app, "order.created", order_id).await == ["purchase-7"]).then_some(())
        },
    )
    .await;

    // A request without one gets a new id, returned to the caller.
    let listing = app
        .request(Method::GET, "/api/orders", Some(&buyer), None)
        .await;
    let generated = listing.headers["x-request-id"].to_str().unwrap();
    assert!(
        generated.len() == 36 && generated.matches('-').count() == 4,
        "a UUID: {generated}"
    );
}
