use common::events::{TicketDetails, TicketRemoved, TicketUpdated};
use reqwest::Method;
use serde_json::json;
use testkit::new_user_id;

use crate::helpers::{TestApp, spawn_app};

#[tokio::test]
async fn an_order_shows_its_tickets_venue_date_and_seat() {
    let app = spawn_app().await;
    let details = TicketDetails {
        venue: Some("Arena".into()),
        city: Some("Lyon".into()),
        starts_at: Some("2099-05-01T20:00:00Z".parse().unwrap()),
        section: Some("A".into()),
        row: Some("3".into()),
        seat: Some("12".into()),
        description: Some("Front row".into()),
    };
    let (_, ticket) = app.listed_ticket_with(20.0, details).await;
    let buyer = new_user_id();
    let order = app.place(&buyer, &ticket).await;
    let shown = app
        .request(
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
    let (_, plain) = app.listed_ticket(10.0).await;
    let placed = app.order(&buyer, &plain).await;
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
    let app = spawn_app().await;
    let (seller, ticket) = app.listed_ticket(20.0).await;
    app.publish(removal(&ticket, &seller, 1)).await;
    wait_for_removed(&app, &ticket).await;
    let buyer = new_user_id();
    let refused = app.order(&buyer, &ticket).await;
    assert_eq!(
        (refused.status, refused.error_message()),
        (404, "Ticket not found")
    );
    assert!(app.events("order.created").await.is_empty());
}

#[tokio::test]
async fn a_snapshot_says_whether_the_ticket_is_off_sale() {
    let app = spawn_app().await;
    let (seller, ticket) = app.listed_ticket(20.0).await;
    // A replica that missed ticket.removed learns it from the ticket's whole state.
    app.publish(common::events::TicketSnapshot {
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
    wait_for_removed(&app, &ticket).await;
    assert_eq!(app.order(&new_user_id(), &ticket).await.status, 404);
}

/// `ticket.removed`, as tickets announces a ticket its seller took off sale.
fn removal(ticket: &str, seller: &str, version: i64) -> TicketRemoved {
    TicketRemoved {
        id: ticket.to_owned(),
        user_id: seller.to_owned(),
        version,
    }
}

async fn wait_for_removed(app: &TestApp, ticket: &str) {
    let tickets = app
        .orders_collection()
        .await
        .client()
        .database(&app.db.name)
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
/// it again in the replica; once that order is cancelled the removal stands again, and
/// tickets announces it again (tickets' side of this: its `remove.rs`).
#[tokio::test]
async fn a_ticket_update_after_its_removal_lists_it_again_in_the_replica() {
    let app = spawn_app().await;
    let (seller, ticket) = app.listed_ticket(20.0).await;
    app.publish(removal(&ticket, &seller, 1)).await;
    wait_for_removed(&app, &ticket).await;
    // The order that won: tickets announces the ticket reserved by it.
    app.publish(TicketUpdated {
        id: ticket.clone(),
        title: "Concert".into(),
        price_cents: 2000,
        user_id: seller.clone(),
        order_id: Some("507f1f77bcf86cd799439011".into()),
        version: 2,
        details: TicketDetails::default(),
        sold: false,
    })
    .await;
    let tickets = app
        .orders_collection()
        .await
        .client()
        .database(&app.db.name)
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
    app.publish(removal(&ticket, &seller, 3)).await;
    wait_for_removed(&app, &ticket).await;
    assert_eq!(app.order(&new_user_id(), &ticket).await.status, 404);
}
