use anyhow::Context;
use axum::extract::FromRef;
use common::auth::Jwt;
use common::bus::Bus;
use common::config::Secret;
use common::health::Readiness;
use common::outbox::{OutboxSignal, Relay};
use common::service::{Ready, Service};
use common::shutdown::BackgroundTasks;
use mongodb::Database;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, GatewayConfig};
use crate::gateway::Gateway;
use crate::store::PaymentStore;
use crate::{http, listeners};

#[derive(Clone)]
pub struct AppState {
    pub store: PaymentStore,
    pub gateway: Gateway,
    pub jwt: Jwt,
    pub currency: String,
    /// Set with the Stripe gateway; without it the webhook is not served.
    pub webhook_secret: Option<Secret>,
}

impl FromRef<AppState> for Jwt {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
}

/// The payments service: HTTP API and webhook, outbox relay, order listeners.
pub struct App(Service);

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let gateway = Gateway::new(&config.gateway)?;
        let db = common::mongo::connect(&config.mongo, "payments")
            .await
            .context("invalid MONGO_URL")?;
        let service = Service::start(config.http.addr, || {
            Self::start(&config, &db, gateway.clone())
        })
        .await?;
        Ok(Self(service))
    }

    /// Everything that needs NATS and Mongo to answer; retried until they do.
    async fn start(config: &Config, db: &Database, gateway: Gateway) -> anyhow::Result<Ready> {
        let bus = Bus::connect(&config.bus, "payments").await?;
        let outbox = OutboxSignal::default();
        let store = PaymentStore::new(db, outbox.clone());
        store.ensure_indexes().await.context("creating indexes")?;

        let mut tasks = BackgroundTasks::new();
        let relay = Relay::new(bus.clone(), outbox).watch(store.payments());
        relay
            .ensure_indexes()
            .await
            .context("creating the outbox index")?;
        tasks.push(relay.spawn(tasks.token()));
        listeners::spawn_all(&bus, &store, &mut tasks).await?;

        let webhook_secret = match &config.gateway {
            GatewayConfig::Stripe { webhook_secret, .. } => Some(webhook_secret.clone()),
            GatewayConfig::Simulated => None,
        };
        let state = AppState {
            store,
            gateway,
            jwt: Jwt::new(&config.jwt),
            currency: config.currency.clone(),
            webhook_secret,
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
