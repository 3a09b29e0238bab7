use anyhow::Context;
use common::auth::bans::BanStore;
use common::auth::{Jwt, Sessions};
use common::bus::Bus;
use common::health::Readiness;
use common::outbox::{OutboxSignal, Relay};
use common::service::{Ready, Service};
use common::shutdown::BackgroundTasks;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, GatewayConfig};
use crate::domain::{IntentId, OrderId};
use crate::gateway::Gateway;
use crate::settlement::Settlement;
use crate::state::AppState;
use crate::store::Store;
use crate::{http, listeners};

/// The payments service: HTTP API and webhook, outbox relay, order listeners, and the
/// worker that refunds and cancels at Stripe.
pub struct App(Service);

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let gateway = Gateway::new(&config.gateway)?;
        let service =
            Service::start(config.http.addr, || Self::start(&config, gateway.clone())).await?;
        Ok(Self(service))
    }

    /// Everything that needs NATS and Mongo to answer; retried until they do.
    async fn start(config: &Config, gateway: Gateway) -> anyhow::Result<Ready> {
        let db = &common::mongo::open(&config.mongo, "payments")
            .await
            .context("connecting to MongoDB")?;
        let bus = Bus::connect(&config.bus, "payments").await?;
        let outbox = OutboxSignal::default();
        let store = Store::new(db, outbox.clone());
        store.ensure_indexes().await.context("creating indexes")?;

        let mut tasks = BackgroundTasks::new();
        let relay = Relay::new(bus.clone(), outbox).watch(store.payments());
        relay
            .ensure_indexes()
            .await
            .context("creating the outbox index")?;
        tasks.push(relay.spawn(tasks.token()));
        let settlement = Settlement::new(store, gateway, config.currency.clone());
        fold_legacy_refunds_due(&settlement).await;
        tasks.push(settlement.clone().spawn_worker(tasks.token()));
        listeners::spawn_all(&bus, &settlement, &mut tasks).await?;
        let bans = BanStore::new(db)
            .follow(&bus, listeners::SERVICE, &mut tasks)
            .await?;

        let webhook_secret = match &config.gateway {
            GatewayConfig::Stripe { webhook_secret, .. } => Some(webhook_secret.clone()),
            GatewayConfig::Simulated => None,
        };
        let state = AppState {
            store: settlement.store.clone(),
            settlement,
            sessions: Sessions::new(Jwt::new(&config.jwt.public_keys), bans),
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

/// Charges an earlier version kept in `refunds_due`, which nothing read, become payments:
/// the usual rules then refund them (their orders were completed by another payment).
async fn fold_legacy_refunds_due(settlement: &Settlement) {
    let legacy = match settlement.store.legacy_refunds_due().await {
        Ok(legacy) => legacy,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the legacy refunds_due collection");
            return;
        }
    };
    for due in legacy {
        let (Ok(stripe_id), Ok(order_id), Ok(amount), Ok(currency)) = (
            due.get_str("_id"),
            due.get_str("orderId"),
            due.get_i64("amountCents"),
            due.get_str("currency"),
        ) else {
            tracing::error!(record = %due, "unreadable refunds_due record left in place");
            continue;
        };
        match settlement
            .record(
                &OrderId::from(order_id),
                &IntentId::from(stripe_id),
                amount,
                currency,
            )
            .await
        {
            Ok(_) => {
                if let Err(err) = settlement
                    .store
                    .forget_legacy_refund(&due.get("_id").cloned().unwrap_or_default())
                    .await
                {
                    tracing::warn!(error = %err, "cannot delete a folded refunds_due record");
                }
            }
            Err(err) => {
                tracing::warn!(error = ?err, stripe.id = stripe_id, "cannot fold a refunds_due record; retried at the next start")
            }
        }
    }
}
