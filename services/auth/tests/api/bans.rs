use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use testkit::{RunningApp, TestDatabase, bus_config, eventually, stored_events};

use crate::helpers::{ADMIN_EMAIL, spawn_app_with, test_config_with_bus};

#[tokio::test]
async fn only_admins_ban_known_users_and_the_ban_is_announced_and_enforced() {
    let db = TestDatabase::new("auth");
    let bus = bus_config("auth");
    let app = spawn_app_with(test_config_with_bus(db.config(), bus.clone()), db).await;
    let (admin, ann, bob) = (app.browser(), app.browser(), app.browser());
    app.signup_in(&admin, ADMIN_EMAIL).await;
    let ann_id = app.signup_in(&ann, "ann@example.com").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.signup_in(&bob, "bob@example.com").await;
    let ban_path = format!("/api/users/{ann_id}/ban");

    assert_eq!(
        app.browser()
            .request(Method::POST, &ban_path, None, None)
            .await
            .status,
        401
    );
    let by_bob = bob.request(Method::POST, &ban_path, None, None).await;
    assert_eq!(by_bob.status, 403, "{:?}", by_bob.body);
    for unknown in [
        "/api/users/507f1f77bcf86cd799439011/ban",
        "/api/users/nonsense/ban",
    ] {
        assert_eq!(
            admin
                .request(Method::POST, unknown, None, None)
                .await
                .status,
            404
        );
    }

    assert_eq!(
        admin
            .request(Method::POST, &ban_path, None, None)
            .await
            .status,
        204
    );
    assert_eq!(
        admin
            .request(Method::POST, &ban_path, None, None)
            .await
            .status,
        204,
        "banning twice is a no-op"
    );
    let started = std::time::Instant::now();
    // Refused within a second by auth itself, though her access token is unexpired (an
    // empty password change: 400 while she may, 403 once she may not).
    eventually("ann refused", Duration::from_secs(1), || async {
        let response = ann.post("/api/users/password", json!({})).await;
        assert!(matches!(response.status, 400 | 403), "{}", response.status);
        (response.status == 403).then_some(())
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    let signin = || async {
        let credentials = json!({"email": "ann@example.com", "password": "correct horse"});
        app.browser().post("/api/users/signin", credentials).await
    };
    let refused = signin().await;
    assert_eq!(
        (refused.status, refused.error_message()),
        (403, "Account suspended")
    );
    assert_eq!(
        ann.request(Method::POST, "/api/users/refresh", None, None)
            .await
            .status,
        401,
        "her sessions were revoked"
    );

    assert_eq!(admin.delete(&ban_path).await.status, 204);
    eventually("ann may sign in again", Duration::from_secs(5), || async {
        (signin().await.status == 200).then_some(())
    })
    .await;

    let events = eventually("ban events", Duration::from_secs(10), || async {
        let banned = stored_events(&bus, "user.banned").await;
        let unbanned = stored_events(&bus, "user.unbanned").await;
        (!banned.is_empty() && !unbanned.is_empty()).then_some((banned, unbanned))
    })
    .await;
    assert_eq!(events.0.len(), 1, "one ban, however often asked");
    assert_eq!(events.0[0]["data"]["id"], ann_id.as_str());
    let (banned_at, unbanned_at) = (
        events.0[0]["data"]["version"].as_i64().unwrap(),
        events.1[0]["data"]["version"].as_i64().unwrap(),
    );
    assert!(
        banned_at >= 1 && unbanned_at > banned_at,
        "{banned_at} {unbanned_at}"
    );
}

#[tokio::test]
async fn a_restarted_process_refuses_a_banned_user_from_its_first_answer() {
    let db = TestDatabase::new("auth");
    let bus = bus_config("auth");
    let config = test_config_with_bus(db.config(), bus.clone());
    let app = spawn_app_with(config.clone(), db).await;
    let (admin, ann) = (app.browser(), app.browser());
    app.signup_in(&admin, ADMIN_EMAIL).await;
    let ann_id = app.signup_in(&ann, "ann@example.com").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ban = format!("/api/users/{ann_id}/ban");
    assert_eq!(
        admin.request(Method::POST, &ban, None, None).await.status,
        204
    );
    eventually("ann refused", Duration::from_secs(5), || async {
        let response = ann.post("/api/users/password", json!({})).await;
        (response.status == 403).then_some(())
    })
    .await;

    // Another process on the same database and stream (a restart, or a new replica):
    // the bans are read before it serves, so there is no window of "not banned yet".
    let restarted = auth::App::build(config).await.unwrap();
    let restarted = RunningApp::spawn(restarted.port(), |stop| restarted.run_until_stopped(stop));
    let ready = testkit::eventually("the new process ready", Duration::from_secs(10), || async {
        let status = restarted.browser().get("/readyz").await.status;
        (200..300).contains(&status).then_some(())
    });
    ready.await;
    let first = ann
        .at(restarted.address.clone())
        .post("/api/users/password", json!({}))
        .await;
    drop(restarted);
    assert_eq!(first.status, 403);
}
