use reqwest::Method;
use serde_json::json;
use testkit::new_user_id;

use crate::helpers::{TestApps, spawn_apps};

#[tokio::test]
async fn an_order_shows_its_tickets_venue_date_and_seat() {
    let apps = spawn_apps().await;
    let (_, ticket) = apps
        .listed_ticket_with(json!({
            "title": "Concert", "price": 20, "venue": "Arena", "city": "Lyon",
            "startsAt": "2099-05-01T20:00:00Z", "section": "A", "row": "3", "seat": "12",
            "description": "Front row",
        }))
        .await;
    let buyer = new_user_id();
    let order = apps.place(&buyer, &ticket).await;
    let shown = apps
        .orders_api(
            Method::GET,
            &format!("/api/orders/{order}"),
            Some(&buyer),
            None,
        )
        .await;
    let t = &shown.body["ticket"];
    assert_eq!(t["venue"], "Arena", "{t}");
    assert_eq!(t["city"], "Lyon");
    assert_eq!(t["startsAt"], "2099-05-01T20:00:00.000Z");
    assert_eq!(
        (&t["section"], &t["row"], &t["seat"]),
        (&json!("A"), &json!("3"), &json!("12"))
    );
    assert_eq!(t["description"], "Front row");

    // A ticket listed with a title and a price only: the details are null.
    let (_, plain) = apps.listed_ticket(10.0).await;
    let placed = apps.order(&buyer, &plain).await;
    assert_eq!(placed.status, 201);
    for field in [
        "venue",
        "city",
        "startsAt",
        "section",
        "row",
        "seat",
        "description",
    ] {
        assert!(
            placed.body["ticket"][field].is_null(),
            "{field}: {}",
            placed.body
        );
    }
}

#[tokio::test]
async fn a_ticket_taken_off_sale_cannot_be_ordered() {
    let apps = spawn_apps().await;
    let (seller, ticket) = apps.listed_ticket(20.0).await;
    let removed = apps
        .call(
            Method::DELETE,
            format!("{}/api/tickets/{ticket}", apps.tickets),
            Some(&seller),
            None,
        )
        .await;
    assert_eq!(removed.status, 204);
    wait_for_removed(&apps, &ticket).await;
    let buyer = new_user_id();
    let refused = apps.order(&buyer, &ticket).await;
    assert_eq!(
        (refused.status, refused.error_message()),
        (404, "Ticket not found")
    );
    assert!(apps.events("order.created").await.is_empty());
}

#[tokio::test]
async fn a_snapshot_says_whether_the_ticket_is_off_sale() {
    let apps = spawn_apps().await;
    let (seller, ticket) = apps.listed_ticket(20.0).await;
    // A replica that missed ticket.removed learns it from the ticket's whole state.
    apps.publish(common::events::TicketSnapshot {
        id: ticket.clone(),
        title: "Concert".into(),
        price_cents: 2000,
        user_id: seller,
        order_id: None,
        version: 5,
        details: Default::default(),
        removed: true,
        sold: false,
    })
    .await;
    wait_for_removed(&apps, &ticket).await;
    assert_eq!(apps.order(&new_user_id(), &ticket).await.status, 404);
}

async fn wait_for_removed(apps: &TestApps, ticket: &str) {
    let tickets = apps
        .orders_collection()
        .await
        .client()
        .database(&apps.orders_db.name)
        .collection::<bson::Document>("tickets");
    let id: bson::oid::ObjectId = ticket.parse().unwrap();
    testkit::eventually(
        "the replica to know the ticket is off sale",
        std::time::Duration::from_secs(10),
        || async {
            let t = tickets.find_one(bson::doc! {"_id": id}).await.unwrap()?;
            t.get_bool("removed").unwrap_or(false).then_some(())
        },
    )
    .await;
}

/// orders placed an order from a replica that did not know of the removal yet: tickets
/// lets the order win and announces the ticket reserved at the next version, which lists
/// it again in the replica; once that order is cancelled the removal stands again.
#[tokio::test]
async fn a_ticket_update_after_its_removal_lists_it_again_in_the_replica() {
    let apps = spawn_apps().await;
    let (seller, ticket) = apps.listed_ticket(20.0).await;
    let removed = apps
        .call(
            Method::DELETE,
            format!("{}/api/tickets/{ticket}", apps.tickets),
            Some(&seller),
            None,
        )
        .await;
    assert_eq!(removed.status, 204);
    wait_for_removed(&apps, &ticket).await;
    apps.publish(common::events::OrderCreated {
        id: "507f1f77bcf86cd799439011".into(),
        user_id: new_user_id(),
        expires_at: chrono::Utc::now(),
        ticket: common::events::OrderTicket {
            id: ticket.clone(),
            price_cents: 2000,
        },
        version: 0,
    })
    .await;
    let tickets = apps
        .orders_collection()
        .await
        .client()
        .database(&apps.orders_db.name)
        .collection::<bson::Document>("tickets");
    let id: bson::oid::ObjectId = ticket.parse().unwrap();
    let replica = testkit::eventually(
        "the replica at version 2",
        std::time::Duration::from_secs(10),
        || async {
            let t = tickets.find_one(bson::doc! {"_id": id}).await.unwrap()?;
            (t.get_i64("version").ok()? == 2).then_some(t)
        },
    )
    .await;
    assert!(!replica.get_bool("removed").unwrap(), "{replica}");
    // That order cancelled: the removal stands again, and orders refuses the ticket.
    apps.publish(common::events::OrderCancelled {
        id: "507f1f77bcf86cd799439011".into(),
        ticket: common::events::OrderTicketRef { id: ticket.clone() },
        version: 1,
        reason: Some(common::events::CancelReason::Buyer),
    })
    .await;
    wait_for_removed(&apps, &ticket).await;
    assert_eq!(apps.order(&new_user_id(), &ticket).await.status, 404);
}
