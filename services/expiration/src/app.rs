use std::sync::Arc;

use axum::Router;
use common::bus::Bus;
use common::health::Readiness;
use common::service::{Ready, Service};
use common::shutdown::BackgroundTasks;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::schedule::Schedule;
use crate::{listeners, worker};

/// The expiration service: listeners keeping the schedule, the worker firing it, and
/// an HTTP server for health only.
pub struct App(Service);

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let service = Service::start(config.http.addr, || Self::start(&config)).await?;
        Ok(Self(service))
    }

    /// Everything that needs Redis and NATS to answer; retried until they do.
    async fn start(config: &Config) -> anyhow::Result<Ready> {
        let schedule = Schedule::connect(&config.redis, &config.key_prefix).await?;
        let bus = Bus::connect(&config.bus, "expiration").await?;
        let wake = Arc::new(Notify::new());
        let mut tasks = BackgroundTasks::new();
        listeners::spawn_all(&bus, &schedule, wake.clone(), &mut tasks).await?;
        tasks.push(worker::spawn(
            schedule.clone(),
            bus.clone(),
            config.lease,
            wake,
            tasks.token(),
        ));

        let redis = schedule.clone();
        let readiness = Readiness::default()
            .check("redis", move || {
                let redis = redis.clone();
                async move { redis.ping().await }
            })
            .nats(&bus);
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
