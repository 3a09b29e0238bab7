use common::events::{ExpirationComplete, PaymentCreated, TicketCreated, TicketUpdated};
use reqwest::Method;
use testkit::new_user_id;

use crate::helpers::{Options, settle, spawn_app, spawn_app_with};

pub fn payment_for(order_id: &str) -> PaymentCreated {
    PaymentCreated {
        id: format!("pay-{order_id}"),
        order_id: order_id.to_owned(),
        stripe_id: "pi_test".into(),
        amount_cents: 1000,
        currency: "usd".into(),
        version: 0,
    }
}

#[tokio::test]
async fn expiry_cancels_an_unpaid_order_and_frees_its_ticket() {
    let app = spawn_app_with(Options {
        window: std::time::Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    let (_, ticket) = app.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let order = app.place(&buyer, &ticket).await;
    app.wait_for_event("order.created", &order).await;
    app.publish(ExpirationComplete {
        order_id: order.clone(),
    })
    .await;
    app.wait_for_status(&buyer, &order, "cancelled").await;
    app.wait_for_event("order.cancelled", &order).await;
    app.publish(ExpirationComplete {
        order_id: order.clone(),
    })
    .await;
    settle().await;
    let cancelled = app.events("order.cancelled").await;
    assert_eq!(cancelled.len(), 1, "a second expiry changes nothing");
    assert_eq!(cancelled[0]["data"]["reason"], "expired");
}

#[tokio::test]
async fn payment_completes_the_order_and_a_later_expiry_is_ignored() {
    let app = spawn_app().await;
    let (_, ticket) = app.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let order = app.place(&buyer, &ticket).await;
    app.publish(payment_for(&order)).await;
    app.wait_for_status(&buyer, &order, "complete").await;
    app.publish(ExpirationComplete {
        order_id: order.clone(),
    })
    .await;
    settle().await;
    assert_eq!(app.order_status(&buyer, &order).await, "complete");
    let completed = app.events("order.completed").await;
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["data"]["version"], 1);
    assert!(app.events("order.cancelled").await.is_empty());
}

#[tokio::test]
async fn a_payment_for_a_cancelled_order_never_resurrects_it() {
    let app = spawn_app().await;
    let (_, ticket) = app.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let order = app.place(&buyer, &ticket).await;
    let path = format!("/api/orders/{order}");
    assert_eq!(
        app.request(Method::DELETE, &path, Some(&buyer), None)
            .await
            .status,
        204
    );
    app.publish(payment_for(&order)).await;
    app.publish(payment_for(&order)).await;
    settle().await;
    assert_eq!(app.order_status(&buyer, &order).await, "cancelled");
    assert!(app.events("order.completed").await.is_empty());
    // Nothing is parked in a collection nobody reads: payments refunds the charge when it
    // sees the order cancelled (its own tests).
    let db = app.orders_collection().await;
    let names = db
        .client()
        .database(&app.db.name)
        .list_collection_names()
        .await
        .unwrap();
    assert!(!names.iter().any(|n| n == "payment_conflicts"), "{names:?}");
}

#[tokio::test]
async fn ticket_updates_reach_the_replica_in_version_order() {
    let app = spawn_app().await;
    // A ticket known only from events, the first ones out of order.
    let id = bson::oid::ObjectId::new();
    let seller = new_user_id();
    let update = |version: i64, title: &str| TicketUpdated {
        id: id.to_hex(),
        title: title.to_owned(),
        price_cents: 1000 + version,
        user_id: seller.clone(),
        order_id: None,
        version,
        details: Default::default(),
        sold: false,
    };
    app.publish(update(2, "second")).await;
    app.publish(update(1, "first")).await;
    app.publish(TicketCreated {
        id: id.to_hex(),
        title: "original".into(),
        price_cents: 1000,
        user_id: seller.clone(),
        version: 0,
        details: Default::default(),
    })
    .await;
    let tickets = app
        .orders_collection()
        .await
        .client()
        .database(&app.db.name)
        .collection::<bson::Document>("tickets");
    let replica = testkit::eventually(
        "the replica at version 2",
        std::time::Duration::from_secs(15),
        || async {
            let found = tickets.find_one(bson::doc! {"_id": id}).await.unwrap()?;
            (found.get_i64("version").ok()? == 2).then_some(found)
        },
    )
    .await;
    assert_eq!(replica.get_str("title").unwrap(), "second");
    assert_eq!(replica.get_i64("priceCents").unwrap(), 1002);
    // A redelivered old version changes nothing.
    app.publish(update(1, "first")).await;
    settle().await;
    let replica = tickets
        .find_one(bson::doc! {"_id": id})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replica.get_str("title").unwrap(), "second");
}
