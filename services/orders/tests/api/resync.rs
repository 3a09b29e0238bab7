//! State transfer: a replica that lost track of a record asks its owner, which answers
//! with the record's whole state; the replica applies it when it is newer.

use std::time::Duration;

use common::events::{OrderResyncRequested, TicketSnapshot, TicketUpdated};
use testkit::{eventually, new_user_id};

use crate::helpers::{TestApps, settle, spawn_apps};

async fn replica(apps: &TestApps, id: bson::oid::ObjectId) -> Option<bson::Document> {
    apps.orders_collection()
        .await
        .client()
        .database(&apps.orders_db.name)
        .collection::<bson::Document>("tickets")
        .find_one(bson::doc! {"_id": id})
        .await
        .unwrap()
}

#[tokio::test]
async fn orders_answers_a_state_request_with_the_order_as_it_is() {
    let apps = spawn_apps().await;
    let (_, ticket) = apps.listed_ticket(12.5).await;
    let buyer = new_user_id();
    let order = apps.place(&buyer, &ticket).await;
    apps.publish(OrderResyncRequested {
        id: order.clone(),
        known_version: None,
        requested_by: "test".into(),
    })
    .await;
    let snapshot = eventually("an order.snapshot", Duration::from_secs(10), || async {
        apps.events("order.snapshot").await.pop()
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
    let apps = spawn_apps().await;
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
    apps.publish(snapshot(3, "third")).await;
    let stored = eventually(
        "the replica from a snapshot",
        Duration::from_secs(10),
        || async { replica(&apps, id).await },
    )
    .await;
    assert_eq!(stored.get_i64("version").unwrap(), 3);
    // Older state changes nothing; newer state replaces it.
    apps.publish(snapshot(2, "second")).await;
    settle().await;
    assert_eq!(
        replica(&apps, id).await.unwrap().get_str("title").unwrap(),
        "third"
    );
    apps.publish(snapshot(5, "fifth")).await;
    eventually("the newer snapshot", Duration::from_secs(10), || async {
        let r = replica(&apps, id).await?;
        (r.get_i64("version").ok()? == 5).then_some(())
    })
    .await;
    // Updates continue on top of it.
    apps.publish(TicketUpdated {
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
            let r = replica(&apps, id).await?;
            (r.get_str("title").ok()? == "sixth").then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_gap_that_does_not_close_asks_tickets_for_the_ticket_and_converges() {
    let apps = spawn_apps().await;
    let (seller, ticket) = apps.listed_ticket(10.0).await;
    let id: bson::oid::ObjectId = ticket.parse().unwrap();
    // Version 1 was lost for good (say, dead-lettered): version 2 can never apply.
    apps.publish(TicketUpdated {
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
        || async { apps.events("ticket.resync_requested").await.pop() },
    )
    .await;
    assert_eq!(request["data"]["id"], ticket.as_str());
    assert_eq!(request["data"]["requestedBy"], "orders");
    // The tickets service answers with its state (version 0 here): the replica keeps what
    // it has, and the stuck event is a no-op once the replica reaches its version.
    let snapshot = eventually(
        "the ticket.snapshot answer",
        Duration::from_secs(10),
        || async { apps.events("ticket.snapshot").await.pop() },
    )
    .await;
    assert_eq!(snapshot["data"]["id"], ticket.as_str());
    assert_eq!(snapshot["data"]["version"], 0);
    assert_eq!(
        replica(&apps, id)
            .await
            .unwrap()
            .get_i64("version")
            .unwrap(),
        0
    );
}
