use common::bus::{Bus, BusConfig};
use common::config::HttpConfig;
use common::events::{Envelope, Event};
use serde_json::{Value, json};
use testkit::{JsonResponse, TestDatabase, new_user_id, session_cookie};
use tickets::{App, Config};
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub address: String,
    pub bus_config: BusConfig,
    pub bus: Bus,
    pub db: TestDatabase,
    client: reqwest::Client,
    stop: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with_listings_per_minute(1_000_000).await
}

/// As [`spawn_app`], with `LISTINGS_PER_MINUTE` set.
pub async fn spawn_app_with_listings_per_minute(listings_per_minute: u32) -> TestApp {
    common::telemetry::init_for_tests();
    let db = TestDatabase::new("tickets");
    let bus_config = testkit::bus_config("tickets");
    let config = Config {
        http: HttpConfig::ephemeral(),
        jwt: testkit::jwt_config(),
        mongo: db.config(),
        bus: bus_config.clone(),
        listings_per_minute,
        live_streams_max: 1000,
    };
    let app = App::build(config).await.expect("build tickets app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone()));
    let bus = Bus::connect(&bus_config, "test").await.unwrap();
    TestApp {
        address,
        bus_config,
        bus,
        db,
        client: reqwest::Client::new(),
        stop,
    }
}

impl TestApp {
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        user: Option<&str>,
        body: Option<Value>,
    ) -> JsonResponse {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(user) = user {
            request = request.header("cookie", session_cookie(user));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        JsonResponse::from(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> JsonResponse {
        self.request(reqwest::Method::GET, path, None, None).await
    }

    pub async fn create(&self, user: &str, title: &str, price: f64) -> JsonResponse {
        self.request(
            reqwest::Method::POST,
            "/api/tickets",
            Some(user),
            Some(json!({"title": title, "price": price})),
        )
        .await
    }

    /// Lists a ticket as a fresh seller and returns (seller, ticket id).
    pub async fn listed_ticket(&self) -> (String, String) {
        let seller = new_user_id();
        let created = self.create(&seller, "Concert", 20.0).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        (seller, created.body["id"].as_str().unwrap().to_owned())
    }

    pub async fn update(&self, user: Option<&str>, id: &str, body: Value) -> JsonResponse {
        self.request(
            reqwest::Method::PUT,
            &format!("/api/tickets/{id}"),
            user,
            Some(body),
        )
        .await
    }

    pub async fn publish<E: Event>(&self, data: E) -> Envelope<E> {
        let envelope = Envelope::new(data);
        self.bus.publish(&envelope).await.unwrap();
        envelope
    }

    pub async fn events(&self, subject: &str) -> Vec<Value> {
        testkit::stored_events(&self.bus_config, subject).await
    }
}
