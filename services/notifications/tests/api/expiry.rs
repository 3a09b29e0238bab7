//! An email of no use any more (a reset link past its expiry, a reservation past its
//! pay-by time) is decided before the records it would need are looked up: when they never
//! arrive, its event is acked, not retried until it is dead-lettered.

use std::time::Duration;

use chrono::Utc;
use common::events::{Event, OrderCreated, UserPasswordResetRequested};
use common::listener::durable_name;
use serde_json::json;
use testkit::{TestDatabase, eventually, new_user_id};

use crate::helpers::{TestApp, spawn_app_with, test_config};

/// Waits until the service's consumer of `E` has acked everything it was delivered, and
/// checks it stays so (a retried event is never acked: it waits for its redelivery).
async fn acked_without_retry<E: Event>(app: &TestApp) {
    let stream = app
        .bus
        .jetstream()
        .get_stream(app.bus.stream_name())
        .await
        .unwrap();
    let consumer = durable_name("notifications", E::SUBJECT);
    eventually(
        &format!("{consumer} acked its event"),
        Duration::from_secs(10),
        || async {
            let info = stream.clone().consumer_info(&consumer).await.ok()?;
            (info.delivered.stream_sequence >= 1
                && info.ack_floor.stream_sequence == info.delivered.stream_sequence
                && info.num_ack_pending == 0)
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let info = stream.clone().consumer_info(&consumer).await.unwrap();
    assert_eq!(info.num_redelivered, 0, "{info:?}");
    assert_eq!(info.num_ack_pending, 0, "{info:?}");
}

#[tokio::test]
async fn an_expired_reset_link_for_an_unknown_user_is_acked_not_retried() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    // Built from JSON: the event's optional fields may grow.
    let event: UserPasswordResetRequested = serde_json::from_value(json!({
        "userId": new_user_id(),
        "token": "expired-token",
        "expiresAt": Utc::now() - chrono::Duration::minutes(5),
    }))
    .unwrap();
    app.publish(event).await;
    acked_without_retry::<UserPasswordResetRequested>(&app).await;
}

#[tokio::test]
async fn a_lapsed_reservation_whose_ticket_is_unknown_is_acked_not_retried() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let event: OrderCreated = serde_json::from_value(json!({
        "id": testkit::unique_name("order"),
        "userId": new_user_id(),
        "expiresAt": Utc::now() - chrono::Duration::minutes(1),
        "ticket": {"id": testkit::unique_name("ticket"), "priceCents": 1000},
        "version": 0,
    }))
    .unwrap();
    app.publish(event).await;
    acked_without_retry::<OrderCreated>(&app).await;
}
