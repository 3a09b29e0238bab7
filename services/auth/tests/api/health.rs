use std::net::SocketAddr;
use std::time::Duration;

use common::config::MongoConfig;
use testkit::{TcpProxy, TestDatabase, eventually};

use crate::helpers::{spawn_app, spawn_app_with, test_config};

#[tokio::test]
async fn healthz_and_readyz_are_200_when_mongo_is_up() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status, 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["checks"]["mongo"], "ok");
}

#[tokio::test]
async fn readyz_turns_503_when_mongo_becomes_unreachable() {
    let db = TestDatabase::new("auth");
    let host_port = db.url.trim_start_matches("mongodb://");
    let host_port = host_port.split(['/', '?']).next().unwrap_or_default();
    let target: SocketAddr = host_port
        .parse()
        .expect("test MONGO_URL is mongodb://host:port");
    let proxy = TcpProxy::start(target).await;
    let config = test_config(MongoConfig {
        url: db.url.replacen(host_port, &proxy.addr().to_string(), 1),
        database: db.name.clone(),
    });
    let app = spawn_app_with(config, db).await;
    assert_eq!(app.get("/readyz").await.status, 200);

    proxy.cut();
    let body = eventually(
        "readyz to report mongo down",
        Duration::from_secs(20),
        || async {
            let response = app.get("/readyz").await;
            (response.status == 503).then_some(response.body)
        },
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "mongo");
    assert_eq!(
        app.get("/healthz").await.status,
        200,
        "liveness does not depend on mongo"
    );
}
