use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::bus::{Bus, BusConfig};
use common::config::{HttpConfig, Secret};
use common::events::{
    CancelReason, Envelope, Event, OrderCancelled, OrderCompleted, OrderCreated, OrderTicket,
    OrderTicketRef,
};
use payments::{App, Config, GatewayConfig};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::stripe::StripeStandIn;
use testkit::{JsonResponse, RunningApp, TestDatabase, eventually, new_user_id};

pub const WEBHOOK_SECRET: &str = "whsec_test_standin";

pub struct TestApp {
    /// The service, and requests to it (`app.get(path)`, `app.request(..)`).
    pub running: RunningApp,
    pub stripe: StripeStandIn,
    pub bus_config: BusConfig,
    pub bus: Bus,
    pub db: Arc<TestDatabase>,
    gateway: GatewayConfig,
}

impl std::ops::Deref for TestApp {
    type Target = RunningApp;

    fn deref(&self) -> &RunningApp {
        &self.running
    }
}

pub async fn spawn_app() -> TestApp {
    let stripe = StripeStandIn::start().await;
    let gateway = GatewayConfig::Stripe {
        secret_key: Secret::new("sk_test_standin"),
        webhook_secret: Secret::new(WEBHOOK_SECRET),
        api_base: Some(stripe.url.clone()),
        timeout: Duration::from_secs(1),
    };
    spawn_app_with(gateway, stripe).await
}

pub async fn spawn_app_with(gateway: GatewayConfig, stripe: StripeStandIn) -> TestApp {
    common::telemetry::init_for_tests();
    let db = Arc::new(TestDatabase::new("payments"));
    let bus_config = testkit::bus_config("payments");
    start(gateway, stripe, db, bus_config).await
}

async fn start(
    gateway: GatewayConfig,
    stripe: StripeStandIn,
    db: Arc<TestDatabase>,
    bus_config: BusConfig,
) -> TestApp {
    let app = App::build(Config {
        http: HttpConfig::ephemeral(),
        jwt: testkit::jwt_config(),
        mongo: db.config(),
        bus: bus_config.clone(),
        gateway: gateway.clone(),
        currency: "usd".into(),
    })
    .await
    .expect("build payments");
    TestApp {
        running: RunningApp::spawn(app.port(), |stop| app.run_until_stopped(stop)),
        stripe,
        bus: Bus::connect(&bus_config, "test").await.unwrap(),
        bus_config,
        db,
        gateway,
    }
}

impl TestApp {
    /// Stops this instance and starts a new one on the same database, stream and Stripe
    /// stand-in: a restart (or a deployment) of the service.
    pub async fn restart(self) -> TestApp {
        self.running.stop().await;
        start(
            self.gateway.clone(),
            self.stripe.clone(),
            self.db.clone(),
            self.bus_config.clone(),
        )
        .await
    }

    /// `order.completed` naming the payment that completed the order.
    pub async fn complete(&self, order_id: &str, payment_id: Option<&str>) {
        self.publish(OrderCompleted {
            id: order_id.to_owned(),
            ticket: OrderTicketRef { id: "t".into() },
            version: 1,
            payment_id: payment_id.map(str::to_owned),
        })
        .await;
    }

    /// Waits until the payment with this intent is in `state`.
    pub async fn payment_state_becomes(&self, stripe_id: &str, state: &str) -> bson::Document {
        let payments = self.collection("payments").await;
        eventually(
            &format!("payment {stripe_id} {state}"),
            Duration::from_secs(15),
            || async {
                let payment = payments
                    .find_one(bson::doc! {"stripeId": stripe_id})
                    .await
                    .unwrap()?;
                (payment.get_str("state").ok()? == state).then_some(payment)
            },
        )
        .await
    }

    pub async fn refund_events(&self) -> Vec<Value> {
        testkit::stored_events(&self.bus_config, "payment.refunded").await
    }

    /// Waits for `n` payment.refunded events, then checks no more arrive.
    pub async fn expect_refund_events(&self, n: usize) -> Vec<Value> {
        if n > 0 {
            eventually("payment.refunded", Duration::from_secs(15), || async {
                (self.refund_events().await.len() >= n).then_some(())
            })
            .await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let events = self.refund_events().await;
        assert_eq!(events.len(), n, "{events:?}");
        events
    }

    /// `GET /api/payments?orderId=…`.
    pub async fn history(&self, user: Option<&str>, order_id: &str) -> JsonResponse {
        let path = format!("/api/payments?orderId={order_id}");
        self.request(Method::GET, &path, user, None).await
    }

    pub async fn publish<E: Event>(&self, data: E) {
        self.bus.publish(&Envelope::new(data)).await.unwrap();
    }

    /// An order placed by a new buyer (via `order.created`), once the replica has it.
    pub async fn order(&self, price_cents: i64, expires_at: DateTime<Utc>) -> (String, String) {
        let buyer = new_user_id();
        let id = bson::oid::ObjectId::new();
        self.publish(OrderCreated {
            id: id.to_hex(),
            user_id: buyer.clone(),
            expires_at,
            ticket: OrderTicket {
                id: bson::oid::ObjectId::new().to_hex(),
                price_cents,
            },
            version: 0,
        })
        .await;
        let orders = self.collection("orders").await;
        eventually("the order replica", Duration::from_secs(10), || async {
            orders
                .find_one(bson::doc! {"_id": id})
                .await
                .unwrap()
                .map(|_| ())
        })
        .await;
        (buyer, id.to_hex())
    }

    pub async fn open_order(&self) -> (String, String) {
        self.order(1999, Utc::now() + chrono::Duration::minutes(15))
            .await
    }

    pub async fn cancel(&self, order_id: &str) {
        self.publish(OrderCancelled {
            id: order_id.to_owned(),
            ticket: OrderTicketRef { id: "t".into() },
            version: 1,
            reason: Some(CancelReason::Buyer),
        })
        .await;
        let orders = self.collection("orders").await;
        let id: bson::oid::ObjectId = order_id.parse().unwrap();
        eventually("the replica cancelled", Duration::from_secs(10), || async {
            let order = orders.find_one(bson::doc! {"_id": id}).await.unwrap()?;
            (order.get_str("status").ok()? == "cancelled").then_some(())
        })
        .await;
    }

    pub async fn pay(&self, user: Option<&str>, order_id: &str, method: &str) -> JsonResponse {
        let body = json!({"orderId": order_id, "paymentMethod": method});
        self.request(Method::POST, "/api/payments", user, Some(body))
            .await
    }

    pub async fn webhook(&self, body: &Value, signature: Option<String>) -> JsonResponse {
        let mut request = self
            .builder(Method::POST, "/api/payments/webhook")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap());
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        testkit::send(request).await
    }

    pub async fn collection(&self, name: &str) -> mongodb::Collection<bson::Document> {
        mongodb::Client::with_uri_str(&self.db.url)
            .await
            .unwrap()
            .database(&self.db.name)
            .collection(name)
    }

    pub async fn payments_stored(&self) -> u64 {
        self.collection("payments")
            .await
            .count_documents(bson::doc! {})
            .await
            .unwrap()
    }

    pub async fn payment_events(&self) -> Vec<Value> {
        testkit::stored_events(&self.bus_config, "payment.created").await
    }

    /// Waits for `n` payment.created events, then checks no more arrive.
    pub async fn expect_payment_events(&self, n: usize) -> Vec<Value> {
        if n > 0 {
            eventually("payment.created", Duration::from_secs(10), || async {
                (self.payment_events().await.len() >= n).then_some(())
            })
            .await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let events = self.payment_events().await;
        assert_eq!(events.len(), n, "{events:?}");
        events
    }
}
