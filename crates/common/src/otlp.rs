//! Spans out of the process: OTLP over HTTP (protobuf) to `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), in batches from the SDK's own thread.

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// A tracer provider exporting with OTLP, or `None` when no endpoint is configured:
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is, else `OTEL_EXPORTER_OTLP_ENDPOINT`
/// followed by `/v1/traces` (as the OpenTelemetry specification says).
pub fn provider_from_env(service: &str) -> anyhow::Result<Option<SdkTracerProvider>> {
    let variable = |name| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    let endpoint = variable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
        variable("OTEL_EXPORTER_OTLP_ENDPOINT")
            .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
    });
    endpoint
        .map(|endpoint| provider(&endpoint, service))
        .transpose()
}

/// A tracer provider sending batches of spans to `traces_endpoint` (a full URL).
/// Call inside the Tokio runtime: exports are sent from it.
pub fn provider(traces_endpoint: &str, service: &str) -> anyhow::Result<SdkTracerProvider> {
    let client = ReqwestOnTokio {
        client: reqwest::Client::new(),
        runtime: tokio::runtime::Handle::try_current()
            .context("the span exporter needs the Tokio runtime")?,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(traces_endpoint)
        .build()
        .context("building the OTLP span exporter")?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_owned())
                .build(),
        )
        .build())
}

/// The exporter's HTTP client: the workspace's reqwest, run on the service's runtime
/// (the batch processor calls it from a thread of its own, outside Tokio).
#[derive(Debug)]
struct ReqwestOnTokio {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait]
impl HttpClient for ReqwestOnTokio {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let request = reqwest::Request::try_from(request)?;
        let sent = self.runtime.spawn(async move {
            let response = client.execute(request).await?.error_for_status()?;
            let mut answer = Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            Ok::<_, HttpError>(answer.body(response.bytes().await?)?)
        });
        sent.await?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::Router;
    use axum::http::HeaderMap;
    use axum::routing::post;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spans_reach_an_otlp_receiver_as_protobuf() {
        // An OTLP/HTTP receiver stand-in: records what it is sent.
        let received: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
        let record = received.clone();
        let receiver = Router::new().route(
            "/v1/traces",
            post(move |headers: HeaderMap, body: Bytes| async move {
                let kind = headers["content-type"].to_str().unwrap().to_owned();
                record.lock().unwrap().push((kind, body.len()));
                ""
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, receiver).await });

        let provider = provider(&format!("http://{address}/v1/traces"), "test").unwrap();
        let subscriber =
            tracing_subscriber::registry().with(crate::telemetry::span_layer(&provider, "test"));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("request", route = "/api/things").in_scope(|| {});
        });
        let flushed = provider.clone();
        tokio::task::spawn_blocking(move || flushed.force_flush())
            .await
            .unwrap()
            .unwrap();

        let received = received.lock().unwrap().clone();
        assert_eq!(received.len(), 1, "{received:?}");
        assert_eq!(received[0].0, "application/x-protobuf");
        assert!(received[0].1 > 0);
    }
}
