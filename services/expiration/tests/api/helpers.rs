use std::time::Duration;

use chrono::{DateTime, Utc};
use common::bus::{Bus, BusConfig};
use common::config::HttpConfig;
use common::events::{Envelope, Event, OrderCreated, OrderTicket};
use common::redis::RedisConfig;
use expiration::{App, Config, Schedule};
use serde_json::Value;
use testkit::RunningApp;

pub struct TestApp {
    /// The service (`app.port`, `app.stop()`).
    pub running: RunningApp,
    pub config: Config,
    pub bus: Bus,
}

impl std::ops::Deref for TestApp {
    type Target = RunningApp;

    fn deref(&self) -> &RunningApp {
        &self.running
    }
}

pub fn test_config() -> Config {
    Config {
        http: HttpConfig::ephemeral(),
        bus: testkit::bus_config("expiration"),
        redis: RedisConfig::plain(&testkit::servers().redis_url),
        key_prefix: testkit::unique_name("expiration"),
        lease: Duration::from_millis(800),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config()).await
}

/// A process of the service with `config`: several with one config are replicas.
pub async fn spawn_app_with(config: Config) -> TestApp {
    common::telemetry::init_for_tests();
    let app = App::build(config.clone()).await.expect("build expiration");
    TestApp {
        running: RunningApp::spawn(app.port(), |stop| app.run_until_stopped(stop)),
        bus: Bus::connect(&config.bus, "test").await.unwrap(),
        config,
    }
}

impl TestApp {
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
        Schedule::connect(&self.config.redis, &self.config.key_prefix)
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
