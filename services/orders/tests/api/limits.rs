use common::events::{UserBanned, UserUnbanned};
use reqwest::Method;
use testkit::{eventually, new_user_id};

use crate::helpers::{Options, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_buyer_holds_at_most_the_maximum_of_unpaid_orders_even_when_racing() {
    let app = spawn_app_with(Options {
        max_active_orders: 2,
        ..Options::default()
    })
    .await;
    let mut tickets = Vec::new();
    for _ in 0..6 {
        tickets.push(app.listed_ticket(10.0).await.1);
    }
    let buyer = new_user_id();
    // Orders that could not be placed (the ticket is held) take no place.
    assert_eq!(app.order(&new_user_id(), &tickets[5]).await.status, 201);
    for _ in 0..3 {
        assert_eq!(app.order(&buyer, &tickets[5]).await.status, 409);
    }
    let placed = futures::future::join_all(tickets[..4].iter().map(|t| app.order(&buyer, t))).await;
    let mut statuses: Vec<u16> = placed.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 201, 429, 429], "four at once, room for two");
    let refused = placed.iter().find(|r| r.status == 429).unwrap();
    assert!(
        refused.error_message().contains("2 unpaid orders"),
        "{:?}",
        refused.body
    );
    assert!(refused.headers.contains_key("retry-after"));

    // Cancelling one makes room; another buyer was never limited.
    let first = placed.iter().find(|r| r.status == 201).unwrap().body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancelled = app
        .request(
            Method::DELETE,
            &format!("/api/orders/{first}"),
            Some(&buyer),
            None,
        )
        .await;
    assert_eq!(cancelled.status, 204);
    let free = placed.iter().position(|r| r.status == 429).unwrap();
    app.wait_for_event("order.cancelled", &first).await;
    assert_eq!(app.order(&buyer, &tickets[free]).await.status, 201);
    assert_eq!(app.order(&new_user_id(), &tickets[4]).await.status, 201);
}

#[tokio::test]
async fn a_banned_buyer_is_refused_at_once_and_their_unpaid_orders_are_cancelled() {
    let app = spawn_app().await;
    let (_, ticket) = app.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let order = app.place(&buyer, &ticket).await;
    app.wait_for_event("order.created", &order).await;

    app.publish(UserBanned {
        id: buyer.clone(),
        version: 1,
    })
    .await;
    let started = std::time::Instant::now();
    eventually(
        "the buyer refused",
        std::time::Duration::from_secs(1),
        || async {
            let response = app
                .request(Method::GET, "/api/orders", Some(&buyer), None)
                .await;
            (response.status == 403).then_some(())
        },
    )
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    let listed = app
        .request(Method::GET, "/api/orders", Some(&buyer), None)
        .await;
    assert_eq!(listed.error_message(), "Account suspended");
    // Their hold ends: the ticket is for sale again.
    app.wait_for_event("order.cancelled", &order).await;
    let cancelled = app.events("order.cancelled").await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0]["data"]["reason"], "banned");

    // A late, older unban changes nothing; a newer one lets them back.
    app.publish(UserUnbanned {
        id: buyer.clone(),
        version: 0,
    })
    .await;
    crate::helpers::settle().await;
    let still = app
        .request(Method::GET, "/api/orders", Some(&buyer), None)
        .await;
    assert_eq!(still.status, 403);
    app.publish(UserUnbanned {
        id: buyer.clone(),
        version: 2,
    })
    .await;
    eventually(
        "the buyer back",
        std::time::Duration::from_secs(5),
        || async {
            let response = app
                .request(Method::GET, "/api/orders", Some(&buyer), None)
                .await;
            (response.status == 200).then_some(response)
        },
    )
    .await;
    assert_eq!(app.order_status(&buyer, &order).await, "cancelled");
}
