//! The NATS permission model (common::bus_permissions, infra/nats/permissions.json) on a
//! nats-server of its own, configured as the local stack configures it (scripts/lib.sh
//! `nats_authorization`): every service connects as its own user; what the model allows
//! works, and what it does not is refused by the server itself, not only by our code.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use common::bus::{Bus, BusConfig, NatsCredentials};
use common::bus_permissions::{ADMIN, SERVICES};
use common::config::Secret;
use common::events::{Envelope, Event, TicketCreated, UserPasswordResetRequested};
use common::listener::{self, ListenerOptions, Outcome, durable_name};
use tokio_util::sync::CancellationToken;

const STREAM: &str = "GITTIX";
const PREFIX: &str = "gittix";
const RESET: &str = "gittix.user.password_reset_requested";

/// A nats-server with the stack's users, on a free port, in a folder of its own; stopped
/// and removed when dropped.
struct Server {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        return path.into();
    }
    let cached = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".cache/gittix/bin/nats-server"))
        .filter(|path| path.exists());
    cached.unwrap_or_else(|| "nats-server".into())
}

fn start_server() -> Server {
    let root = testkit::workspace_root();
    let dir = std::env::temp_dir().join(testkit::unique_name("natsperm"));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The users exactly as scripts/servers.sh renders them for the stack.
    let users = Command::new("bash")
        .arg("-c")
        .arg(r#"source "$1/scripts/lib.sh" && nats_authorization "$2" GITTIX gittix"#)
        .arg("render")
        .arg(&root)
        .arg(dir.join("users"))
        .output()
        .unwrap();
    assert!(
        users.status.success(),
        "nats_authorization failed: {}",
        String::from_utf8_lossy(&users.stderr)
    );
    let conf = format!(
        "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\n{}",
        dir.join("js").display(),
        String::from_utf8(users.stdout).unwrap()
    );
    std::fs::write(dir.join("nats.conf"), conf).unwrap();
    let binary = nats_server_binary();
    let child = Command::new(&binary)
        .arg("-c")
        .arg(dir.join("nats.conf"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("nats.log")).unwrap())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run {} ({err}): run scripts/install.sh, or set NATS_SERVER_BIN",
                binary.display()
            )
        });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nats-server did not start; see {}",
            dir.join("nats.log").display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        child,
        url: format!("nats://127.0.0.1:{port}"),
        dir,
    }
}

impl Server {
    fn password(&self, user: &str) -> String {
        std::fs::read_to_string(self.dir.join("users").join(user))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn config(&self, user: &str) -> BusConfig {
        BusConfig {
            credentials: Some(NatsCredentials {
                user: None,
                password: Secret::new(self.password(user)),
            }),
            ..BusConfig::new(self.url.clone(), STREAM.into(), PREFIX.into())
        }
    }

    async fn bus(&self, service: &str) -> Bus {
        tokio::time::timeout(
            Duration::from_secs(15),
            Bus::connect(&self.config(service), service),
        )
        .await
        .unwrap_or_else(|_| panic!("{service} could not connect"))
        .unwrap()
    }
}

/// The bus's JetStream with a short timeout: a refused request is never answered.
fn impatient(bus: &Bus) -> jetstream::Context {
    let mut js = bus.jetstream().clone();
    js.set_timeout(Duration::from_millis(1500));
    js
}

async fn stored_count(admin: &Bus) -> u64 {
    let mut stream = admin.jetstream().get_stream(STREAM).await.unwrap();
    stream.info().await.unwrap().state.messages
}

fn ticket() -> Envelope<TicketCreated> {
    Envelope::new(TicketCreated {
        id: "t1".into(),
        title: "Show".into(),
        price_cents: 1000,
        user_id: "u1".into(),
        version: 0,
        details: Default::default(),
    })
}

fn reset() -> Envelope<UserPasswordResetRequested> {
    Envelope::new(UserPasswordResetRequested {
        user_id: "u1".into(),
        token: "secret-token".into(),
        expires_at: chrono::Utc::now(),
        email: Some("u1@example.com".into()),
    })
}

#[tokio::test]
async fn each_service_may_do_what_the_model_says_and_nothing_else() {
    common::telemetry::init_for_tests();
    let server = start_server();
    // A service creates the stream when it is missing.
    let tickets = server.bus("tickets").await;
    let orders = server.bus("orders").await;
    let auth = server.bus("auth").await;
    let notifications = server.bus("notifications").await;
    let admin = server.bus(ADMIN).await;

    // Allowed: tickets publishes ticket.created, orders consumes it.
    let stop = CancellationToken::new();
    let (seen, mut received) = tokio::sync::mpsc::unbounded_channel();
    listener::spawn(
        &orders,
        "orders",
        ListenerOptions::default(),
        move |event: Envelope<TicketCreated>| {
            let seen = seen.clone();
            async move {
                seen.send(event.data.id).unwrap();
                Outcome::Ack
            }
        },
        stop.clone(),
    )
    .await
    .unwrap();
    tickets.publish(&ticket()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), received.recv()).await;
    assert_eq!(
        got.unwrap().as_deref(),
        Some("t1"),
        "orders got ticket.created"
    );

    // Allowed: auth publishes a reset, notifications (alone) consumes it.
    auth.publish(&reset()).await.unwrap();
    let (seen, mut resets) = tokio::sync::mpsc::unbounded_channel();
    listener::spawn(
        &notifications,
        "notifications",
        ListenerOptions::default(),
        move |event: Envelope<UserPasswordResetRequested>| {
            let seen = seen.clone();
            async move {
                seen.send(event.data.token).unwrap();
                Outcome::Ack
            }
        },
        stop.clone(),
    )
    .await
    .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), resets.recv()).await;
    assert_eq!(got.unwrap().as_deref(), Some("secret-token"));
    let stored = stored_count(&admin).await;
    assert_eq!(stored, 2);

    // Refused by our code before NATS: tickets may not publish payment.created.
    let err = tickets
        .publish_raw("payment.created", "forged", "{}".into())
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("tickets may not publish payment.created"),
        "{err:#}"
    );
    // Refused by the server: the same publishes, past our code, are never stored.
    let js = impatient(&tickets);
    for subject in [
        "gittix.payment.created",
        "gittix.order.completed",
        "gittix.dead.orders.ticket.created",
        RESET,
    ] {
        let ack = match js.publish(subject, "{}".into()).await {
            Ok(ack) => ack.await.map(|_| ()),
            Err(err) => Err(err),
        };
        assert!(ack.is_err(), "tickets could publish {subject}");
    }
    assert_eq!(
        stored_count(&admin).await,
        stored,
        "a refused publish was stored"
    );

    // Nobody but notifications can read the reset subject: not with a durable named after
    // the reset, not with one of its own consumers' names, not with an ephemeral one, and
    // not by reading the stored message by sequence.
    let refusals = SERVICES
        .iter()
        .filter(|routes| routes.service != "notifications")
        .map(|routes| async {
            let service = routes.service;
            let bus = server.bus(service).await;
            let js = impatient(&bus);
            let own = routes
                .consumes
                .first()
                .map(|subject| durable_name(service, subject));
            let names = [
                Some(durable_name(service, UserPasswordResetRequested::SUBJECT)),
                own,
                None,
            ];
            for name in names {
                let created = js
                    .create_consumer_on_stream(
                        pull::Config {
                            durable_name: name.clone(),
                            filter_subject: RESET.into(),
                            ..Default::default()
                        },
                        STREAM,
                    )
                    .await;
                assert!(
                    created.is_err(),
                    "{service} created a consumer ({name:?}) on the reset subject"
                );
            }
            let err = bus
                .check_consumes(service, UserPasswordResetRequested::SUBJECT)
                .unwrap_err();
            assert!(err.to_string().contains("may not consume"), "{err}");
            let stream = js.get_stream_no_info(STREAM).await.unwrap();
            assert!(
                stream.get_raw_message(2).await.is_err(),
                "{service} read a message by sequence"
            );
        });
    futures::future::join_all(refusals).await;

    // Nor can anyone listen in on another user's replies (pulled messages come there).
    let (events, mut refused) = tokio::sync::mpsc::unbounded_channel();
    let snoop = async_nats::ConnectOptions::new()
        .user_and_password("tickets".into(), server.password("tickets"))
        .event_callback(move |event| {
            let events = events.clone();
            async move {
                let _ = events.send(event.to_string());
            }
        })
        .connect(&server.url)
        .await
        .unwrap();
    let _sub = snoop.subscribe("_INBOX_notifications.>").await.unwrap();
    snoop.flush().await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match refused.recv().await {
                Some(event) if event.to_lowercase().contains("permissions violation") => {
                    return event;
                }
                Some(_) => {}
                None => panic!("the connection's events ended"),
            }
        }
    })
    .await
    .expect("subscribing to another service's inbox was not refused");
    assert!(event.contains("_INBOX_notifications"), "{event}");

    // A wrong password does not connect at all.
    let wrong = async_nats::ConnectOptions::new()
        .user_and_password("tickets".into(), "guess".into())
        .connect(&server.url)
        .await;
    assert!(wrong.is_err(), "a wrong password connected");
    stop.cancel();
}

/// Any service may create the stream when it is missing, so a compromised one could create
/// it first, to republish the reset tokens to its own inbox. Every service, auth (which
/// publishes the tokens) first, must then refuse to use that stream.
#[tokio::test]
async fn services_refuse_a_stream_created_to_copy_events_elsewhere() {
    common::telemetry::init_for_tests();
    let server = start_server();
    let tickets = async_nats::ConnectOptions::new()
        .user_and_password("tickets".into(), server.password("tickets"))
        .custom_inbox_prefix(common::bus_permissions::inbox_prefix("tickets"))
        .connect(&server.url)
        .await
        .unwrap();
    let created = jetstream::new(tickets)
        .create_stream(jetstream::stream::Config {
            name: STREAM.into(),
            subjects: vec![format!("{PREFIX}.>")],
            republish: Some(jetstream::stream::Republish {
                source: format!("{PREFIX}.user.password_reset_requested"),
                destination: "_INBOX_tickets.stolen".into(),
                headers_only: false,
            }),
            ..Default::default()
        })
        .await;
    assert!(created.is_ok(), "the server refused it: {created:?}");
    let refused = tokio::time::timeout(
        Duration::from_secs(15),
        Bus::connect(&server.config("auth"), "auth"),
    )
    .await
    .unwrap()
    .err()
    .expect("auth used a stream that republishes the reset tokens");
    assert!(
        format!("{refused:#}").contains("republishes"),
        "{refused:#}"
    );
}
