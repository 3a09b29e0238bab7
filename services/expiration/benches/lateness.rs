//! How late expiries fire: schedules 1,000 orders due over a few seconds through the
//! real event flow (order.created → expiration → expiration.complete) and measures, for
//! each, the time from `expiresAt` to the moment a subscriber receives the event.
//!
//! Needs the test servers: `make bench` (or `make test-servers` then
//! `cargo bench -p expiration`). Prints p50, p99 and max.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use common::bus::Bus;
use common::config::HttpConfig;
use common::events::{Envelope, ExpirationComplete, OrderCreated, OrderTicket};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

const JOBS: usize = 1_000;
const SPREAD: Duration = Duration::from_secs(4);

#[tokio::main]
async fn main() {
    let servers = testkit::servers();
    let bus_config = testkit::bus_config("bench");
    let app = expiration::App::build(expiration::Config {
        http: HttpConfig::ephemeral(),
        bus: bus_config.clone(),
        redis: common::redis::RedisConfig::plain(&servers.redis_url),
        key_prefix: testkit::unique_name("bench"),
        lease: Duration::from_secs(10),
    })
    .await
    .unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone()));
    let bus = Bus::connect(&bus_config, "bench").await.unwrap();
    let nats = async_nats::connect(&servers.nats_url).await.unwrap();
    let mut fired = nats
        .subscribe(bus.subject("expiration.complete"))
        .await
        .unwrap();

    let start = Utc::now() + chrono::Duration::seconds(1);
    let mut due = HashMap::new();
    for n in 0..JOBS {
        let offset = SPREAD.as_millis() as i64 * n as i64 / JOBS as i64;
        let expires_at = start + chrono::Duration::milliseconds(offset);
        let id = format!("order-{n}");
        due.insert(id.clone(), expires_at);
        let event = Envelope::new(OrderCreated {
            id,
            user_id: "bench".into(),
            expires_at,
            ticket: OrderTicket {
                id: "ticket".into(),
                price_cents: 100,
            },
            version: 0,
        });
        bus.publish(&event).await.unwrap();
    }

    let mut lateness_ms = Vec::with_capacity(JOBS);
    let deadline = tokio::time::Instant::now() + SPREAD + Duration::from_secs(20);
    while lateness_ms.len() < JOBS {
        let message = tokio::time::timeout_at(deadline, fired.next())
            .await
            .expect("all jobs fire")
            .unwrap();
        let received = Utc::now();
        let event: Envelope<ExpirationComplete> = serde_json::from_slice(&message.payload).unwrap();
        if let Some(expires_at) = due.remove(&event.data.order_id) {
            lateness_ms.push((received - expires_at).num_microseconds().unwrap() as f64 / 1000.0);
        }
    }
    stop.cancel();
    lateness_ms.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lateness_ms[((lateness_ms.len() - 1) as f64 * p).round() as usize];
    let early = lateness_ms.iter().filter(|l| **l < 0.0).count();
    println!("expiry lateness over {JOBS} jobs due within {SPREAD:?}:");
    println!(
        "  p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms   fired early: {early}",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}
