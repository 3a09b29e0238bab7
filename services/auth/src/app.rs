use std::sync::Arc;

use anyhow::Context;
use common::auth::bans::BanStore;
use common::auth::{CookiePolicy, Jwt, Sessions, TokenSigner};
use common::bus::Bus;
use common::health::Readiness;
use common::outbox::{OutboxSignal, Relay};
use common::service::{Ready, Service};
use common::shutdown::BackgroundTasks;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domain::lockout::LockRule;
use crate::domain::password::Passwords;
use crate::http;
use crate::limits::AddressLimits;
use crate::state::{AppState, Shared};
use crate::store::{FailureStore, SessionStore, Store, UserStore};

/// The auth service, bound and ready to serve.
pub struct App(Service);

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let passwords = Passwords::new(config.limits.hash_concurrency, config.limits.hash_queue);
        let limits = AddressLimits::new(&config.limits);
        let service = Service::start(config.http.addr, || {
            Self::start(&config, passwords.clone(), limits.clone())
        })
        .await?;
        Ok(Self(service))
    }

    /// Everything that needs NATS and Mongo to answer; retried until they do.
    async fn start(
        config: &Config,
        passwords: Passwords,
        limits: AddressLimits,
    ) -> anyhow::Result<Ready> {
        let db = &common::mongo::open(&config.mongo, "auth")
            .await
            .context("connecting to MongoDB")?;
        let bus = Bus::connect(&config.bus, "auth").await?;
        let outbox = OutboxSignal::default();
        let users = UserStore::new(db, outbox.clone());
        users.ensure_indexes().await.context("creating indexes")?;
        let session_store = SessionStore::new(db);
        session_store
            .ensure_indexes()
            .await
            .context("creating session indexes")?;
        let failures = FailureStore::new(
            db,
            LockRule {
                max: config.limits.lock_failures,
                window: config.limits.lock_window,
            },
        );

        let mut tasks = BackgroundTasks::new();
        let relay = Relay::new(bus.clone(), outbox).watch(users.collection());
        relay
            .ensure_indexes()
            .await
            .context("creating the outbox index")?;
        tasks.push(relay.spawn(tasks.token()));
        // Auth follows its own ban events like every service: one mechanism, one delay.
        let bans = BanStore::new(db).follow(&bus, "auth", &mut tasks).await?;

        let own_key = config.sessions.private_key.public();
        let mut public_keys = vec![own_key];
        public_keys.extend(config.sessions.extra_keys.public_keys.iter().cloned());
        public_keys.dedup();
        let state = AppState::new(Shared {
            store: Store {
                users,
                sessions: session_store,
                failures,
            },
            sessions: Sessions::new(Jwt::new(&public_keys), bans),
            signer: TokenSigner::new(&config.sessions.private_key, config.sessions.access_ttl),
            jwks: Arc::new(public_keys.iter().map(|key| key.jwk()).collect()),
            refresh_ttl: config.sessions.refresh_ttl,
            reset_ttl: config.limits.reset_ttl,
            cookies: CookiePolicy {
                secure: config.cookie_secure,
            },
            passwords,
            limits,
            admins: Arc::new(config.admin_emails.clone()),
        });
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
