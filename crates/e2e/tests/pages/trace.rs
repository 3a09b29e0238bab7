//! One order, one trace: the spans of every service it reaches share the trace id the
//! caller sent in `traceparent`.

use std::time::Duration;

use testkit::eventually;

use crate::helpers::spawn_app;

#[tokio::test]
async fn one_order_is_one_trace_across_orders_tickets_expiration_and_payments() {
    let recorder = testkit::spans::install();
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let ticket_id = seller.sell("Traced concert", "25").await;
    let (buyer, _) = app.signed_in_browser().await;
    let session = buyer.session().unwrap();

    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let http = reqwest::Client::new();
    // Orders learns of the ticket through an event: the first tries may be a 404.
    eventually(
        "the order to be created",
        Duration::from_secs(20),
        || async {
            let response = http
                .post(app.services.orders.join("/api/orders").unwrap())
                .header("cookie", format!("session={session}"))
                .header("traceparent", &traceparent)
                .json(&serde_json::json!({ "ticketId": ticket_id }))
                .send()
                .await
                .unwrap();
            (response.status() == 201).then_some(())
        },
    )
    .await;

    // Every hop of the order, in one trace: orders' request and its publish, the three
    // services handling order.created, and tickets' own event (the ticket now reserved).
    let has = |name: &str, field: &str, value: &str| {
        recorder.trace(&trace_id).iter().any(|span| {
            span.name == name && span.attributes.get(field).map(String::as_str) == Some(value)
        })
    };
    let missing = || {
        [
            ("request", "route", "/api/orders"),
            ("publish", "subject", "order.created"),
            ("event", "service", "tickets"),
            ("event", "service", "expiration"),
            ("event", "service", "payments"),
            ("publish", "subject", "ticket.updated"),
        ]
        .into_iter()
        .filter(|(name, field, value)| !has(name, field, value))
        .collect::<Vec<_>>()
    };
    let complete = tokio::time::timeout(Duration::from_secs(20), async {
        while !missing().is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        complete.is_ok(),
        "missing from the trace: {:?}\nspans: {:#?}",
        missing(),
        recorder.trace(&trace_id)
    );
}
