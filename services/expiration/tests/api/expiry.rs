use std::time::Duration;

use chrono::Utc;
use common::events::{CancelReason, OrderCancelled, OrderCompleted, OrderTicketRef};
use testkit::eventually;

use crate::helpers::{expirations, fired_order_ids, in_ms, spawn_app, spawn_app_with, test_config};

#[tokio::test]
async fn an_order_expires_when_its_window_closes_and_not_before() {
    let app = spawn_app().await;
    let expires_at = in_ms(1500);
    app.order_created("o1", expires_at).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(app.expirations().await.is_empty(), "fired early");
    let events = eventually("expiration.complete", Duration::from_secs(10), || async {
        let events = app.expirations().await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events[0]["data"]["orderId"], "o1");
    let fired_at: chrono::DateTime<Utc> =
        events[0]["occurredAt"].as_str().unwrap().parse().unwrap();
    assert!(
        fired_at >= expires_at,
        "fired at {fired_at}, due {expires_at}"
    );
    // The job is deleted once the stream has stored the event, so just after it.
    let schedule = app.schedule().await;
    eventually(
        "the job deleted after firing",
        Duration::from_secs(5),
        || async { schedule.due_ms("o1").await.unwrap().is_none().then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn cancelled_and_paid_orders_are_not_expired() {
    let app = spawn_app().await;
    for id in ["cancelled", "paid", "unpaid"] {
        app.order_created(id, in_ms(1000)).await;
    }
    let schedule = app.schedule().await;
    eventually("three jobs scheduled", Duration::from_secs(5), || async {
        let mut all = true;
        for id in ["cancelled", "paid", "unpaid"] {
            all &= schedule.due_ms(id).await.unwrap().is_some();
        }
        all.then_some(())
    })
    .await;
    app.publish(OrderCancelled {
        id: "cancelled".into(),
        ticket: OrderTicketRef { id: "t".into() },
        version: 1,
        reason: Some(CancelReason::Buyer),
    })
    .await;
    app.publish(OrderCompleted {
        id: "paid".into(),
        ticket: OrderTicketRef { id: "t".into() },
        version: 1,
        payment_id: Some("p".into()),
    })
    .await;
    eventually(
        "the unpaid order to expire",
        Duration::from_secs(10),
        || async { (!app.expirations().await.is_empty()).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fired_order_ids(&app.expirations().await), ["unpaid"]);
}

#[tokio::test]
async fn pending_jobs_survive_a_restart_of_the_service() {
    let config = test_config();
    let first = spawn_app_with(config.clone()).await;
    for n in 0..5 {
        first
            .order_created(&format!("o{n}"), in_ms(1500 + n * 100))
            .await;
    }
    let schedule = first.schedule().await;
    eventually("five jobs scheduled", Duration::from_secs(5), || async {
        let mut all = true;
        for n in 0..5 {
            all &= schedule.due_ms(&format!("o{n}")).await.unwrap().is_some();
        }
        all.then_some(())
    })
    .await;
    first.stop().await;
    assert!(expirations(&config.bus).await.is_empty());

    let _second = spawn_app_with(config.clone()).await;
    let events = eventually(
        "all five expiries after the restart",
        Duration::from_secs(15),
        || async {
            let events = expirations(&config.bus).await;
            (events.len() == 5).then_some(events)
        },
    )
    .await;
    assert_eq!(fired_order_ids(&events), ["o0", "o1", "o2", "o3", "o4"]);
}

#[tokio::test]
async fn a_job_claimed_by_a_worker_that_died_is_fired_by_another() {
    let config = test_config();
    let app = spawn_app_with(config.clone()).await;
    let schedule = app.schedule().await;
    app.stop().await;
    // A worker claims a due job and dies before publishing.
    schedule
        .add("orphan", Utc::now().timestamp_millis())
        .await
        .unwrap();
    let claimed = schedule
        .claim_due(Utc::now().timestamp_millis(), config.lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        schedule
            .claim_due(Utc::now().timestamp_millis(), config.lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );

    let _replacement = spawn_app_with(config.clone()).await;
    let events = eventually("the orphaned expiry", Duration::from_secs(10), || async {
        let events = expirations(&config.bus).await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(fired_order_ids(&events), ["orphan"]);
}

#[tokio::test]
async fn two_replicas_fire_each_expiry_once() {
    let config = test_config();
    let a = spawn_app_with(config.clone()).await;
    let _b = spawn_app_with(config.clone()).await;
    for n in 0..40 {
        a.order_created(&format!("o{n:02}"), in_ms(800 + n * 10))
            .await;
    }
    eventually("40 expiries", Duration::from_secs(15), || async {
        (expirations(&config.bus).await.len() >= 40).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = expirations(&config.bus).await;
    assert_eq!(events.len(), 40, "each order once");
    let expected: Vec<String> = (0..40).map(|n| format!("o{n:02}")).collect();
    assert_eq!(fired_order_ids(&events), expected);
}

#[tokio::test]
async fn health_reports_redis_and_nats() {
    let app = spawn_app().await;
    let ready: serde_json::Value = reqwest_get(app.port, "/readyz").await;
    assert_eq!(ready["checks"]["redis"], "ok");
    assert_eq!(ready["checks"]["nats"], "ok");
}

async fn reqwest_get(port: u16, path: &str) -> serde_json::Value {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}
