use std::time::Duration;

use chrono::{DateTime, Utc};
use common::bus::{Bus, BusConfig};
use common::config::HttpConfig;
use common::events::{Envelope, Event, OrderCreated, OrderTicket};
use expiration::{App, Config, Schedule};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub struct TestService {
    pub config: Config,
    pub bus: Bus,
    pub port: u16,
    stop: CancellationToken,
}

impl Drop for TestService {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub fn test_config() -> Config {
    Config {
        http: HttpConfig::ephemeral(),
        bus: testkit::bus_config("expiration"),
        redis_url: testkit::servers().redis_url.clone(),
        key_prefix: testkit::unique_name("expiration"),
        lease: Duration::from_millis(800),
    }
}

pub async fn start(config: Config) -> TestService {
    common::telemetry::init_for_tests();
    let app = App::build(config.clone()).await.expect("build expiration");
    let port = app.port();
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone()));
    TestService {
        bus: Bus::connect(&config.bus, "test").await.unwrap(),
        config,
        port,
        stop,
    }
}

impl TestService {
    /// Stops the service and waits until it has finished its background tasks.
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    pub async fn publish<E: Event>(&self, data: E) {
        self.bus.publish(&Envelope::new(data)).await.unwrap();
    }

    pub async fn order_created(&self, id: &str, expires_at: DateTime<Utc>) {
        self.publish(OrderCreated {
            id: id.to_owned(),
            user_id: "buyer".into(),
            expires_at,
            ticket: OrderTicket {
                id: "ticket".into(),
                price_cents: 100,
            },
            version: 0,
        })
        .await;
    }

    pub async fn expirations(&self) -> Vec<Value> {
        expirations(&self.config.bus).await
    }

    pub async fn schedule(&self) -> Schedule {
        Schedule::connect(&self.config.redis_url, &self.config.key_prefix)
            .await
            .unwrap()
    }
}

pub async fn expirations(bus: &BusConfig) -> Vec<Value> {
    testkit::stored_events(bus, "expiration.complete").await
}

pub fn in_ms(ms: i64) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::milliseconds(ms)
}

pub fn fired_order_ids(events: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| e["data"]["orderId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}
