use std::sync::Mutex;
use std::time::Duration;

use client::{App, Config, ServiceUrls};
use common::config::{HttpConfig, Secret};
use payments::GatewayConfig;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use testkit::{TestDatabase, eventually};
use tokio_util::sync::CancellationToken;

/// The admin of the test stack's auth (`ADMIN_EMAILS`).
pub const ADMIN_EMAIL: &str = "admin@example.com";

/// A service the test wants down: its URL points at a closed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    Auth,
    Tickets,
    Orders,
    Payments,
}

pub struct Options {
    pub down: Vec<Down>,
    pub stripe_key: Option<String>,
    /// The orders service's reservation window.
    pub window: Duration,
    /// The payments service's gateway: simulated, or Stripe at a stand-in's URL.
    pub gateway: GatewayConfig,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            down: Vec::new(),
            stripe_key: None,
            window: Duration::from_secs(900),
            gateway: GatewayConfig::Simulated,
        }
    }
}

/// The client in front of the services, all on ports of their own; stopped on drop.
pub struct TestApp {
    pub address: String,
    /// The client's `GET /metrics`, on its own port.
    pub metrics: String,
    /// The services' own addresses, for tests that call their APIs directly.
    pub services: ServiceUrls,
    /// The event stream the services share.
    pub bus: common::bus::BusConfig,
    _dbs: Vec<TestDatabase>,
    stop: CancellationToken,
}

/// The real payments service's gateway when it calls a Stripe stand-in at `api_base`.
pub fn stripe_gateway(api_base: String) -> GatewayConfig {
    GatewayConfig::Stripe {
        secret_key: Secret::new("sk_test_standin"),
        webhook_secret: Secret::new("whsec_test_standin"),
        api_base: Some(api_base),
        timeout: Duration::from_secs(5),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    // Spans are recorded: the trace test follows one order through every service.
    testkit::spans::install();
    let stop = CancellationToken::new();
    let bus_config = testkit::bus_config("client");
    let mut dbs = Vec::new();
    let up = |service| !options.down.contains(&service);

    let auth = if up(Down::Auth) {
        let db = TestDatabase::new("client_auth");
        let mut config = auth::Config::new(
            HttpConfig::ephemeral(),
            auth::SessionConfig::new(testkit::test_private_key()),
            db.config(),
            bus_config.clone(),
        );
        config.cookie_secure = false;
        config.admin_emails = vec![ADMIN_EMAIL.to_owned()];
        let app = auth::App::build(config).await.expect("build auth");
        dbs.push(db);
        serve(app.port(), app.run_until_stopped(stop.clone()))
    } else {
        closed_port_url().await
    };

    let tickets = if up(Down::Tickets) {
        let db = TestDatabase::new("client_tickets");
        let app = tickets::App::build(tickets::Config {
            http: HttpConfig::ephemeral(),
            jwt: testkit::jwt_config(),
            mongo: db.config(),
            bus: bus_config.clone(),
            listings_per_minute: 1_000_000,
            live_streams_max: 1000,
        })
        .await
        .expect("build tickets");
        dbs.push(db);
        serve(app.port(), app.run_until_stopped(stop.clone()))
    } else {
        closed_port_url().await
    };

    let orders = if up(Down::Orders) {
        let db = TestDatabase::new("client_orders");
        let app = orders::App::build(orders::Config {
            http: HttpConfig::ephemeral(),
            jwt: testkit::jwt_config(),
            mongo: db.config(),
            bus: bus_config.clone(),
            expiration_window: options.window,
            payment_grace: Duration::from_millis(300),
            currency: "usd".to_owned(),
            max_active_orders: 1_000,
        })
        .await
        .expect("build orders");
        dbs.push(db);
        serve(app.port(), app.run_until_stopped(stop.clone()))
    } else {
        closed_port_url().await
    };

    let payments = if up(Down::Payments) {
        let db = TestDatabase::new("client_payments");
        let app = payments::App::build(payments::Config {
            http: HttpConfig::ephemeral(),
            jwt: testkit::jwt_config(),
            mongo: db.config(),
            bus: bus_config.clone(),
            gateway: options.gateway,
            currency: "usd".into(),
        })
        .await
        .expect("build payments");
        dbs.push(db);
        serve(app.port(), app.run_until_stopped(stop.clone()))
    } else {
        closed_port_url().await
    };

    // Expiration has no API for the client; it runs so the stack is whole.
    let expiration = expiration::App::build(expiration::Config {
        http: HttpConfig::ephemeral(),
        bus: bus_config.clone(),
        redis: common::redis::RedisConfig::plain(&testkit::servers().redis_url),
        key_prefix: testkit::unique_name("client_expiration"),
        lease: Duration::from_secs(10),
    })
    .await
    .expect("build expiration");
    serve(
        expiration.port(),
        expiration.run_until_stopped(stop.clone()),
    );

    let services = ServiceUrls {
        auth: auth.parse().unwrap(),
        tickets: tickets.parse().unwrap(),
        orders: orders.parse().unwrap(),
        payments: payments.parse().unwrap(),
    };
    let app = App::build(Config {
        http: HttpConfig::ephemeral(),
        services: services.clone(),
        stripe_publishable_key: options.stripe_key,
        trusted_hops: 1,
        metrics_addr: Some(HttpConfig::ephemeral().addr),
    })
    .await
    .expect("build client");
    let metrics = format!(
        "http://127.0.0.1:{}/metrics",
        app.metrics_port().expect("the metrics port")
    );
    let address = serve(app.port(), app.run_until_stopped(stop.clone()));
    TestApp {
        address,
        metrics,
        services,
        bus: bus_config,
        _dbs: dbs,
        stop,
    }
}

fn serve<F>(port: u16, run: F) -> String
where
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    tokio::spawn(run);
    format!("http://127.0.0.1:{port}")
}

/// A URL on which nothing listens.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

impl TestApp {
    /// A browser of its own: its own session cookie, no redirects followed.
    pub fn browser(&self) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: self.address.clone(),
            session: Mutex::new(None),
        }
    }

    /// A browser signed up (and so signed in) as a fresh user; returns it and the email.
    pub async fn signed_in_browser(&self) -> (Browser, String) {
        let browser = self.browser();
        let email = format!("{}@example.com", testkit::unique_name("user"));
        let page = browser
            .post(
                "/auth/signup",
                &[("email", &email), ("password", "correct horse battery")],
            )
            .await;
        assert_eq!(page.status, 303, "signup failed: {}", page.body);
        (browser, email)
    }
}

/// What a browser got back.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// Asserts that the response clears each of these cookies.
    #[track_caller]
    pub fn assert_clears_cookies(&self, names: &[&str]) {
        let cookies = self.set_cookies();
        for name in names {
            assert!(
                cookies
                    .iter()
                    .any(|c| c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0")),
                "{name} not cleared: {cookies:?}"
            );
        }
    }

    /// Asserts that the body contains each piece of text.
    #[track_caller]
    pub fn assert_has(&self, texts: &[&str]) {
        for text in texts {
            assert!(
                self.body.contains(text),
                "page ({}) lacks {text:?}:\n{}",
                self.status,
                self.body
            );
        }
    }

    #[track_caller]
    pub fn assert_lacks(&self, texts: &[&str]) {
        for text in texts {
            assert!(
                !self.body.contains(text),
                "page ({}) has {text:?}:\n{}",
                self.status,
                self.body
            );
        }
    }

    /// The path of a 303 to `/<prefix>/<id>`: the id.
    #[track_caller]
    pub fn redirect_id(&self, prefix: &str) -> String {
        assert_eq!(self.status, 303, "expected a redirect:\n{}", self.body);
        self.location()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("redirect to {} is not under {prefix}", self.location()))
            .trim_start_matches('/')
            .split(['?', '/'])
            .next()
            .unwrap()
            .to_owned()
    }
}

/// A browser that keeps the `session` cookie the pages set, and follows nothing by itself.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: Mutex<Option<String>>,
}

impl Browser {
    pub fn session(&self) -> Option<String> {
        self.session.lock().unwrap().clone()
    }

    pub fn set_session(&self, token: Option<&str>) {
        *self.session.lock().unwrap() = token.map(str::to_owned);
    }

    pub async fn get(&self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// Follows a redirect.
    pub async fn follow(&self, page: &Page) -> Page {
        assert_eq!(page.status, 303, "not a redirect:\n{}", page.body);
        self.get(page.location()).await
    }

    async fn send(&self, mut request: reqwest::RequestBuilder) -> Page {
        // As a browser on our own pages says of every request it sends.
        request = request.header("sec-fetch-site", "same-origin");
        if let Some(token) = self.session() {
            request = request.header("cookie", format!("session={token}"));
        }
        let response = request.send().await.expect("request");
        let page = Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap_or_default(),
        };
        for cookie in page.set_cookies() {
            let Some(value) = cookie
                .split(';')
                .next()
                .and_then(|pair| pair.trim().strip_prefix("session="))
            else {
                continue;
            };
            let cleared = value.is_empty() || cookie.contains("Max-Age=0");
            self.set_session((!cleared).then_some(value));
        }
        page
    }

    /// Lists a ticket through the sell form; returns its id.
    pub async fn sell(&self, title: &str, price: &str) -> String {
        let page = self
            .post("/tickets/new", &[("title", title), ("price", price)])
            .await;
        page.redirect_id("/tickets")
    }

    /// Buys through the Purchase button; returns the order id. Orders learns of a new
    /// ticket through an event, so the first tries may be told to try again in a moment.
    pub async fn buy(&self, ticket_id: &str) -> String {
        let path = format!("/tickets/{ticket_id}/purchase");
        let page = eventually(
            "orders to know the ticket",
            Duration::from_secs(20),
            || async {
                let page = self.post(&path, &[]).await;
                (page.status == 303).then_some(page)
            },
        )
        .await;
        page.redirect_id("/orders")
    }
}

/// Polls a page until `ready` holds.
pub async fn page_eventually(
    browser: &Browser,
    path: &str,
    what: &str,
    ready: impl Fn(&Page) -> bool,
) -> Page {
    eventually(what, Duration::from_secs(20), || async {
        let page = browser.get(path).await;
        ready(&page).then_some(page)
    })
    .await
}
