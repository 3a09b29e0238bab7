use anyhow::Context;
use axum::Router;
use axum::extract::FromRef;
use common::auth::{CookiePolicy, Jwt};
use common::bus::Bus;
use common::health::Readiness;
use common::http::{HttpServer, with_defaults};
use common::outbox::{OutboxSignal, Relay};
use common::shutdown::BackgroundTasks;
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
pub struct App {
    server: HttpServer,
    router: Router,
    tasks: BackgroundTasks,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let db = common::mongo::connect(&config.mongo, "auth")
            .await
            .context("invalid MONGO_URL")?;
        let bus = Bus::connect(&config.bus, "auth").await?;
        let outbox = OutboxSignal::default();
        let users = UserStore::new(&db, outbox.clone());
        users.ensure_indexes().await.context("creating indexes")?;

        let mut tasks = BackgroundTasks::new();
        tasks.push(
            Relay::new(bus.clone(), outbox)
                .watch(users.collection())
                .spawn(tasks.token()),
        );

        let state = AppState {
            users,
            jwt: Jwt::new(&config.jwt),
            cookies: CookiePolicy {
                secure: config.cookie_secure,
            },
            passwords: Passwords::new(),
        };
        let readiness = Readiness::default().mongo(&db).nats(&bus);
        let router = with_defaults(http::router(state).merge(readiness.router()));
        let server = HttpServer::bind(config.http.addr)
            .await
            .with_context(|| format!("binding {}", config.http.addr))?;
        Ok(Self {
            server,
            router,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.server.local_addr().port()
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let served = self.server.serve(self.router, shutdown).await;
        self.tasks.stop().await;
        Ok(served?)
    }
}
