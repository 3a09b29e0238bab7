//! A running service: its HTTP server and its background tasks, stopped together.

use anyhow::Context;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::health::Readiness;
use crate::http::{HttpServer, with_defaults};
use crate::shutdown::BackgroundTasks;

pub struct Service {
    server: HttpServer,
    router: Router,
    tasks: BackgroundTasks,
}

impl Service {
    /// Binds the listener and puts the shared defaults and health routes around `routes`.
    pub async fn bind(
        addr: std::net::SocketAddr,
        routes: Router,
        readiness: Readiness,
        tasks: BackgroundTasks,
    ) -> anyhow::Result<Self> {
        let server = HttpServer::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        Ok(Self {
            server,
            router: with_defaults(routes.merge(readiness.router())),
            tasks,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.server.local_addr().port()
    }

    /// Serves until `shutdown`, drains requests, then stops the background tasks.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let served = self.server.serve(self.router, shutdown).await;
        self.tasks.stop().await;
        Ok(served?)
    }
}
