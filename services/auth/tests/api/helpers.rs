use std::time::Duration;

use auth::{App, Config};
use common::bus::BusConfig;
use common::config::{HttpConfig, JwtConfig, MongoConfig, Secret};
use serde_json::{Value, json};
use testkit::{JsonResponse, TEST_JWT_KEY, TestDatabase};
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub address: String,
    /// Keeps cookies between requests, like a browser.
    pub client: reqwest::Client,
    /// Dropped with the app, which drops the test's database.
    _db: TestDatabase,
    stop: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub fn test_config(mongo: MongoConfig) -> Config {
    test_config_with_bus(mongo, testkit::bus_config("auth"))
}

pub fn test_config_with_bus(mongo: MongoConfig, bus: BusConfig) -> Config {
    Config {
        http: HttpConfig::ephemeral(),
        jwt: JwtConfig {
            key: Secret::new(TEST_JWT_KEY),
            ttl: Duration::from_secs(3600),
        },
        mongo,
        bus,
        cookie_secure: true,
    }
}

pub async fn spawn_app() -> TestApp {
    let db = TestDatabase::new("auth");
    spawn_with(test_config(db.config()), db).await
}

pub async fn spawn_with(config: Config, db: TestDatabase) -> TestApp {
    common::telemetry::init_for_tests();
    let app = App::build(config).await.expect("build auth app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone()));
    TestApp {
        address,
        client: reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap(),
        _db: db,
        stop,
    }
}

impl TestApp {
    pub async fn post(&self, path: &str, body: Value) -> JsonResponse {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .json(&body)
            .send()
            .await
            .expect("request");
        JsonResponse::from(response).await
    }

    pub async fn get(&self, path: &str) -> JsonResponse {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request");
        JsonResponse::from(response).await
    }

    pub async fn signup(&self, email: &str, password: &str) -> JsonResponse {
        self.post(
            "/api/users/signup",
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn signin(&self, email: &str, password: &str) -> JsonResponse {
        self.post(
            "/api/users/signin",
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn current_user(&self) -> Value {
        let response = self.get("/api/users/currentuser").await;
        assert_eq!(response.status, 200);
        response.body["currentUser"].clone()
    }

    /// `currentuser` with an explicit Cookie header instead of the client's jar.
    pub async fn current_user_with_cookie(&self, cookie: &str) -> Value {
        let response = reqwest::Client::new()
            .get(format!("{}/api/users/currentuser", self.address))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        JsonResponse::from(response).await.body["currentUser"].clone()
    }
}

/// The `session=…` pair of a Set-Cookie header.
pub fn session_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_owned()
}
