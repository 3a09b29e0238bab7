use common::bus::{Bus, BusConfig};
use common::config::HttpConfig;
use common::events::{Envelope, Event};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{JsonResponse, RunningApp, TestDatabase, new_user_id};
use tickets::{App, Config};

pub struct TestApp {
    /// The service, and requests to it (`app.get(path)`, `app.request(..)`).
    pub running: RunningApp,
    pub bus_config: BusConfig,
    pub bus: Bus,
    pub db: TestDatabase,
}

impl std::ops::Deref for TestApp {
    type Target = RunningApp;

    fn deref(&self) -> &RunningApp {
        &self.running
    }
}

/// A config for a process of the service on `db` and `bus`, with limits no test reaches
/// unless it lowers one.
pub fn test_config(db: &TestDatabase, bus: &BusConfig) -> Config {
    Config {
        http: HttpConfig::ephemeral(),
        jwt: testkit::jwt_config(),
        mongo: db.config(),
        bus: bus.clone(),
        listings_per_minute: 1_000_000,
        live_streams_max: 1000,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// As [`spawn_app`], with the config changed by `change`.
pub async fn spawn_app_with(change: impl FnOnce(&mut Config)) -> TestApp {
    common::telemetry::init_for_tests();
    let db = TestDatabase::new("tickets");
    let bus_config = testkit::bus_config("tickets");
    let mut config = test_config(&db, &bus_config);
    change(&mut config);
    let app = App::build(config).await.expect("build tickets app");
    let running = RunningApp::spawn(app.port(), |stop| app.run_until_stopped(stop));
    let bus = Bus::connect(&bus_config, "test").await.unwrap();
    TestApp {
        running,
        bus_config,
        bus,
        db,
    }
}

impl TestApp {
    pub async fn create(&self, user: &str, title: &str, price: f64) -> JsonResponse {
        self.request(
            Method::POST,
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
        self.request(Method::PUT, &format!("/api/tickets/{id}"), user, Some(body))
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
