//! The HTTP client every service's tests call their service with, and the service itself
//! running in the test's process.

use std::future::Future;
use std::ops::Deref;
use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{JsonResponse, session_cookie};

/// A browser on one service under test: requests go to `address` + path, the cookies the
/// service sets are kept (each client has a jar of its own), redirects are not followed,
/// and every answer is a [`JsonResponse`].
#[derive(Debug, Clone)]
pub struct TestClient {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    http: reqwest::Client,
}

impl TestClient {
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("build the test HTTP client"),
        }
    }

    /// Another browser on the same service: an empty cookie jar of its own.
    pub fn browser(&self) -> Self {
        Self::new(self.address.clone())
    }

    /// The same browser (its cookies: they do not depend on the port) at another address,
    /// such as another process of the service.
    pub fn at(&self, address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            http: self.http.clone(),
        }
    }

    /// `method path`, signed in as `user` (a session cookie as auth issues it, sent instead
    /// of the jar's) or as the jar has it (`None`), with `body` as JSON.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: Option<Value>,
    ) -> JsonResponse {
        let mut request = self.builder(method, path);
        if let Some(user) = user {
            request = request.header(reqwest::header::COOKIE, session_cookie(user));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        send(request).await
    }

    pub async fn get(&self, path: &str) -> JsonResponse {
        self.request(Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> JsonResponse {
        self.request(Method::POST, path, None, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> JsonResponse {
        self.request(Method::PUT, path, None, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> JsonResponse {
        self.request(Method::DELETE, path, None, None).await
    }

    /// A request to build further (headers, a raw body), through this client's jar;
    /// [`send`] sends it.
    pub fn builder(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.address))
    }
}

/// Sends a request and reads the answer.
pub async fn send(request: RequestBuilder) -> JsonResponse {
    JsonResponse::from(request.send().await.expect("request")).await
}

/// A service under test running in the test's process, with a client pointed at it;
/// stopped when dropped.
pub struct RunningApp {
    pub http: TestClient,
    pub port: u16,
    stop: CancellationToken,
}

impl RunningApp {
    /// Runs an app listening on `port`: `run` is handed the token that stops it, as
    /// `App::run_until_stopped` takes it.
    pub fn spawn<F>(port: u16, run: impl FnOnce(CancellationToken) -> F) -> Self
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let stop = CancellationToken::new();
        tokio::spawn(run(stop.clone()));
        Self {
            http: TestClient::new(format!("http://127.0.0.1:{port}")),
            port,
            stop,
        }
    }

    /// Stops the app and gives its background tasks a moment to finish (a restart, or
    /// a crash of this instance, in the tests that start another).
    pub async fn stop(&self) {
        self.stop.cancel();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

impl Deref for RunningApp {
    type Target = TestClient;

    fn deref(&self) -> &TestClient {
        &self.http
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
