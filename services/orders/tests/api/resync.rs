//! State transfer: a replica that lost track of a record asks its owner, which answers
//! with the record's whole state; the replica applies it when it is newer.

use std::time::Duration;

use common::events::{OrderResyncRequested, TicketSnapshot, TicketUpdated};
use testkit::{eventually, new_user_id};

use crate::helpers::{TestApp, settle, spawn_app};

async fn replica(app: &TestApp, id: bson::oid::ObjectId) -> Option<bson::Document> {
    app.orders_collection()
        .await
        .client()
        .database(&app.db.name)
        .collection::<bson::Document>("tickets")
        .find_one(bson::doc! {"_id": id})
        .await
        .unwrap()
}

#[tokio::test]
async fn orders_answers_a_state_request_with_the_order_as_it_is() {
    let app = spawn_app().await;
    let (_, ticket) = app.listed_ticket(12.5).await;
    let buyer = new_user_id();
    let order = app.place(&buyer, &ticket).await;
    app.publish(OrderResyncRequested {
        id: order.clone(),
        known_version: None,
        requested_by: "test".into(),
    })
    .await;
    let snapshot = eventually("an order.snapshot", Duration::from_secs(10), || async {
        app.events("order.snapshot").await.pop()
    })
    .await;
    let data = &snapshot["data"];
    assert_eq!(data["id"], order.as_str());
    assert_eq!(data["status"], "created");
    assert_eq!(data["userId"], buyer.as_str());
    assert_eq!(data["ticket"]["id"], ticket.as_str());
    assert_eq!(data["ticket"]["priceCents"], 1250);
    assert_eq!(data["version"], 0);
}

#[tokio::test]
async fn a_ticket_snapshot_applies_only_when_newer() {
    let app = spawn_app().await;
    let id = bson::oid::ObjectId::new();
    let seller = new_user_id();
    let snapshot = |version: i64, title: &str| TicketSnapshot {
        id: id.to_hex(),
        title: title.to_owned(),
        price_cents: 500,
        user_id: seller.clone(),
        order_id: None,
        version,
        details: Default::default(),
        removed: false,
        sold: false,
    };
    // Unknown to the replica: taken as it is.
    app.publish(snapshot(3, "third")).await;
    let stored = eventually(
        "the replica from a snapshot",
        Duration::from_secs(10),
        || async { replica(&app, id).await },
    )
    .await;
    assert_eq!(stored.get_i64("version").unwrap(), 3);
    // Older state changes nothing; newer state replaces it.
    app.publish(snapshot(2, "second")).await;
    settle().await;
    assert_eq!(
        replica(&app, id).await.unwrap().get_str("title").unwrap(),
        "third"
    );
    app.publish(snapshot(5, "fifth")).await;
    eventually("the newer snapshot", Duration::from_secs(10), || async {
        let r = replica(&app, id).await?;
        (r.get_i64("version").ok()? == 5).then_some(())
    })
    .await;
    // Updates continue on top of it.
    app.publish(TicketUpdated {
        id: id.to_hex(),
        title: "sixth".into(),
        price_cents: 600,
        user_id: seller.clone(),
        order_id: None,
        version: 6,
        details: Default::default(),
        sold: false,
    })
    .await;
    eventually(
        "the update after the snapshot",
        Duration::from_secs(10),
        || async {
            let r = replica(&app, id).await?;
            (r.get_str("title").ok()? == "sixth").then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_gap_that_does_not_close_asks_tickets_for_the_ticket_and_keeps_its_answer() {
    let app = spawn_app().await;
    let (seller, ticket) = app.listed_ticket(10.0).await;
    let id: bson::oid::ObjectId = ticket.parse().unwrap();
    // Version 1 was lost for good (say, dead-lettered): version 2 can never apply.
    app.publish(TicketUpdated {
        id: ticket.clone(),
        title: "never applied in order".into(),
        price_cents: 2000,
        user_id: seller.clone(),
        order_id: None,
        version: 2,
        details: Default::default(),
        sold: false,
    })
    .await;
    let request = eventually(
        "a ticket.resync_requested",
        Duration::from_secs(30),
        || async { app.events("ticket.resync_requested").await.pop() },
    )
    .await;
    assert_eq!(request["data"]["id"], ticket.as_str());
    assert_eq!(request["data"]["requestedBy"], "orders");
    // The tickets service answers with its state (version 0 here; tickets' `listeners.rs`
    // tests the answer): the replica keeps what it has, and the stuck event is a no-op
    // once the replica reaches its version.
    app.publish(TicketSnapshot {
        id: ticket.clone(),
        title: "Concert".into(),
        price_cents: 1000,
        user_id: seller.clone(),
        order_id: None,
        version: 0,
        details: Default::default(),
        removed: false,
        sold: false,
    })
    .await;
    settle().await;
    assert_eq!(
        replica(&app, id).await.unwrap().get_i64("version").unwrap(),
        0
    );
}
