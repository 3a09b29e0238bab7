//! The event backbone against a real NATS JetStream server (and the Mongo-compatible
//! server for the outbox): dedupe, redelivery, ordering, shared consumers, dead letters
//! and crash recovery. Every test has its own stream and subject prefix.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bson::doc;
use common::bus::Bus;
use common::events::{Envelope, Event, TicketUpdated, UserCreated};
use common::listener::{self, ListenerOptions, Outcome, VersionCheck};
use common::outbox::{OutboxSignal, PendingEvent, Relay};
use testkit::{TestDatabase, eventually};
use tokio_util::sync::CancellationToken;

async fn test_bus() -> Bus {
    common::telemetry::init_for_tests();
    Bus::connect(&testkit::bus_config("bus"), "test")
        .await
        .unwrap()
}

async fn stored(bus: &Bus, subject: &str) -> Vec<async_nats::jetstream::Message> {
    testkit::stored_messages(bus, subject).await
}

fn user(n: i64) -> UserCreated {
    UserCreated {
        id: format!("user-{n}"),
        email: format!("u{n}@example.com"),
        version: n,
    }
}

fn ticket(version: i64) -> TicketUpdated {
    TicketUpdated {
        id: "ticket-1".into(),
        title: format!("v{version}"),
        price_cents: 1000,
        user_id: "seller".into(),
        order_id: None,
        version,
        details: Default::default(),
        sold: false,
    }
}

#[tokio::test]
async fn a_duplicate_publish_is_stored_once() {
    let bus = test_bus().await;
    let envelope = Envelope::new(user(1));
    bus.publish(&envelope).await.unwrap();
    bus.publish(&envelope).await.unwrap();
    bus.publish(&Envelope::new(user(2))).await.unwrap();
    let messages = stored(&bus, &bus.subject(UserCreated::SUBJECT)).await;
    assert_eq!(messages.len(), 2);
    let first: Envelope<UserCreated> = serde_json::from_slice(&messages[0].payload).unwrap();
    assert_eq!(first, envelope);
}

#[tokio::test]
async fn a_failed_or_panicking_handler_gets_the_event_again() {
    let bus = test_bus().await;
    let stop = CancellationToken::new();
    let attempts = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = attempts.clone();
    listener::spawn(
        &bus,
        "svc",
        ListenerOptions::default(),
        move |event: Envelope<UserCreated>| {
            let seen = seen.clone();
            async move {
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(event.data.id.clone());
                    seen.len()
                };
                match n {
                    1 => Outcome::Retry(Duration::from_millis(50)),
                    2 => panic!("handler bug on the second attempt"),
                    _ => Outcome::Ack,
                }
            }
        },
        stop.clone(),
    )
    .await
    .unwrap();
    bus.publish(&Envelope::new(user(1))).await.unwrap();
    eventually("three attempts", Duration::from_secs(10), || async {
        (attempts.lock().unwrap().len() >= 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        attempts.lock().unwrap().as_slice(),
        ["user-1", "user-1", "user-1"],
        "acked after the third"
    );
    stop.cancel();
}

#[tokio::test]
async fn out_of_order_updates_are_applied_in_version_order() {
    let bus = test_bus().await;
    let stop = CancellationToken::new();
    // A replica that has version 0 and applies updates by the version rule.
    let replica = Arc::new(Mutex::new((0i64, Vec::<String>::new())));
    let state = replica.clone();
    listener::spawn(
        &bus,
        "replica",
        ListenerOptions::default(),
        move |event: Envelope<TicketUpdated>| {
            let state = state.clone();
            async move {
                let mut state = state.lock().unwrap();
                match VersionCheck::of(Some(state.0), event.data.version) {
                    VersionCheck::Apply => {
                        state.0 = event.data.version;
                        state.1.push(event.data.title);
                        Outcome::Ack
                    }
                    other => other.outcome_when_not_applied(),
                }
            }
        },
        stop.clone(),
    )
    .await
    .unwrap();
    let v2 = Envelope::new(ticket(2));
    bus.publish(&Envelope::new(ticket(3))).await.unwrap();
    bus.publish(&v2).await.unwrap();
    bus.publish(&Envelope::new(ticket(1))).await.unwrap();
    // A redelivered old version is a no-op.
    bus.publish(&Envelope {
        id: uuid::Uuid::now_v7(),
        ..v2
    })
    .await
    .unwrap();
    eventually(
        "all three versions applied",
        Duration::from_secs(15),
        || async { (replica.lock().unwrap().0 == 3).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(replica.lock().unwrap().1, ["v1", "v2", "v3"]);
    stop.cancel();
}

/// Publishes `count` events to two replicas sharing a consumer (each on a connection of
/// its own, as two pods have), whose handler takes `takes(event id)`, and asserts that each
/// event was handled once, by one of them (counted when a handling starts), also after
/// `settle` more.
async fn assert_each_handled_once_by_two_replicas(
    options: ListenerOptions,
    count: usize,
    takes: fn(&str) -> Duration,
    settle: Duration,
) {
    let bus = test_bus().await;
    let stop = CancellationToken::new();
    let started = Arc::new(Mutex::new(HashMap::<String, Vec<usize>>::new()));
    for replica in 0..2 {
        let started = started.clone();
        let replica_bus = replica_of(&bus).await;
        listener::spawn(
            &replica_bus,
            "orders",
            options,
            move |event: Envelope<UserCreated>| {
                let id = event.data.id;
                started
                    .lock()
                    .unwrap()
                    .entry(id.clone())
                    .or_default()
                    .push(replica);
                async move {
                    tokio::time::sleep(takes(&id)).await;
                    Outcome::Ack
                }
            },
            stop.clone(),
        )
        .await
        .unwrap();
    }
    for n in 0..count {
        bus.publish(&Envelope::new(user(n as i64))).await.unwrap();
    }
    eventually("every event handled", Duration::from_secs(20), || async {
        (started.lock().unwrap().len() == count).then_some(())
    })
    .await;
    tokio::time::sleep(settle).await;
    let started = started.lock().unwrap();
    let twice: Vec<_> = started.iter().filter(|(_, by)| by.len() != 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    stop.cancel();
}

#[tokio::test]
async fn replicas_sharing_a_consumer_never_both_process_a_message() {
    assert_each_handled_once_by_two_replicas(
        ListenerOptions::default(),
        60,
        |_| Duration::from_millis(5),
        Duration::from_millis(500),
    )
    .await;
}

#[tokio::test]
async fn malformed_rejected_and_exhausted_messages_are_dead_lettered() {
    let bus = test_bus().await;
    let stop = CancellationToken::new();
    let options = ListenerOptions {
        ack_wait: Duration::from_secs(5),
        max_deliver: 3,
        ..ListenerOptions::default()
    };
    let attempts = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let seen = attempts.clone();
    listener::spawn(
        &bus,
        "svc",
        options,
        move |event: Envelope<UserCreated>| {
            let seen = seen.clone();
            async move {
                *seen
                    .lock()
                    .unwrap()
                    .entry(event.data.id.clone())
                    .or_default() += 1;
                match event.data.id.as_str() {
                    "user-1" => Outcome::Reject("user 1 is not welcome".into()),
                    "user-2" => Outcome::Retry(Duration::from_millis(20)),
                    _ => Outcome::Ack,
                }
            }
        },
        stop.clone(),
    )
    .await
    .unwrap();
    bus.publish_raw(UserCreated::SUBJECT, "garbage-1", "{not json".into())
        .await
        .unwrap();
    bus.publish(&Envelope::new(user(1))).await.unwrap();
    bus.publish(&Envelope::new(user(2))).await.unwrap();
    bus.publish(&Envelope::new(user(3))).await.unwrap();

    let dead_subject = bus.dead_letter_subject("svc", UserCreated::SUBJECT);
    let dead = eventually("three dead letters", Duration::from_secs(15), || async {
        let dead = stored(&bus, &dead_subject).await;
        (dead.len() >= 3).then_some(dead)
    })
    .await;
    let reasons: Vec<String> = dead
        .iter()
        .map(|m| {
            m.headers
                .as_ref()
                .and_then(|h| h.get("GitTix-Dead-Reason"))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        })
        .collect();
    assert!(
        reasons[0].starts_with("malformed user.created event"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1], "user 1 is not welcome");
    assert_eq!(reasons[2], "gave up after 3 deliveries");
    assert_eq!(&dead[0].payload[..], b"{not json");
    let attempts = attempts.lock().unwrap();
    assert_eq!(attempts["user-1"], 1);
    assert_eq!(attempts["user-2"], 3);
    assert_eq!(attempts["user-3"], 1);
    stop.cancel();
}

#[tokio::test]
async fn pending_events_left_by_a_crash_are_published_exactly_once_after_restart() {
    let bus = test_bus().await;
    let db = TestDatabase::new("outbox");
    let client = mongodb::Client::with_uri_str(&db.url).await.unwrap();
    let tickets = client
        .database(&db.name)
        .collection::<bson::Document>("tickets");
    // A write that committed its events, then the process died before the relay ran.
    let events: Vec<PendingEvent> = (1..=3).map(|v| PendingEvent::new(ticket(v))).collect();
    tickets
        .insert_one(doc! {
            "_id": "ticket-1",
            "version": 3,
            "pendingEvents": events.iter().map(PendingEvent::to_bson).collect::<Vec<_>>(),
        })
        .await
        .unwrap();
    tickets
        .insert_one(doc! {"_id": "ticket-2", "version": 0, "pendingEvents": []})
        .await
        .unwrap();

    // After the restart two replicas' relays race over the same documents.
    let relays: Vec<Relay> = (0..2)
        .map(|_| Relay::new(bus.clone(), OutboxSignal::default()).watch(&tickets))
        .collect();
    let (a, b) = tokio::join!(relays[0].drain(), relays[1].drain());
    assert!(a.unwrap() + b.unwrap() >= 3);
    assert_eq!(
        relays[0].drain().await.unwrap(),
        0,
        "nothing left to publish"
    );

    let messages = stored(&bus, &bus.subject(TicketUpdated::SUBJECT)).await;
    let versions: Vec<i64> = messages
        .iter()
        .map(|m| {
            serde_json::from_slice::<Envelope<TicketUpdated>>(&m.payload)
                .unwrap()
                .data
                .version
        })
        .collect();
    assert_eq!(versions, [1, 2, 3], "each event once, in version order");
    let doc = tickets
        .find_one(doc! {"_id": "ticket-1"})
        .await
        .unwrap()
        .unwrap();
    assert!(doc.get_array("pendingEvents").unwrap().is_empty());
    assert_eq!(doc.get_i32("version").unwrap(), 3, "other fields untouched");
}

#[tokio::test]
async fn a_running_relay_publishes_right_after_it_is_signalled() {
    let bus = test_bus().await;
    let db = TestDatabase::new("outbox");
    let client = mongodb::Client::with_uri_str(&db.url).await.unwrap();
    let users = client
        .database(&db.name)
        .collection::<bson::Document>("users");
    let signal = OutboxSignal::default();
    let stop = CancellationToken::new();
    // No sweep during the test: only the signal can make it publish.
    Relay::new(bus.clone(), signal.clone())
        .watch(&users)
        .sweep_every(Duration::from_secs(3600))
        .spawn(stop.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;

    let event = PendingEvent::new(user(7));
    users
        .insert_one(doc! {"_id": "u7", "pendingEvents": [event.to_bson()]})
        .await
        .unwrap();
    signal.notify();
    let subject = bus.subject(UserCreated::SUBJECT);
    eventually(
        "the event on the stream",
        Duration::from_secs(10),
        || async { (stored(&bus, &subject).await.len() == 1).then_some(()) },
    )
    .await;
    stop.cancel();
}

#[tokio::test]
async fn a_malformed_pending_event_is_dropped_without_blocking_the_others() {
    let bus = test_bus().await;
    let db = TestDatabase::new("outbox");
    let client = mongodb::Client::with_uri_str(&db.url).await.unwrap();
    let tickets = client
        .database(&db.name)
        .collection::<bson::Document>("tickets");
    let good = PendingEvent::new(ticket(1));
    tickets
        .insert_one(doc! {"_id": "t1", "pendingEvents": [{"not": "an event"}, good.to_bson()]})
        .await
        .unwrap();
    let relay = Relay::new(bus.clone(), OutboxSignal::default()).watch(&tickets);
    relay.drain().await.unwrap();
    let messages = stored(&bus, &bus.subject(TicketUpdated::SUBJECT)).await;
    assert_eq!(messages.len(), 1);
    let doc = tickets.find_one(doc! {"_id": "t1"}).await.unwrap().unwrap();
    assert!(doc.get_array("pendingEvents").unwrap().is_empty());
}

#[tokio::test]
async fn a_restart_with_new_listener_settings_updates_the_durable_consumer() {
    let bus = test_bus().await;
    let start = |ack_wait: u64| {
        let bus = bus.clone();
        async move {
            let stop = CancellationToken::new();
            let options = ListenerOptions {
                ack_wait: Duration::from_secs(ack_wait),
                ..ListenerOptions::default()
            };
            listener::spawn(
                &bus,
                "svc",
                options,
                |_: Envelope<UserCreated>| async { Outcome::Ack },
                stop.clone(),
            )
            .await
            .unwrap();
            stop.cancel();
        }
    };
    start(5).await;
    start(7).await;
    let stream = bus.jetstream().get_stream(bus.stream_name()).await.unwrap();
    let mut consumer = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&listener::durable_name(
            "svc",
            UserCreated::SUBJECT,
        ))
        .await
        .unwrap();
    let config = consumer.info().await.unwrap().config.clone();
    assert_eq!(config.ack_wait, Duration::from_secs(7));
    // The server never drops a message: the listener dead-letters at its own count.
    assert_eq!(config.max_deliver, -1);
}

#[tokio::test]
async fn a_redrive_replays_dead_letters_to_the_service_that_rejected_them_once() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let bus = test_bus().await;
    let fixed = Arc::new(AtomicBool::new(false));
    let handled: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = CancellationToken::new();
    for service in ["buggy", "other"] {
        let fixed = fixed.clone();
        let handled = handled.clone();
        listener::spawn(
            &bus,
            service,
            ListenerOptions::default(),
            move |event: Envelope<UserCreated>| {
                let fixed = fixed.clone();
                let handled = handled.clone();
                async move {
                    if service == "buggy" && !fixed.load(Ordering::SeqCst) {
                        return Outcome::Reject("a bug".into());
                    }
                    handled
                        .lock()
                        .unwrap()
                        .push((service.to_owned(), event.data.id));
                    Outcome::Ack
                }
            },
            stop.clone(),
        )
        .await
        .unwrap();
    }
    bus.publish(&Envelope::new(user(1))).await.unwrap();
    let dead_subject = bus.dead_letter_subject("buggy", UserCreated::SUBJECT);
    eventually("the dead letter", Duration::from_secs(10), || async {
        (stored(&bus, &dead_subject).await.len() == 1).then_some(())
    })
    .await;

    fixed.store(true, Ordering::SeqCst);
    let dry = common::redrive::redrive(&bus, None, true).await.unwrap();
    assert_eq!(dry.total(), 1);
    assert_eq!(
        stored(&bus, &dead_subject).await.len(),
        1,
        "a dry run changes nothing"
    );
    let report = common::redrive::redrive(&bus, None, false).await.unwrap();
    assert_eq!(report.total(), 1, "{report:?}");
    eventually(
        "the buggy service handles it",
        Duration::from_secs(10),
        || async {
            handled
                .lock()
                .unwrap()
                .iter()
                .any(|(service, _)| service == "buggy")
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut handled = handled.lock().unwrap().clone();
    handled.sort();
    assert_eq!(
        handled,
        vec![
            ("buggy".to_owned(), "user-1".to_owned()),
            ("other".to_owned(), "user-1".to_owned())
        ],
        "the other service is not handed the replay"
    );
    assert!(
        stored(&bus, &dead_subject).await.is_empty(),
        "the dead letter is gone"
    );
    let again = common::redrive::redrive(&bus, None, false).await.unwrap();
    assert_eq!(again.total(), 0, "a second redrive finds nothing");
    stop.cancel();
}

/// Found by the fault harness: after a server stopped answering on a connection the
/// relay was waiting on, the relay waited for ever and every later event stayed in its
/// outbox. A pass that outlives its limit is dropped and started again.
#[tokio::test]
async fn a_relay_stuck_on_a_server_that_stopped_answering_starts_over() {
    let bus = test_bus().await;
    let db = TestDatabase::new("outbox");
    let direct = mongodb::Client::with_uri_str(&db.url).await.unwrap();
    let users = direct
        .database(&db.name)
        .collection::<bson::Document>("users");
    let target = db
        .url
        .trim_start_matches("mongodb://")
        .split(['/', '?'])
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let proxy = testkit::TcpProxy::start(target).await;
    let mut options = mongodb::options::ClientOptions::parse(format!("mongodb://{}", proxy.addr()))
        .await
        .unwrap();
    options.direct_connection = Some(true);
    let through_proxy = mongodb::Client::with_options(options).unwrap();
    let relay_users = through_proxy
        .database(&db.name)
        .collection::<bson::Document>("users");
    // Open the relay's connection, then make the server stop answering on it.
    relay_users.find_one(doc! {}).await.unwrap();
    proxy.stall_open_connections();

    let stop = CancellationToken::new();
    Relay::new(bus.clone(), OutboxSignal::default())
        .sweep_every(Duration::from_millis(200))
        .drain_within(Duration::from_secs(2))
        .watch(&relay_users)
        .spawn(stop.clone());
    let event = PendingEvent::new(user(7));
    users
        .insert_one(doc! {"_id": "u7", "version": 0, "pendingEvents": [event.to_bson()]})
        .await
        .unwrap();
    let subject = bus.subject(UserCreated::SUBJECT);
    // Well within what a stalled connection takes to give up by itself (about 20 s here).
    eventually(
        "the event published after the stalled pass",
        Duration::from_secs(8),
        || async { (!stored(&bus, &subject).await.is_empty()).then_some(()) },
    )
    .await;
    stop.cancel();
}

/// A second connection to `bus`'s stream, as another pod of the service would have.
async fn replica_of(bus: &Bus) -> Bus {
    let mut config = testkit::bus_config("unused");
    config.stream = bus.stream_name().to_owned();
    config.subject_prefix = bus.subject("x").trim_end_matches(".x").to_owned();
    Bus::connect(&config, "replica").await.unwrap()
}

/// The chaos harness's finding: a replica SIGKILLed while it held `payment.created` (in
/// its handler or in the batch it had pulled) left the event unacked until the ack wait
/// ran out (30 s), longer than an order's payment grace, so the order expired and the
/// charge was refunded. A message a dead replica held must reach another replica well
/// within the grace (30 s by default).
#[tokio::test]
async fn messages_held_by_a_replica_that_dies_reach_another_replica_soon() {
    let bus = test_bus().await;
    let options = bus.listener_options();
    // Replica A takes the first event and never finishes it; the others wait in its batch.
    let dying = replica_of(&bus).await;
    let taken = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = taken.clone();
    let stop_a = CancellationToken::new();
    let a = listener::spawn(
        &dying,
        "orders",
        options,
        move |event: Envelope<UserCreated>| {
            seen.lock().unwrap().push(event.data.id);
            async {
                tokio::time::sleep(Duration::from_secs(120)).await;
                Outcome::Ack
            }
        },
        stop_a.clone(),
    )
    .await
    .unwrap();
    for n in 0..3 {
        bus.publish(&Envelope::new(user(n))).await.unwrap();
    }
    eventually(
        "replica A holds the first event",
        Duration::from_secs(10),
        || async { (!taken.lock().unwrap().is_empty()).then_some(()) },
    )
    .await;
    // SIGKILL, as far as NATS can tell: no ack, no nak, the connection gone.
    a.abort();
    drop(dying);
    let died = std::time::Instant::now();

    let processed = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = processed.clone();
    let stop_b = CancellationToken::new();
    let survivor = replica_of(&bus).await;
    listener::spawn(
        &survivor,
        "orders",
        options,
        move |event: Envelope<UserCreated>| {
            done.lock().unwrap().push(event.data.id);
            async { Outcome::Ack }
        },
        stop_b.clone(),
    )
    .await
    .unwrap();
    eventually(
        "replica B processed all three",
        Duration::from_secs(40),
        || async { (processed.lock().unwrap().len() >= 3).then_some(()) },
    )
    .await;
    let waited = died.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "events held by a dead replica waited {waited:?}: past half the payment grace"
    );
    stop_a.cancel();
    stop_b.cancel();
}

/// The other side of a short ack wait: a handler slower than it, and the messages pulled
/// behind it, are kept alive (in-progress acks) while their replica lives, so another
/// replica never processes them at the same time.
#[tokio::test]
async fn a_handler_slower_than_the_ack_wait_is_not_redelivered_while_it_runs() {
    let options = ListenerOptions {
        ack_wait: Duration::from_secs(2),
        ..ListenerOptions::default()
    };
    // The first event outlasts the ack wait twice over; seven more wait behind it.
    let takes = |id: &str| match id {
        "user-0" => Duration::from_secs(4),
        _ => Duration::ZERO,
    };
    assert_each_handled_once_by_two_replicas(options, 8, takes, Duration::from_secs(2)).await;
}

/// The review's finding: a backlog of handlers each quicker than the keep-alive period,
/// whose messages wait behind one another longer than the ack wait, must still keep every
/// waiting message alive.
#[tokio::test]
async fn a_backlog_of_quick_handlers_longer_than_the_ack_wait_is_handled_once() {
    let options = ListenerOptions {
        ack_wait: Duration::from_secs(2),
        ..ListenerOptions::default()
    };
    // Twelve events of half a second: a batch of ten waits up to 5 s in one replica.
    let takes = |_: &str| Duration::from_millis(500);
    assert_each_handled_once_by_two_replicas(options, 12, takes, Duration::from_secs(2)).await;
}
