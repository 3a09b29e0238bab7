use common::events::{ExpirationComplete, PaymentCreated, TicketCreated, TicketUpdated};
use reqwest::Method;
use testkit::new_user_id;

use crate::helpers::{Options, settle, spawn_apps, spawn_apps_with};

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
    let apps = spawn_apps_with(Options {
        window: std::time::Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    let (_, ticket) = apps.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let order = apps.place(&buyer, &ticket).await;
    apps.wait_for_ticket_holder(&ticket, Some(&order)).await;
    apps.publish(ExpirationComplete {
        order_id: order.clone(),
    })
    .await;
    apps.wait_for_status(&buyer, &order, "cancelled").await;
    apps.wait_for_ticket_holder(&ticket, None).await;
    apps.publish(ExpirationComplete {
        order_id: order.clone(),
    })
    .await;
    settle().await;
    let cancelled = apps.events("order.cancelled").await;
    assert_eq!(cancelled.len(), 1, "a second expiry changes nothing");
    assert_eq!(cancelled[0]["data"]["reason"], "expired");
}

#[tokio::test]
async fn payment_completes_the_order_and_a_later_expiry_is_ignored() {
    let apps = spawn_apps().await;
    let (_, ticket) = apps.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let order = apps.place(&buyer, &ticket).await;
    apps.publish(payment_for(&order)).await;
    apps.wait_for_status(&buyer, &order, "complete").await;
    apps.publish(ExpirationComplete {
        order_id: order.clone(),
    })
    .await;
    settle().await;
    assert_eq!(apps.order_status(&buyer, &order).await, "complete");
    let completed = apps.events("order.completed").await;
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["data"]["version"], 1);
    assert!(apps.events("order.cancelled").await.is_empty());
}

#[tokio::test]
async fn a_payment_for_a_cancelled_order_never_resurrects_it() {
    let apps = spawn_apps().await;
    let (_, ticket) = apps.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let order = apps.place(&buyer, &ticket).await;
    let path = format!("/api/orders/{order}");
    assert_eq!(
        apps.orders_api(Method::DELETE, &path, Some(&buyer), None)
            .await
            .status,
        204
    );
    apps.publish(payment_for(&order)).await;
    apps.publish(payment_for(&order)).await;
    settle().await;
    assert_eq!(apps.order_status(&buyer, &order).await, "cancelled");
    assert!(apps.events("order.completed").await.is_empty());
    // Nothing is parked in a collection nobody reads: payments refunds the charge when it
    // sees the order cancelled (its own tests).
    let db = apps.orders_collection().await;
    let names = db
        .client()
        .database(&apps.orders_db.name)
        .list_collection_names()
        .await
        .unwrap();
    assert!(!names.iter().any(|n| n == "payment_conflicts"), "{names:?}");
}

#[tokio::test]
async fn ticket_updates_reach_the_replica_in_version_order() {
    let apps = spawn_apps().await;
    // A ticket known only from events (the tickets service never saw it).
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
    apps.publish(update(2, "second")).await;
    apps.publish(update(1, "first")).await;
    apps.publish(TicketCreated {
        id: id.to_hex(),
        title: "original".into(),
        price_cents: 1000,
        user_id: seller.clone(),
        version: 0,
        details: Default::default(),
    })
    .await;
    let tickets = apps
        .orders_collection()
        .await
        .client()
        .database(&apps.orders_db.name)
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
    apps.publish(update(1, "first")).await;
    settle().await;
    let replica = tickets
        .find_one(bson::doc! {"_id": id})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replica.get_str("title").unwrap(), "second");
}
