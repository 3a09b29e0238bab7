//! A running service: its HTTP server and its background tasks, stopped together.
//!
//! Start-up never gives up on a dependency that is briefly down: the port is bound and
//! served at once (`/healthz` answers, `/readyz` says 503 and why, every other route 503),
//! while the service's initialisation is retried with capped backoff. Kubernetes would
//! restart a crashed pod, but a process that waits is cheaper, and on the local stack
//! nothing else would notice.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::future::Either;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::health::Readiness;
use crate::http::{HttpServer, with_defaults};
use crate::shutdown::BackgroundTasks;

/// What a service's initialisation hands over once its dependencies answer.
pub struct Ready {
    pub routes: Router,
    pub readiness: Readiness,
    pub tasks: BackgroundTasks,
}

/// The first retry of a failed start-up comes after this; the delay doubles up to
/// [`MAX_STARTUP_RETRY_DELAY`].
const FIRST_STARTUP_RETRY_DELAY: Duration = Duration::from_millis(250);
pub const MAX_STARTUP_RETRY_DELAY: Duration = Duration::from_secs(10);

pub struct Service {
    port: u16,
    server: JoinHandle<std::io::Result<()>>,
    stop_serving: CancellationToken,
    tasks: BackgroundTasks,
}

impl Service {
    /// Binds the listener and puts the shared defaults and health routes around `routes`.
    pub async fn bind(
        addr: SocketAddr,
        routes: Router,
        readiness: Readiness,
        tasks: BackgroundTasks,
    ) -> anyhow::Result<Self> {
        let ready = Ready {
            routes,
            readiness,
            tasks,
        };
        let mut ready = Some(ready);
        Self::start(addr, move || {
            let ready = ready.take();
            async move { ready.context("already started") }
        })
        .await
    }

    /// Binds `addr`, serves "starting" answers, and runs `init` until it succeeds (each
    /// failure logged, and reported by `/readyz`); then serves what it returned. Fails only
    /// when the address cannot be bound. `init` must be safe to repeat: whatever a failed
    /// attempt spawned is stopped when its [`BackgroundTasks`] are dropped.
    pub async fn start<F, Fut>(addr: SocketAddr, mut init: F) -> anyhow::Result<Self>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<Ready>>,
    {
        let server = HttpServer::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let port = server.local_addr().port();
        let live = Arc::new(OnceLock::<Router>::new());
        let why_not_ready = Arc::new(Mutex::new("starting".to_owned()));
        let stop_serving = CancellationToken::new();
        let front = front(live.clone(), why_not_ready.clone());
        let server = tokio::spawn(server.serve(front, stop_serving.clone()));

        let mut delay = FIRST_STARTUP_RETRY_DELAY;
        let ready = loop {
            match init().await {
                Ok(ready) => break ready,
                Err(err) => {
                    tracing::warn!(error = format!("{err:#}"), retry_in = ?delay, "cannot start yet; retrying");
                    if let Ok(mut why) = why_not_ready.lock() {
                        *why = format!("starting: {err:#}");
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_STARTUP_RETRY_DELAY);
                }
            }
        };
        let router = with_defaults(
            ready
                .routes
                .merge(ready.readiness.router())
                .merge(crate::metrics::router()),
        );
        // Only this function sets it, once.
        let _ = live.set(router);
        Ok(Self {
            port,
            server,
            stop_serving,
            tasks: ready.tasks,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown`, drains requests, then stops the background tasks.
    pub async fn run_until_stopped(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let served = tokio::select! {
            () = shutdown.cancelled() => {
                self.stop_serving.cancel();
                (&mut self.server).await
            }
            served = &mut self.server => served,
        };
        self.tasks.stop().await;
        crate::telemetry::flush_spans().await;
        Ok(served.context("HTTP server task")??)
    }
}

/// Dispatches to the service's router once it is live; until then answers health checks
/// and refuses the rest with a 503 in the usual error shape.
/// What the listener serves: the live router once it is set, "starting" answers before.
/// A plain service rather than a `Router` around one, which would route every request
/// twice.
fn front(
    live: Arc<OnceLock<Router>>,
    why_not_ready: Arc<Mutex<String>>,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future: Send>
+ Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |request: Request| match live.get() {
        Some(router) => Either::Left(router.clone().oneshot(request)),
        None => {
            let why = why_not_ready
                .lock()
                .map(|why| why.clone())
                .unwrap_or_default();
            Either::Right(std::future::ready(Ok(starting(request.uri().path(), why))))
        }
    })
}

fn starting(path: &str, why: String) -> Response {
    match path {
        "/healthz" => Json(json!({"status": "ok"})).into_response(),
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "starting", "errors": [{"message": why, "field": "startup"}]})),
        )
            .into_response(),
        _ => ApiError::Unavailable("The service is starting; please try again".into())
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::body::Body;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(port: u16, path: &str) -> (u16, serde_json::Value) {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        let status = raw[9..12].parse().unwrap();
        let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default();
        (status, serde_json::from_str(body).unwrap_or_default())
    }

    #[tokio::test]
    async fn start_up_is_retried_while_readiness_says_why() {
        let attempts = Arc::new(AtomicU32::new(0));
        let (allow, allowed) = tokio::sync::watch::channel(false);
        let counter = attempts.clone();
        let starting = tokio::spawn(Service::start("127.0.0.1:0".parse().unwrap(), move || {
            let attempt = counter.fetch_add(1, Ordering::SeqCst);
            let allowed = *allowed.borrow();
            async move {
                anyhow::ensure!(allowed, "mongo down (attempt {attempt})");
                Ok(Ready {
                    routes: Router::new().route("/hello", axum::routing::get(|| async { "hi" })),
                    readiness: Readiness::default(),
                    tasks: BackgroundTasks::new(),
                })
            }
        }));
        // The port is served while start-up fails: find it through the attempts.
        while attempts.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !starting.is_finished(),
            "a failing dependency must not end start-up"
        );
        allow.send(true).unwrap();
        let service = starting.await.unwrap().unwrap();
        assert!(attempts.load(Ordering::SeqCst) >= 3);
        let (status, _) = get(service.port(), "/readyz").await;
        assert_eq!(status, 200);
        let (status, _) = get(service.port(), "/hello").await;
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn before_it_is_live_health_answers_and_everything_else_is_503() {
        let why = Arc::new(Mutex::new("starting: mongo: connection refused".to_owned()));
        let front = front(Arc::new(OnceLock::new()), why);
        let call = |path: &'static str| {
            let front = front.clone();
            async move {
                let response = front
                    .oneshot(Request::get(path).body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                let status = response.status();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                (
                    status,
                    serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
                )
            }
        };
        assert_eq!(call("/healthz").await.0, StatusCode::OK);
        let (status, body) = call("/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body["errors"][0]["message"],
            "starting: mongo: connection refused"
        );
        let (status, body) = call("/api/tickets").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body["errors"][0]["message"].is_string());
    }
}
