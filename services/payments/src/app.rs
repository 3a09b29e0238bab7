use anyhow::Context;
use axum::extract::FromRef;
use common::auth::Jwt;
use common::bus::Bus;
use common::config::Secret;
use common::health::Readiness;
use common::outbox::{OutboxSignal, Relay};
use common::service::Service;
use common::shutdown::BackgroundTasks;
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
        let bus = Bus::connect(&config.bus, "payments").await?;
        let outbox = OutboxSignal::default();
        let store = PaymentStore::new(&db, outbox.clone());
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
            currency: config.currency,
            webhook_secret,
        };
        let readiness = Readiness::default().mongo(&db).nats(&bus);
        let service =
            Service::bind(config.http.addr, http::router(state), readiness, tasks).await?;
        Ok(Self(service))
    }

    pub fn port(&self) -> u16 {
        self.0.port()
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.0.run_until_stopped(shutdown).await
    }
}
