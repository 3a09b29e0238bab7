use auth::{App, Config, LimitsConfig, SessionConfig};
use common::bus::BusConfig;
use common::config::{HttpConfig, MongoConfig};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{JsonResponse, RunningApp, TestClient, TestDatabase};

pub struct TestApp {
    /// The service, and requests to it (`app.get(path)`, `app.request(..)`), keeping
    /// cookies between them like a browser; `app.browser()` opens another.
    pub running: RunningApp,
    /// Dropped with the app, which drops the test's database.
    _db: TestDatabase,
}

impl std::ops::Deref for TestApp {
    type Target = RunningApp;

    fn deref(&self) -> &RunningApp {
        &self.running
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
pub async fn spawn_app() -> TestApp {
    spawn_app_with_limits(generous_limits()).await
}

/// An app with the limits a test of a limit sets itself.
pub async fn spawn_app_with_limits(limits: LimitsConfig) -> TestApp {
    let db = TestDatabase::new("auth");
    let mut config = test_config(db.config());
    config.limits = limits;
    spawn_app_with(config, db).await
}

pub async fn spawn_app_with(config: Config, db: TestDatabase) -> TestApp {
    common::telemetry::init_for_tests();
    let app = App::build(config).await.expect("build auth app");
    TestApp {
        running: RunningApp::spawn(app.port(), |stop| app.run_until_stopped(stop)),
        _db: db,
    }
}

impl TestApp {
    /// Signs up `email` in `browser`, which then holds the session.
    pub async fn signup_in(&self, browser: &TestClient, email: &str) -> JsonResponse {
        let body = json!({"email": email, "password": "correct horse"});
        let response = browser.post("/api/users/signup", body).await;
        assert_eq!(response.status, 201, "{:?}", response.body);
        response
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
        let request = self
            .browser()
            .builder(Method::GET, "/api/users/currentuser")
            .header("cookie", cookie);
        let response = testkit::send(request).await;
        assert_eq!(response.status, 200);
        response.body["currentUser"].clone()
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
