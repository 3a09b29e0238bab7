use anyhow::Context;
use axum::extract::FromRef;
use common::auth::{CookiePolicy, Jwt};
use common::bus::Bus;
use common::health::Readiness;
use common::outbox::{OutboxSignal, Relay};
use common::service::{Ready, Service};
use common::shutdown::BackgroundTasks;
use mongodb::options::ClientOptions;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domain::password::Passwords;
use crate::http;
use crate::store::UserStore;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub users: UserStore,
    pub jwt: Jwt,
    pub cookies: CookiePolicy,
    pub passwords: Passwords,
}

impl FromRef<AppState> for Jwt {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
}

/// The auth service, bound and ready to serve.
pub struct App(Service);

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let mongo = common::mongo::options(&config.mongo, "auth")
            .await
            .context("invalid MONGO_URL")?;
        let passwords = Passwords::new();
        let service = Service::start(config.http.addr, || {
            Self::start(&config, &mongo, passwords.clone())
        })
        .await?;
        Ok(Self(service))
    }

    /// Everything that needs NATS and Mongo to answer; retried until they do.
    async fn start(
        config: &Config,
        mongo: &ClientOptions,
        passwords: Passwords,
    ) -> anyhow::Result<Ready> {
        let db = &common::mongo::connect(mongo, &config.mongo.database)
            .await
            .context("connecting to MongoDB")?;
        let bus = Bus::connect(&config.bus, "auth").await?;
        let outbox = OutboxSignal::default();
        let users = UserStore::new(db, outbox.clone());
        users.ensure_indexes().await.context("creating indexes")?;

        let mut tasks = BackgroundTasks::new();
        let relay = Relay::new(bus.clone(), outbox).watch(users.collection());
        relay
            .ensure_indexes()
            .await
            .context("creating the outbox index")?;
        tasks.push(relay.spawn(tasks.token()));

        let state = AppState {
            users,
            jwt: Jwt::new(&config.jwt),
            cookies: CookiePolicy {
                secure: config.cookie_secure,
            },
            passwords,
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
