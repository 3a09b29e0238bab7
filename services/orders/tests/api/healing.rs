use std::time::Duration;

use testkit::new_user_id;

use crate::helpers::{Options, spawn_app_with};

#[tokio::test]
async fn a_lapsed_reservation_whose_expiry_never_came_does_not_block_the_next_buyer() {
    // No expiration service runs here: the expiry of the first order is "lost".
    let app = spawn_app_with(Options {
        window: Duration::from_secs(1),
        payment_grace: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    let (_, ticket) = app.listed_ticket(10.0).await;
    let first_buyer = new_user_id();
    let first = app.place(&first_buyer, &ticket).await;
    let blocked = app.order(&new_user_id(), &ticket).await;
    assert_eq!(blocked.status, 409);

    // Past the deadline but within the grace, a charge may still complete the first order.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let within_grace = app.order(&new_user_id(), &ticket).await;
    assert_eq!(within_grace.status, 409, "{:?}", within_grace.body);
    assert_eq!(app.order_status(&first_buyer, &first).await, "created");

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let second = app.order(&new_user_id(), &ticket).await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    assert_eq!(app.order_status(&first_buyer, &first).await, "cancelled");
    let second_id = second.body["id"].as_str().unwrap();
    app.wait_for_event("order.created", second_id).await;
    app.wait_for_event("order.cancelled", &first).await;
}

#[tokio::test]
async fn the_sweeper_cancels_orders_whose_expiry_was_lost() {
    let app = spawn_app_with(Options {
        window: Duration::from_secs(1),
        sweeper_grace: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    let (_, ticket) = app.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let order = app.place(&buyer, &ticket).await;
    app.wait_for_event("order.created", &order).await;
    // Nobody publishes expiration.complete; the sweeper notices on its own.
    app.wait_for_status(&buyer, &order, "cancelled").await;
    app.wait_for_event("order.cancelled", &order).await;
}

#[tokio::test]
async fn an_order_written_just_before_a_crash_is_announced_after_restart() {
    let app = spawn_app_with(Options::default()).await;
    let (_, ticket) = app.listed_ticket(10.0).await;
    // The state of the database after a crash right after the insert: the order and its
    // event are stored, the relay never ran.
    let order = bson::oid::ObjectId::new();
    let event = common::outbox::PendingEvent::new(common::events::OrderCreated {
        id: order.to_hex(),
        user_id: new_user_id(),
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(15),
        ticket: common::events::OrderTicket {
            id: ticket.clone(),
            price_cents: 1000,
        },
        version: 0,
    });
    app.orders_collection()
        .await
        .insert_one(bson::doc! {
            "_id": order,
            "userId": new_user_id(),
            "status": "created",
            "expiresAt": bson::DateTime::from_chrono(chrono::Utc::now() + chrono::Duration::minutes(15)),
            "ticket": {"id": &ticket, "title": "Concert", "priceCents": 1000_i64},
            "version": 0_i64,
            "activeTicketId": &ticket,
            "pendingEvents": [event.to_bson()],
        })
        .await
        .unwrap();
    // The running app's periodic sweep plays the restarted relay.
    app.wait_for_event("order.created", &order.to_hex()).await;
    assert_eq!(app.events("order.created").await.len(), 1);
}
