use std::time::Duration;

use serde_json::json;
use testkit::{eventually, new_user_id, session_cookie, stored_messages};

use crate::helpers::spawn_apps;

/// The request id headers of the events stored on `subject` that are about `id`.
async fn request_ids(apps: &crate::helpers::TestApps, subject: &str, id: &str) -> Vec<String> {
    stored_messages(&apps.bus, &apps.bus.subject(subject))
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
async fn a_requests_id_follows_the_events_it_causes_into_the_next_service() {
    let apps = spawn_apps().await;
    let (_, ticket) = apps.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let response = reqwest::Client::new()
        .post(format!("{}/api/orders", apps.orders))
        .header("cookie", session_cookie(&buyer))
        .header("x-request-id", "purchase-7")
        .json(&json!({"ticketId": ticket}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], "purchase-7");
    let order: serde_json::Value = response.json().await.unwrap();
    let order_id = order["id"].as_str().unwrap();

    // orders' event, and the ticket update tickets made on handling it.
    eventually(
        "order.created with the id",
        Duration::from_secs(10),
        || async {
            (request_ids(&apps, "order.created", order_id).await == ["purchase-7"]).then_some(())
        },
    )
    .await;
    apps.wait_for_ticket_holder(&ticket, Some(order_id)).await;
    let reserved = eventually(
        "ticket.updated with the id",
        Duration::from_secs(10),
        || async {
            let ids = request_ids(&apps, "ticket.updated", &ticket).await;
            (!ids.is_empty()).then_some(ids)
        },
    )
    .await;
    assert_eq!(reserved, ["purchase-7"]);

    // A request without one gets a new id, returned to the caller.
    let listing = reqwest::get(format!("{}/api/tickets", apps.tickets))
        .await
        .unwrap();
    let generated = listing.headers()["x-request-id"].to_str().unwrap();
    assert!(
        generated.len() == 36 && generated.matches('-').count() == 4,
        "a UUID: {generated}"
    );
}
