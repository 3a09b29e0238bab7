use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use common::bus::Bus;
use common::health::Readiness;
use common::service::{Ready, Service};
use common::shutdown::BackgroundTasks;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::delivery::Postman;
use crate::emails::Links;
use crate::listeners::{self, Notifier};
use crate::store::{self, Store};
use crate::templates::{self, Sources, Templates};
use crate::transport::{self, Mailer};

/// The notifications service: listeners that keep its replicas and send emails, and an
/// HTTP server for health and metrics only.
pub struct App(Service);

impl App {
    /// The service with the transport and templates its config names.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let mailer = transport::from_config(&config)?;
        Self::build_with(config, mailer, templates::embedded()).await
    }

    /// The service sending through `mailer` with the templates `sources` (tests wrap the
    /// real transports, or change a template).
    pub async fn build_with(
        config: Config,
        mailer: Arc<dyn Mailer>,
        sources: Sources,
    ) -> anyhow::Result<Self> {
        let service = Service::start(config.http.addr, || {
            Self::start(&config, mailer.clone(), sources.clone())
        })
        .await?;
        Ok(Self(service))
    }

    /// Everything that needs Mongo and NATS to answer; retried until they do. Redis (the
    /// compiled-template cache) is not waited for: templates compile in the process while
    /// it is away, so neither start-up nor readiness depends on it.
    async fn start(
        config: &Config,
        mailer: Arc<dyn Mailer>,
        sources: Sources,
    ) -> anyhow::Result<Ready> {
        let db = &common::mongo::open(&config.mongo, "notifications")
            .await
            .context("connecting to MongoDB")?;
        let store = Store::new(db);
        store
            .ensure_indexes(store::deliveries_ttl(config.max_event_age))
            .await
            .context("creating indexes")?;
        let templates = Templates::connect(&config.redis, &config.key_prefix, sources)
            .await
            .context("setting up the template cache (REDIS_URL)")?;
        // Told once at start-up, never waited for.
        tokio::spawn({
            let templates = templates.clone();
            async move {
                if let Err(reason) = templates.ping().await {
                    tracing::warn!(
                        reason,
                        "template cache (Redis) unavailable; templates are compiled in the process until it answers"
                    );
                }
            }
        });
        let bus = Bus::connect(&config.bus, listeners::SERVICE).await?;
        let notifier = Notifier {
            postman: Postman {
                store,
                templates,
                mailer,
                from: config.from.clone(),
                max_event_age: config.max_event_age,
            },
            links: Links {
                public_url: config.public_url.clone(),
            },
        };
        let mut tasks = BackgroundTasks::new();
        listeners::spawn_all(&bus, &notifier, &mut tasks).await?;
        let readiness = Readiness::default().mongo(db).nats(&bus);
        Ok(Ready {
            routes: Router::new(),
            readiness,
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
