use std::time::Duration;

use common::bus::{Bus, BusConfig};
use common::config::HttpConfig;
use common::events::{Envelope, Event, TicketCreated, TicketDetails};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{JsonResponse, RunningApp, TestDatabase, eventually, new_user_id};

/// The orders service on an event stream of its own. Tickets reach it as the tickets
/// service announces them: the tests publish those events.
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

pub struct Options {
    pub window: Duration,
    /// How long past its deadline an unpaid order waits for a charge in flight.
    pub payment_grace: Duration,
    pub sweeper_grace: Duration,
    /// `MAX_ACTIVE_ORDERS_PER_USER`.
    pub max_active_orders: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(900),
            payment_grace: Duration::from_millis(300),
            sweeper_grace: Duration::from_secs(3600),
            max_active_orders: 1_000,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    common::telemetry::init_for_tests();
    let bus_config = testkit::bus_config("orders");
    let orders_db = TestDatabase::new("orders");
    let orders_app = orders::App::build_with_sweeper(
        orders::Config {
            http: HttpConfig::ephemeral(),
            jwt: testkit::jwt_config(),
            mongo: orders_db.config(),
            bus: bus_config.clone(),
            expiration_window: options.window,
            payment_grace: options.payment_grace,
            currency: "usd".to_owned(),
            max_active_orders: options.max_active_orders,
        },
        options.sweeper_grace,
    )
    .await
    .expect("build orders");
    TestApp {
        running: RunningApp::spawn(orders_app.port(), |stop| orders_app.run_until_stopped(stop)),
        bus: Bus::connect(&bus_config, "test").await.unwrap(),
        bus_config,
        db: orders_db,
    }
}

impl TestApp {
    /// A ticket "Concert" listed by a new seller (its `ticket.created`), once the orders
    /// service knows it: (seller, ticket id).
    pub async fn listed_ticket(&self, price: f64) -> (String, String) {
        self.listed_ticket_with(price, TicketDetails::default())
            .await
    }

    /// As [`Self::listed_ticket`], with `details`.
    pub async fn listed_ticket_with(&self, price: f64, details: TicketDetails) -> (String, String) {
        let seller = new_user_id();
        let id = bson::oid::ObjectId::new().to_hex();
        self.publish(TicketCreated {
            id: id.clone(),
            title: "Concert".into(),
            price_cents: (price * 100.0).round() as i64,
            user_id: seller.clone(),
            version: 0,
            details,
        })
        .await;
        eventually(
            "the orders replica of the ticket",
            Duration::from_secs(10),
            || async { self.replica_has(&id).await.then_some(()) },
        )
        .await;
        (seller, id)
    }

    async fn replica_has(&self, ticket_id: &str) -> bool {
        let client = mongodb::Client::with_uri_str(&self.db.url).await.unwrap();
        let id: bson::oid::ObjectId = ticket_id.parse().unwrap();
        client
            .database(&self.db.name)
            .collection::<bson::Document>("tickets")
            .find_one(bson::doc! {"_id": id})
            .await
            .unwrap()
            .is_some()
    }

    pub async fn order(&self, buyer: &str, ticket_id: &str) -> JsonResponse {
        self.request(
            Method::POST,
            "/api/orders",
            Some(buyer),
            Some(json!({"ticketId": ticket_id})),
        )
        .await
    }

    /// Places an order that must succeed; its id.
    pub async fn place(&self, buyer: &str, ticket_id: &str) -> String {
        let placed = self.order(buyer, ticket_id).await;
        assert_eq!(placed.status, 201, "{:?}", placed.body);
        placed.body["id"].as_str().unwrap().to_owned()
    }

    /// Waits until the service has announced `subject` (`order.created`, …) for the order
    /// `order_id`: what the tickets service reserves or frees the ticket on.
    pub async fn wait_for_event(&self, subject: &str, order_id: &str) -> Value {
        eventually(
            &format!("{subject} for {order_id}"),
            Duration::from_secs(10),
            || async {
                let events = self.events(subject).await;
                events.into_iter().find(|e| e["data"]["id"] == order_id)
            },
        )
        .await
    }

    pub async fn order_status(&self, buyer: &str, order_id: &str) -> String {
        let order = self
            .request(
                Method::GET,
                &format!("/api/orders/{order_id}"),
                Some(buyer),
                None,
            )
            .await;
        order.body["status"].as_str().unwrap_or_default().to_owned()
    }

    pub async fn wait_for_status(&self, buyer: &str, order_id: &str, status: &str) {
        eventually(
            &format!("order {status}"),
            Duration::from_secs(10),
            || async { (self.order_status(buyer, order_id).await == status).then_some(()) },
        )
        .await;
    }

    pub async fn publish<E: Event>(&self, data: E) {
        self.bus.publish(&Envelope::new(data)).await.unwrap();
    }

    pub async fn events(&self, subject: &str) -> Vec<Value> {
        testkit::stored_events(&self.bus_config, subject).await
    }

    pub async fn orders_collection(&self) -> mongodb::Collection<bson::Document> {
        mongodb::Client::with_uri_str(&self.db.url)
            .await
            .unwrap()
            .database(&self.db.name)
            .collection("orders")
    }
}

/// Gives the listeners time to drain, so "nothing happened" is meaningful.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(700)).await;
}
