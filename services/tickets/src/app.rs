use anyhow::Context;
use common::auth::bans::BanStore;
use common::auth::{Jwt, Sessions};
use common::bus::Bus;
use common::health::Readiness;
use common::limits::KeyedLimit;
use common::outbox::{OutboxSignal, Relay};
use common::service::{Ready, Service};
use common::shutdown::BackgroundTasks;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::live::{self, Hub};
use crate::state::AppState;
use crate::store::Store;
use crate::{http, listeners};

/// The tickets service: HTTP API, outbox relay and event listeners.
pub struct App {
    service: Service,
    /// Ends the live streams when the service stops: the HTTP server's drain waits for
    /// every open response, and a live stream would never end by itself.
    live_streams: CancellationToken,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let live_streams = CancellationToken::new();
        let service =
            Service::start(config.http.addr, || Self::start(&config, &live_streams)).await?;
        Ok(Self {
            service,
            live_streams,
        })
    }

    /// Everything that needs NATS and Mongo to answer; retried until they do.
    async fn start(config: &Config, live_streams: &CancellationToken) -> anyhow::Result<Ready> {
        let db = &common::mongo::open(&config.mongo, "tickets")
            .await
            .context("connecting to MongoDB")?;
        let bus = Bus::connect(&config.bus, "tickets").await?;
        let outbox = OutboxSignal::default();
        let tickets = Store::new(db, outbox.clone());
        tickets.ensure_indexes().await.context("creating indexes")?;
        let backfilled = tickets
            .backfill_search_fields()
            .await
            .context("writing the search fields of older tickets")?;
        if backfilled > 0 {
            tracing::info!(
                tickets = backfilled,
                "search fields written for older tickets"
            );
        }

        let mut tasks = BackgroundTasks::new();
        let relay = Relay::new(bus.clone(), outbox).watch(tickets.collection());
        relay
            .ensure_indexes()
            .await
            .context("creating the outbox index")?;
        tasks.push(relay.spawn(tasks.token()));
        listeners::spawn_all(&bus, &tickets, &mut tasks).await?;
        let live = Hub::new(config.live_streams_max, live_streams.clone());
        live::spawn_feed(&bus, &live, &mut tasks).await?;
        let bans = BanStore::new(db)
            .follow(&bus, listeners::SERVICE, &mut tasks)
            .await?;

        let state = AppState {
            store: tickets,
            sessions: Sessions::new(Jwt::new(&config.jwt.public_keys), bans),
            listings: KeyedLimit::per_minute(
                config.listings_per_minute,
                "You are listing tickets too fast; please wait a moment",
            ),
            live,
        };
        Ok(Ready {
            routes: http::router(state),
            readiness: Readiness::default().mongo(db).nats(&bus),
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.service.port()
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // The live streams end as the server starts draining, not after.
        let live_streams = self.live_streams.clone();
        let stopping = shutdown.clone();
        tokio::spawn(async move {
            stopping.cancelled().await;
            live_streams.cancel();
        });
        self.service.run_until_stopped(shutdown).await
    }
}
