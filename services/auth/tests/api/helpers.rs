use auth::{App, Config, LimitsConfig, SessionConfig};
use common::bus::BusConfig;
use common::config::{HttpConfig, MongoConfig};
use serde_json::{Value, json};
use testkit::{JsonResponse, TestDatabase};
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
    let mut config = Config::new(
        HttpConfig::ephemeral(),
        SessionConfig::new(testkit::test_private_key()),
        mongo,
        bus,
    );
    config.admin_emails = vec![ADMIN_EMAIL.to_owned()];
    config.limits = generous_limits();
    config
}

/// Limits no test reaches unless it lowers one (every test client is one address).
pub fn generous_limits() -> LimitsConfig {
    LimitsConfig {
        signin_per_minute: 1_000_000,
        signup_per_minute: 1_000_000,
        reset_per_hour: 1_000_000,
        reset_per_email_per_hour: 1_000_000,
        hash_queue: 1_000,
        ..LimitsConfig::default()
    }
}

/// The admin of every test app (`ADMIN_EMAILS`).
pub const ADMIN_EMAIL: &str = "admin@example.com";

/// An app with the limits a test of a limit sets itself.
pub async fn spawn_limited(limits: LimitsConfig) -> TestApp {
    let db = TestDatabase::new("auth");
    let mut config = test_config(db.config());
    config.limits = limits;
    spawn_with(config, db).await
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

/// A browser of its own: a cookie store apart from the app's default one.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl TestApp {
    /// A request from `browser` (see [`browser`]).
    pub async fn send(
        &self,
        browser: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> JsonResponse {
        let mut request = browser.request(method, format!("{}{path}", self.address));
        if let Some(body) = body {
            request = request.json(&body);
        }
        JsonResponse::from(request.send().await.expect("request")).await
    }

    /// Signs up `email` in `browser`, which then holds the session.
    pub async fn signup_in(&self, browser: &reqwest::Client, email: &str) -> JsonResponse {
        let response = self
            .send(
                browser,
                reqwest::Method::POST,
                "/api/users/signup",
                Some(json!({"email": email, "password": "correct horse"})),
            )
            .await;
        assert_eq!(response.status, 201, "{:?}", response.body);
        response
    }

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

/// The `name=value` pair of the Set-Cookie header for cookie `name`.
pub fn cookie_pair(response: &JsonResponse, name: &str) -> Option<String> {
    response
        .set_cookies()
        .iter()
        .find(|cookie| cookie.starts_with(&format!("{name}=")))
        .map(|cookie| session_pair(cookie))
}

/// The `session=…` pair of a Set-Cookie header.
pub fn session_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_owned()
}
