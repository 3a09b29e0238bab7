use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use common::bus::Bus;
use common::health::Readiness;
use common::service::{Ready, Service};
use common::shutdown::BackgroundTasks;
use mongodb::options::ClientOptions;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::delivery::Postman;
use crate::emails::Links;
use crate::listeners::{self, Notifier};
use crate::store::Store;
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
        let mongo = common::mongo::options(&config.mongo, "notifications")
            .await
            .context("invalid MONGO_URL")?;
        let service = Service::start(config.http.addr, || {
            Self::start(&config, &mongo, mailer.clone(), sources.clone())
        })
        .await?;
        Ok(Self(service))
    }

    /// Everything that needs Mongo, Redis and NATS to answer; retried until they do.
    async fn start(
        config: &Config,
        mongo: &ClientOptions,
        mailer: Arc<dyn Mailer>,
        sources: Sources,
    ) -> anyhow::Result<Ready> {
        let db = &common::mongo::connect(mongo, &config.mongo.database)
            .await
            .context("connecting to MongoDB")?;
        let store = Store::new(db);
        store.ensure_indexes().await.context("creating indexes")?;
        let templates = Templates::connect(&config.redis_url, &config.key_prefix, sources)
            .await
            .context("connecting to Redis")?;
        let bus = Bus::connect(&config.bus, listeners::SERVICE).await?;
        let notifier = Notifier {
            postman: Postman {
                store,
                templates: templates.clone(),
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
        let readiness = Readiness::default()
            .mongo(db)
            .nats(&bus)
            .check("redis", move || {
                let templates = templates.clone();
                async move { templates.ping().await }
            });
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
