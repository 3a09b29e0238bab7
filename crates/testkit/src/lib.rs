//! Test support shared by every service's integration tests.
//!
//! Tests run against real servers (NATS with JetStream, Redis, a MongoDB-compatible
//! server) that `make test` starts privately (`scripts/servers.sh`). This crate finds them
//! and gives each test its own database, stream and key prefix, so tests run in
//! parallel and never see each other's data.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // test support: failing loudly is the point

mod events;
mod http;
pub mod openapi;
mod proxy;
mod service_env;
pub mod spans;
pub mod stripe;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

pub use events::{stored_events, stored_messages};
pub use http::{RunningApp, TestClient, send};
pub use proxy::TcpProxy;
pub use service_env::ServiceEnv;

/// The seed of the session key every test app and test client agree on (a test key:
/// it signs nothing anywhere else).
const TEST_KEY_SEED: [u8; 32] = [42; 32];

/// Where the test servers listen.
#[derive(Debug, Clone)]
pub struct TestServers {
    pub mongo_url: String,
    pub nats_url: String,
    pub redis_url: String,
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The running test servers: `TEST_MONGO_URL`, `TEST_NATS_URL`, `TEST_REDIS_URL` from the
/// environment, else `MONGO_URL`, … from the file `scripts/servers.sh` writes for the test stack.
pub fn servers() -> &'static TestServers {
    static SERVERS: OnceLock<TestServers> = OnceLock::new();
    SERVERS.get_or_init(|| TestServers {
        mongo_url: server_setting("MONGO_URL"),
        nats_url: server_setting("NATS_URL"),
        redis_url: server_setting("REDIS_URL"),
    })
}

/// One setting of the private test servers (`MONGO_URL`, `MAIL_SMTP_URL`, …): `TEST_<name>`
/// from the environment, else `<name>` from the file `scripts/servers.sh` writes.
pub fn server_setting(name: &str) -> String {
    static FILE: OnceLock<HashMap<String, String>> = OnceLock::new();
    let path = workspace_root().join(".gittix/test/servers.env");
    let from_file = FILE.get_or_init(|| {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.strip_prefix("export ").unwrap_or(line).split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
            .collect()
    });
    // `TEST_MONGO_URL` in the environment wins over `MONGO_URL` in the file.
    std::env::var(format!("TEST_{name}"))
        .ok()
        .or_else(|| from_file.get(name).cloned())
        .unwrap_or_else(|| {
            panic!(
                "TEST_{name} is not set and {} has no {name}: start the test servers with \
                 `make test-servers` (or run `make test`)",
                path.display()
            )
        })
}

/// A short unique name such as `t_auth_3f2a9c1b7d4e`, valid as a database name, stream
/// name, subject token and key prefix.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t_{prefix}_{}", &id[..12])
}

/// A database of its own for one test, dropped when the test ends (pass or fail).
pub struct TestDatabase {
    pub url: String,
    pub name: String,
}

impl TestDatabase {
    pub fn new(prefix: &str) -> Self {
        Self {
            url: servers().mongo_url.clone(),
            name: unique_name(prefix),
        }
    }

    pub fn config(&self) -> common::config::MongoConfig {
        common::config::MongoConfig {
            url: self.url.clone(),
            database: self.name.clone(),
        }
    }
}

/// A stream and subject prefix of its own for one test. Services of one test that must
/// see each other's events share one `TestBus`.
pub fn bus_config(prefix: &str) -> common::bus::BusConfig {
    let name = unique_name(prefix);
    common::bus::BusConfig::new(servers().nats_url.clone(), name.to_uppercase(), name)
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside async context; the driver needs a runtime of its own.
        let url = self.url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let client = mongodb::Client::with_uri_str(&url).await.ok()?;
                let result =
                    tokio::time::timeout(Duration::from_secs(5), client.database(&name).drop())
                        .await;
                result.ok()?.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("testkit: could not drop test database {}", self.name);
        }
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `within`.
/// Delayed effects (events, expiries) are awaited with this, never with a bare sleep.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for: {what}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// A JSON response: status, headers and parsed body (null when empty or not JSON).
#[derive(Debug)]
pub struct JsonResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

impl JsonResponse {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("read body");
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Self {
            status,
            headers,
            body,
        }
    }

    /// The first error message, for asserting on `{"errors":[{"message":…}]}`.
    pub fn error_message(&self) -> &str {
        self.body["errors"][0]["message"].as_str().unwrap_or("")
    }

    /// The `field` of every error entry, in order.
    pub fn error_fields(&self) -> Vec<&str> {
        self.body["errors"]
            .as_array()
            .map(|errs| errs.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default()
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
}

/// The private key auth signs test sessions with.
pub fn test_private_key() -> common::auth::keys::PrivateKey {
    common::auth::keys::PrivateKey::from_seed(TEST_KEY_SEED)
}

/// The public keys every test app verifies sessions with.
pub fn jwt_config() -> common::config::JwtConfig {
    common::config::JwtConfig {
        public_keys: vec![test_private_key().public()],
    }
}

/// What a test app needs to recognise sessions (no one banned).
pub fn sessions() -> common::auth::Sessions {
    common::auth::Sessions::new(
        common::auth::Jwt::new(&jwt_config().public_keys),
        common::auth::BanList::default(),
    )
}

/// A `Cookie` header value signing in `user_id`, as the auth service would have issued.
pub fn session_cookie(user_id: &str) -> String {
    let token = common::auth::TokenSigner::new(&test_private_key(), Duration::from_secs(3600))
        .issue(user_id, &format!("{user_id}@example.com"), None)
        .expect("sign test token");
    format!("{}={token}", common::auth::SESSION_COOKIE)
}

/// A random user id, shaped like the auth service's (an ObjectId in hex).
pub fn new_user_id() -> String {
    bson::oid::ObjectId::new().to_hex()
}
