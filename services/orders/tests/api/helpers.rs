use std::time::Duration;

use common::bus::{Bus, BusConfig};
use common::config::HttpConfig;
use common::events::{Envelope, Event};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{JsonResponse, TestDatabase, eventually, new_user_id, session_cookie};
use tokio_util::sync::CancellationToken;

/// The orders service and the tickets service it follows, on one event stream.
pub struct TestApps {
    pub orders: String,
    pub tickets: String,
    pub bus_config: BusConfig,
    pub bus: Bus,
    pub orders_db: TestDatabase,
    _tickets_db: TestDatabase,
    client: reqwest::Client,
    stop: CancellationToken,
}

impl Drop for TestApps {
    fn drop(&mut self) {
        self.stop.cancel();
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

pub async fn spawn_apps() -> TestApps {
    spawn_apps_with(Options::default()).await
}

pub async fn spawn_apps_with(options: Options) -> TestApps {
    common::telemetry::init_for_tests();
    let bus_config = testkit::bus_config("orders");
    let stop = CancellationToken::new();
    let tickets_db = TestDatabase::new("tickets");
    let tickets_app = tickets::App::build(tickets::Config {
        http: HttpConfig::ephemeral(),
        jwt: testkit::jwt_config(),
        mongo: tickets_db.config(),
        bus: bus_config.clone(),
        listings_per_minute: 1_000_000,
        live_streams_max: 1000,
    })
    .await
    .expect("build tickets");
    let tickets = format!("http://127.0.0.1:{}", tickets_app.port());
    tokio::spawn(tickets_app.run_until_stopped(stop.clone()));

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
    let orders = format!("http://127.0.0.1:{}", orders_app.port());
    tokio::spawn(orders_app.run_until_stopped(stop.clone()));

    TestApps {
        orders,
        tickets,
        bus: Bus::connect(&bus_config, "test").await.unwrap(),
        bus_config,
        orders_db,
        _tickets_db: tickets_db,
        client: reqwest::Client::new(),
        stop,
    }
}

impl TestApps {
    pub async fn call(
        &self,
        method: Method,
        url: String,
        user: Option<&str>,
        body: Option<Value>,
    ) -> JsonResponse {
        let mut request = self.client.request(method, url);
        if let Some(user) = user {
            request = request.header("cookie", session_cookie(user));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        JsonResponse::from(request.send().await.expect("request")).await
    }

    pub async fn orders_api(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: Option<Value>,
    ) -> JsonResponse {
        self.call(method, format!("{}{path}", self.orders), user, body)
            .await
    }

    /// A ticket listed through the tickets service, once the orders service knows it.
    pub async fn listed_ticket(&self, price: f64) -> (String, String) {
        self.listed_ticket_with(json!({"title": "Concert", "price": price}))
            .await
    }

    /// As [`Self::listed_ticket`], listed with `body`.
    pub async fn listed_ticket_with(&self, body: Value) -> (String, String) {
        let seller = new_user_id();
        let created = self
            .call(
                Method::POST,
                format!("{}/api/tickets", self.tickets),
                Some(&seller),
                Some(body),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let id = created.body["id"].as_str().unwrap().to_owned();
        eventually(
            "the orders replica of the ticket",
            Duration::from_secs(10),
            || async { self.replica_has(&id).await.then_some(()) },
        )
        .await;
        (seller, id)
    }

    async fn replica_has(&self, ticket_id: &str) -> bool {
        let client = mongodb::Client::with_uri_str(&self.orders_db.url)
            .await
            .unwrap();
        let id: bson::oid::ObjectId = ticket_id.parse().unwrap();
        client
            .database(&self.orders_db.name)
            .collection::<bson::Document>("tickets")
            .find_one(bson::doc! {"_id": id})
            .await
            .unwrap()
            .is_some()
    }

    pub async fn order(&self, buyer: &str, ticket_id: &str) -> JsonResponse {
        self.orders_api(
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

    pub async fn ticket(&self, id: &str) -> Value {
        self.call(
            Method::GET,
            format!("{}/api/tickets/{id}", self.tickets),
            None,
            None,
        )
        .await
        .body
    }

    /// Waits until the tickets service shows the ticket held by `order_id` (or free).
    pub async fn wait_for_ticket_holder(&self, ticket_id: &str, order_id: Option<&str>) {
        eventually(
            &format!("ticket held by {order_id:?}"),
            Duration::from_secs(10),
            || async {
                (self.ticket(ticket_id).await["orderId"].as_str() == order_id).then_some(())
            },
        )
        .await;
    }

    pub async fn order_status(&self, buyer: &str, order_id: &str) -> String {
        let order = self
            .orders_api(
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
        mongodb::Client::with_uri_str(&self.orders_db.url)
            .await
            .unwrap()
            .database(&self.orders_db.name)
            .collection("orders")
    }
}

/// Gives the listeners time to drain, so "nothing happened" is meaningful.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(700)).await;
}
