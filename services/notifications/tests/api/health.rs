use testkit::TestDatabase;

use crate::helpers::{start, test_config};

#[tokio::test]
async fn readiness_reports_mongo_redis_and_nats() {
    let db = TestDatabase::new("notifications");
    let service = start(test_config(&db)).await;
    let response = reqwest::get(format!("http://127.0.0.1:{}/readyz", service.port))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let ready: serde_json::Value = response.json().await.unwrap();
    for check in ["mongo", "redis", "nats"] {
        assert_eq!(ready["checks"][check], "ok", "{ready}");
    }
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", service.port))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
}
