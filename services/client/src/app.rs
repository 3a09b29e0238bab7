use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use common::health::Readiness;
use common::http::HttpServer;
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::config::Config;
use crate::http;
use crate::state::AppState;

/// The web client, bound and ready to serve.
pub struct App {
    server: HttpServer,
    router: Router,
    /// `GET /metrics`, on a port the ingress does not reach.
    metrics: Option<HttpServer>,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let state = AppState {
            backend: Backend::new(config.services).context("building the HTTP client")?,
            stripe_key: config.stripe_publishable_key.map(Arc::from),
        };
        // Ready as soon as it serves: each page degrades on its own (a friendly 503 names the
        // service that is down), so no dependency check can take the whole site, error
        // pages included, out of the load balancer.
        let stripe = state.stripe_key.is_some();
        let router = http::router(state).merge(Readiness::default().router());
        let router = http::with_page_defaults(router, stripe, config.trusted_hops);
        let server = HttpServer::bind(config.http.addr)
            .await
            .with_context(|| format!("binding {}", config.http.addr))?;
        let metrics = match config.metrics_addr {
            Some(addr) => Some(
                HttpServer::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr} (METRICS_PORT)"))?,
            ),
            None => None,
        };
        Ok(Self {
            server,
            router,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.server.local_addr().port()
    }

    /// The port of `GET /metrics`, if it is served.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics
            .as_ref()
            .map(|server| server.local_addr().port())
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let pages = self.server.serve(self.router, shutdown.clone());
        match self.metrics {
            Some(metrics) => {
                let metrics = metrics.serve(common::metrics::router(), shutdown);
                tokio::try_join!(pages, metrics)?;
            }
            None => pages.await?,
        }
        Ok(())
    }
}
