use std::time::Duration;

use common::redis::RedisConfig;
use testkit::{TestDatabase, new_user_id};

use crate::helpers::{mail, recipient, spawn_app_with, test_config};
use crate::templates::unreachable_redis;

#[tokio::test]
async fn readiness_reports_mongo_and_nats() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let response = reqwest::get(format!("http://127.0.0.1:{}/readyz", app.port))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let ready: serde_json::Value = response.json().await.unwrap();
    for check in ["mongo", "nats"] {
        assert_eq!(ready["checks"][check], "ok", "{ready}");
    }
    // The template cache is an optimisation: its Redis does not gate readiness.
    assert!(ready["checks"].get("redis").is_none(), "{ready}");
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", app.port))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
}

/// Redis (the compiled-template cache) down: the service starts, is ready, and emails go
/// out, compiled in the process.
#[tokio::test]
async fn without_redis_the_service_starts_is_ready_and_sends() {
    let db = TestDatabase::new("notifications");
    let config = notifications::Config {
        redis: RedisConfig::plain(unreachable_redis()),
        ..test_config(&db)
    };
    let app = tokio::time::timeout(Duration::from_secs(30), spawn_app_with(config))
        .await
        .expect("started without Redis");
    let response = reqwest::get(format!("http://127.0.0.1:{}/readyz", app.port))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "ready without Redis");
    let email = recipient();
    app.user(&new_user_id(), &email).await;
    let welcome = mail(&email, "Welcome").await;
    assert!(welcome.html.contains(&email));
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", app.port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with(r#"email_template_cache_total{result="error"}"#)),
        "{metrics}"
    );
}
