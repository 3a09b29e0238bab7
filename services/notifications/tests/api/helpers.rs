use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::bus::Bus;
use common::config::HttpConfig;
use common::events::{Envelope, Event, TicketCreated, UserCreated};
use common::redis::RedisConfig;
use notifications::templates::Sources;
use notifications::transport::{Mailer, Smtp};
use notifications::{App, Config, TransportConfig};
use serde_json::Value;
use testkit::{RunningApp, TestDatabase, eventually};

/// Mailpit, among the private test servers: SMTP in, its HTTP API out.
pub struct Mailpit {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub api: String,
}

/// `MAIL_SMTP_URL` and `MAILPIT_URL` (or `TEST_…` in the environment) from the file the
/// test servers' script writes.
pub fn mailpit() -> &'static Mailpit {
    static MAILPIT: OnceLock<Mailpit> = OnceLock::new();
    MAILPIT.get_or_init(|| {
        let smtp = testkit::server_setting("MAIL_SMTP_URL");
        let (host, port) = smtp
            .trim_start_matches("smtp://")
            .rsplit_once(':')
            .expect("MAIL_SMTP_URL is smtp://host:port");
        Mailpit {
            smtp_host: host.to_owned(),
            smtp_port: port.parse().expect("MAIL_SMTP_URL port"),
            api: testkit::server_setting("MAILPIT_URL")
                .trim_end_matches('/')
                .to_owned(),
        }
    })
}

/// A recipient no other test uses (Mailpit is shared).
pub fn recipient() -> String {
    format!("{}@example.com", testkit::unique_name("rcpt"))
}

pub const PUBLIC_URL: &str = "https://gittix.test";

/// A config of its own: database, stream, key prefix; SMTP to Mailpit.
pub fn test_config(db: &TestDatabase) -> Config {
    let mailpit = mailpit();
    Config {
        http: HttpConfig::ephemeral(),
        mongo: db.config(),
        bus: testkit::bus_config("notifications"),
        redis: RedisConfig::plain(&testkit::servers().redis_url),
        key_prefix: testkit::unique_name("notifications"),
        transport: TransportConfig::Smtp {
            host: mailpit.smtp_host.clone(),
            port: mailpit.smtp_port,
        },
        from: "GitTix <no-reply@gittix.dev>".parse().unwrap(),
        public_url: PUBLIC_URL.into(),
        send_timeout: Duration::from_secs(5),
        max_event_age: Duration::from_secs(72 * 3600),
    }
}

/// The real SMTP transport to Mailpit, for tests that wrap it.
pub fn smtp() -> Smtp {
    let mailpit = mailpit();
    Smtp::new(
        &mailpit.smtp_host,
        mailpit.smtp_port,
        Duration::from_secs(5),
    )
}

pub struct TestApp {
    /// The service (`app.port`, `app.stop()`).
    pub running: RunningApp,
    pub config: Config,
    pub bus: Bus,
}

impl std::ops::Deref for TestApp {
    type Target = RunningApp;

    fn deref(&self) -> &RunningApp {
        &self.running
    }
}

pub async fn spawn_app_with(config: Config) -> TestApp {
    common::telemetry::init_for_tests();
    let app = App::build(config.clone())
        .await
        .expect("build notifications");
    running(config, app).await
}

pub async fn spawn_app_with_mailer(
    config: Config,
    mailer: Arc<dyn Mailer>,
    sources: Sources,
) -> TestApp {
    common::telemetry::init_for_tests();
    let app = App::build_with(config.clone(), mailer, sources)
        .await
        .expect("build notifications");
    running(config, app).await
}

async fn running(config: Config, app: App) -> TestApp {
    TestApp {
        running: RunningApp::spawn(app.port(), |stop| app.run_until_stopped(stop)),
        bus: Bus::connect(&config.bus, "test").await.unwrap(),
        config,
    }
}

impl TestApp {
    /// Publishes `data` in a new envelope, which is returned (to publish it again).
    pub async fn publish<E: Event>(&self, data: E) -> Envelope<E> {
        let envelope = Envelope::new(data);
        self.bus.publish(&envelope).await.unwrap();
        envelope
    }

    /// Publishes an envelope again under another message id (the stream would drop the
    /// same one): to the service, a redelivery of the same event.
    pub async fn redeliver<E: Event>(&self, envelope: &Envelope<E>) {
        let body = serde_json::to_vec(envelope).unwrap();
        let msg_id = format!("{}-again-{}", envelope.id, uuid::Uuid::new_v4());
        self.bus
            .publish_raw(E::SUBJECT, &msg_id, body.into())
            .await
            .unwrap();
    }

    pub async fn user(&self, id: &str, email: &str) -> Envelope<UserCreated> {
        self.publish(UserCreated {
            id: id.into(),
            email: email.into(),
            version: 0,
        })
        .await
    }

    pub async fn ticket(&self, id: &str, title: &str, price_cents: i64) {
        self.publish(TicketCreated {
            id: id.into(),
            title: title.into(),
            price_cents,
            user_id: "seller".into(),
            version: 0,
            details: Default::default(),
        })
        .await;
    }

    /// The service's own database.
    pub async fn db(&self) -> mongodb::Database {
        mongodb::Client::with_uri_str(&self.config.mongo.url)
            .await
            .unwrap()
            .database(&self.config.mongo.database)
    }

    /// The delivery record of an email, if any.
    pub async fn delivery(&self, key: &str) -> Option<bson::Document> {
        self.db()
            .await
            .collection::<bson::Document>("deliveries")
            .find_one(bson::doc! {"_id": key})
            .await
            .unwrap()
    }
}

/// A message in Mailpit: its summary and, read once, its parts.
#[derive(Debug, Clone)]
pub struct Mail {
    pub subject: String,
    pub to: Vec<String>,
    pub from: String,
    pub html: String,
    pub text: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Summaries of every message to `to`.
pub async fn summaries(to: &str) -> Vec<Value> {
    let response = client()
        .get(format!("{}/api/v1/search", mailpit().api))
        .query(&[("query", format!("to:\"{to}\"")), ("limit", "200".into())])
        .send()
        .await
        .expect("Mailpit search");
    let body: Value = response.json().await.expect("Mailpit search JSON");
    body["messages"].as_array().cloned().unwrap_or_default()
}

/// Every message to `to`, with their HTML and text.
pub async fn mails_to(to: &str) -> Vec<Mail> {
    let mut mails = Vec::new();
    for summary in summaries(to).await {
        let id = summary["ID"].as_str().unwrap();
        let message: Value = client()
            .get(format!("{}/api/v1/message/{id}", mailpit().api))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        mails.push(Mail {
            subject: message["Subject"].as_str().unwrap_or_default().to_owned(),
            to: message["To"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["Address"].as_str().map(str::to_owned))
                .collect(),
            from: message["From"]["Address"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            html: message["HTML"].as_str().unwrap_or_default().to_owned(),
            text: message["Text"].as_str().unwrap_or_default().to_owned(),
        });
    }
    mails
}

/// Waits for the message to `to` whose subject starts with `subject`.
pub async fn mail(to: &str, subject: &str) -> Mail {
    eventually(
        &format!("an email {subject:?} to {to}"),
        Duration::from_secs(20),
        || async {
            mails_to(to)
                .await
                .into_iter()
                .find(|mail| mail.subject.starts_with(subject))
        },
    )
    .await
}

/// How many messages `to` has received, once the count has held still for two seconds
/// (so that a duplicate sent late, after a retry, would be counted).
pub async fn settled_count(to: &str) -> usize {
    let mut last = summaries(to).await.len();
    let mut still = 0;
    while still < 4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = summaries(to).await.len();
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    last
}
