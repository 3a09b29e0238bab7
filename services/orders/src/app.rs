use std::time::Duration;

use anyhow::Context;
use common::auth::bans::BanStore;
use common::auth::{Jwt, Sessions};
use common::bus::Bus;
use common::health::Readiness;
use common::outbox::{OutboxSignal, Relay};
use common::service::{Ready, Service};
use common::shutdown::BackgroundTasks;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::quota::Quota;
use crate::state::AppState;
use crate::store::Store;
use crate::transitions::{Rules, Transitions};
use crate::{http, listeners, sweeper};

/// The orders service: HTTP API, outbox relay, event listeners and the expiry sweeper.
pub struct App(Service);

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_sweeper(config, sweeper::GRACE).await
    }

    /// As [`App::build`], with the sweeper's grace period chosen (tests shorten it).
    pub async fn build_with_sweeper(config: Config, grace: Duration) -> anyhow::Result<Self> {
        // A payment held by a replica that dies reaches another one after the ack wait;
        // the grace must cover that, or its order expires first and the charge is refunded.
        if config.payment_grace < config.bus.ack_wait * 2 {
            tracing::warn!(
                payment_grace = ?config.payment_grace,
                ack_wait = ?config.bus.ack_wait,
                "PAYMENT_GRACE_SECONDS is under twice EVENT_ACK_WAIT_MS: a payment held by an \
                 orders replica that crashes may find its order expired, and be refunded"
            );
        }
        let service = Service::start(config.http.addr, || Self::start(&config, grace)).await?;
        Ok(Self(service))
    }

    /// Everything that needs NATS and Mongo to answer; retried until they do.
    async fn start(config: &Config, grace: Duration) -> anyhow::Result<Ready> {
        let db = &common::mongo::open(&config.mongo, "orders")
            .await
            .context("connecting to MongoDB")?;
        let bus = Bus::connect(&config.bus, "orders").await?;
        let outbox = OutboxSignal::default();
        let store = Store::new(db, outbox.clone());
        store.ensure_indexes().await.context("creating indexes")?;
        let orders = Transitions::new(
            store,
            Rules {
                payment_grace: config.payment_grace,
                currency: config.currency.clone(),
            },
        );

        let mut tasks = BackgroundTasks::new();
        let relay = Relay::new(bus.clone(), outbox).watch(orders.store.orders());
        relay
            .ensure_indexes()
            .await
            .context("creating the outbox index")?;
        tasks.push(relay.spawn(tasks.token()));
        listeners::spawn_all(&bus, &orders, &mut tasks).await?;
        let bans = listeners::follow_bans(&bus, &orders, &BanStore::new(db), &mut tasks).await?;
        let every = grace.min(Duration::from_secs(10));
        tasks.push(sweeper::spawn(orders.clone(), every, grace, tasks.token()));

        let quota = Quota::new(db, orders.store.orders(), config.max_active_orders);
        let state = AppState {
            store: orders.store.clone(),
            transitions: orders,
            sessions: Sessions::new(Jwt::new(&config.jwt.public_keys), bans),
            expiration_window: config.expiration_window,
            quota,
        };
        Ok(Ready {
            routes: http::router(state),
            readiness: Readiness::default().mongo(db).nats(&bus),
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.0.port()
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.0.run_until_stopped(shutdown).await
    }
}
