//! `GET /healthz` (the process answers) and `GET /readyz` (its dependencies answer).
//!
//! Kubernetes restarts a pod whose liveness fails and stops routing to one whose
//! readiness fails, so readiness checks every dependency and liveness checks nothing.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use serde_json::json;

type CheckFn = dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync;

/// The named dependency checks behind `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Arc<CheckFn>)>,
}

impl Readiness {
    /// A check returns `Err(reason)` when its dependency cannot be used.
    pub fn check<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name, Arc::new(move || Box::pin(check()))));
        self
    }

    /// Adds the MongoDB ping.
    pub fn mongo(self, db: &mongodb::Database) -> Self {
        let db = db.clone();
        self.check("mongo", move || {
            let db = db.clone();
            async move { crate::mongo::ping(&db).await }
        })
    }

    /// Adds the NATS connection and stream check.
    pub fn nats(self, bus: &crate::bus::Bus) -> Self {
        let bus = bus.clone();
        self.check("nats", move || {
            let bus = bus.clone();
            async move { bus.check().await }
        })
    }

    /// Runs every check concurrently, each bounded so a hung dependency cannot hang the probe.
    pub async fn run(&self) -> Vec<(&'static str, Result<(), String>)> {
        let runs = self.checks.iter().map(|(name, check)| async move {
            let result = match tokio::time::timeout(Duration::from_secs(2), check()).await {
                Ok(result) => result,
                Err(_) => Err(format!("{name}: timed out")),
            };
            (*name, result)
        });
        futures::future::join_all(runs).await
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .route("/readyz", get(readyz).with_state(self))
    }
}

async fn readyz(State(readiness): State<Readiness>) -> Response {
    let results = readiness.run().await;
    let failures: Vec<_> = results
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|reason| (name, reason)))
        .collect();
    if failures.is_empty() {
        let checks: serde_json::Map<_, _> = results
            .iter()
            .map(|(name, _)| ((*name).to_owned(), json!("ok")))
            .collect();
        return Json(json!({"status": "ready", "checks": checks})).into_response();
    }
    for (name, reason) in &failures {
        tracing::warn!(dependency = name, reason, "not ready");
    }
    let errors: Vec<_> = failures
        .iter()
        .map(|(name, reason)| json!({"message": reason, "field": name}))
        .collect();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "unavailable", "errors": errors})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get_status(router: Router, path: &str) -> (StatusCode, serde_json::Value) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn ready_when_every_check_passes() {
        let router = Readiness::default()
            .check("db", || async { Ok(()) })
            .router();
        let (status, body) = get_status(router, "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["checks"]["db"], "ok");
    }

    #[tokio::test]
    async fn unavailable_names_the_failing_dependency() {
        let router = Readiness::default()
            .check("db", || async { Ok(()) })
            .check("bus", || async {
                Err("bus: connection refused".to_owned())
            })
            .router();
        let (status, body) = get_status(router.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["errors"][0]["field"], "bus");
        let (status, _) = get_status(router, "/healthz").await;
        assert_eq!(status, StatusCode::OK);
    }
}
