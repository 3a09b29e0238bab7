//! `GET /api/tickets/{id}/events`: a ticket's availability as Server-Sent Events.

use std::time::{Duration, Instant};

use common::bus::BusConfig;
use common::events::{OrderCancelled, OrderCreated, OrderTicket, OrderTicketRef};
use reqwest::Method;
use serde_json::Value;
use testkit::{TestClient, TestDatabase, new_user_id};
use tickets::{App, Config};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::{spawn_app, test_config};

/// One message of an event stream.
#[derive(Debug, Default)]
struct Message {
    event: String,
    id: String,
    data: Value,
}

/// An open event stream, read message by message (comments skipped).
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(address: &str, id: &str, last_event_id: Option<&str>) -> Self {
        let mut request = reqwest::Client::new().get(format!("{address}/api/tickets/{id}/events"));
        if let Some(last) = last_event_id {
            request = request.header("last-event-id", last);
        }
        let response = request.send().await.expect("open the stream");
        assert_eq!(response.status(), 200);
        let headers = response.headers();
        assert_eq!(headers["content-type"], "text/event-stream");
        assert_eq!(headers["x-accel-buffering"], "no");
        assert_eq!(headers["cache-control"], "no-cache");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next message; `None` when the stream ended.
    async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut message = Message::default();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        message.event = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("id:") {
                        message.id = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                message.data = serde_json::from_str(&data).expect("JSON data");
                return Some(message);
            }
            let chunk = self.response.chunk().await.expect("read the stream")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next message within `within`, or a failure saying what was awaited.
    async fn expect(&mut self, what: &str, within: Duration) -> Message {
        tokio::time::timeout(within, self.next())
            .await
            .unwrap_or_else(|_| panic!("no {what} within {within:?}"))
            .unwrap_or_else(|| panic!("the stream ended before {what}"))
    }
}

fn created(order: &str, ticket: &str) -> OrderCreated {
    OrderCreated {
        id: order.to_owned(),
        user_id: new_user_id(),
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(15),
        ticket: OrderTicket {
            id: ticket.to_owned(),
            price_cents: 2000,
        },
        version: 0,
    }
}

fn cancelled(order: &str, ticket: &str) -> OrderCancelled {
    OrderCancelled {
        id: order.to_owned(),
        ticket: OrderTicketRef {
            id: ticket.to_owned(),
        },
        version: 1,
        reason: None,
    }
}

#[tokio::test]
async fn the_stream_starts_with_the_state_and_delivers_a_reservation_within_a_second() {
    let app = spawn_app().await;
    let (_, id) = app.listed_ticket().await;
    let mut stream = EventStream::open(&app.address, &id, None).await;
    let first = stream
        .expect("the current state", Duration::from_secs(5))
        .await;
    assert_eq!(first.event, "state");
    assert_eq!(first.id, "0");
    assert_eq!(
        first.data,
        serde_json::json!({"id": id, "status": "available", "version": 0})
    );

    let published = Instant::now();
    app.publish(created("o1", &id)).await;
    let reserved = stream
        .expect("the reservation", Duration::from_secs(1))
        .await;
    let took = published.elapsed();
    assert_eq!(reserved.event, "update");
    assert_eq!(reserved.id, "1");
    assert_eq!(
        reserved.data,
        serde_json::json!({"id": id, "status": "reserved", "version": 1})
    );
    assert!(took < Duration::from_secs(1), "{took:?}");

    // Released again: available.
    app.publish(cancelled("o1", &id)).await;
    let released = stream.expect("the release", Duration::from_secs(5)).await;
    assert_eq!(released.data["status"], "available");
    assert_eq!(released.id, "2");
}

#[tokio::test]
async fn a_stream_shows_only_its_own_ticket_and_a_reconnect_skips_what_it_saw() {
    let app = spawn_app().await;
    let (_, id) = app.listed_ticket().await;
    let (_, other) = app.listed_ticket().await;
    let mut stream = EventStream::open(&app.address, &id, None).await;
    stream.expect("the state", Duration::from_secs(5)).await;

    app.publish(created("o-other", &other)).await;
    app.publish(created("o1", &id)).await;
    let next = stream.expect("a change", Duration::from_secs(5)).await;
    assert_eq!(next.data["id"], id.as_str(), "{next:?}");
    assert_eq!(next.data["status"], "reserved");
    drop(stream);

    // Back with the version it saw last: no repeat of the state, only what is new.
    let mut again = EventStream::open(&app.address, &id, Some("1")).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), again.next())
            .await
            .is_err(),
        "nothing new to say"
    );
    app.publish(cancelled("o1", &id)).await;
    let released = again.expect("the release", Duration::from_secs(5)).await;
    assert_eq!(
        (released.event.as_str(), released.id.as_str()),
        ("update", "2")
    );

    // With an older version: the current state first.
    let mut behind = EventStream::open(&app.address, &id, Some("0")).await;
    let state = behind.expect("the state", Duration::from_secs(5)).await;
    assert_eq!((state.event.as_str(), state.id.as_str()), ("state", "2"));
}

#[tokio::test]
async fn an_unknown_or_malformed_ticket_is_404_before_any_stream() {
    let app = spawn_app().await;
    for path in [
        format!("/api/tickets/{}/events", new_user_id()),
        "/api/tickets/not-an-id/events".to_owned(),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status, 404, "{path}");
        assert_eq!(response.error_message(), "Ticket not found");
    }
}

/// The tickets app with `LIVE_STREAMS_MAX`, its address, and how to stop it.
async fn spawn_with_max(
    max: usize,
) -> (
    String,
    CancellationToken,
    JoinHandle<anyhow::Result<()>>,
    TestDatabase,
) {
    let db = TestDatabase::new("tickets");
    let (address, stop, running) = spawn_replica(max, &db, &testkit::bus_config("tickets")).await;
    (address, stop, running, db)
}

/// One tickets process on `db` and `bus`: several of them are replicas of one service.
async fn spawn_replica(
    max: usize,
    db: &TestDatabase,
    bus: &BusConfig,
) -> (String, CancellationToken, JoinHandle<anyhow::Result<()>>) {
    let config = Config {
        live_streams_max: max,
        ..test_config(db, bus)
    };
    let app = App::build(config).await.expect("build tickets app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(stop.clone()));
    (address, stop, running)
}

async fn list(address: &str) -> String {
    let response = TestClient::new(address)
        .request(
            Method::POST,
            "/api/tickets",
            Some(&new_user_id()),
            Some(serde_json::json!({"title": "Concert", "price": 20.0})),
        )
        .await;
    assert_eq!(response.status, 201);
    response.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn beyond_live_streams_max_it_is_503_until_one_closes() {
    let (address, _stop, _running, _db) = spawn_with_max(1).await;
    let id = list(&address).await;
    let mut open = EventStream::open(&address, &id, None).await;
    open.expect("the state", Duration::from_secs(5)).await;

    let refused = reqwest::get(format!("{address}/api/tickets/{id}/events"))
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert!(body["errors"][0]["message"].is_string(), "{body}");

    drop(open);
    testkit::eventually("a slot is free again", Duration::from_secs(5), || {
        let url = format!("{address}/api/tickets/{id}/events");
        async move {
            let response = reqwest::get(url).await.ok()?;
            (response.status() == 200).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn open_streams_end_when_the_service_stops_and_do_not_hold_up_its_shutdown() {
    let (address, stop, running, _db) = spawn_with_max(10).await;
    let id = list(&address).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = EventStream::open(&address, &id, None).await;
        stream.expect("the state", Duration::from_secs(5)).await;
        streams.push(stream);
    }

    stop.cancel();
    for stream in &mut streams {
        let ended = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("the stream ends when the service stops");
        assert!(ended.is_none(), "{ended:?}");
    }
    tokio::time::timeout(Duration::from_secs(15), running)
        .await
        .expect("shutdown does not wait on live streams")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_stream_shows_changes_made_by_another_replica() {
    let db = TestDatabase::new("tickets");
    let bus = testkit::bus_config("tickets");
    let (one, _stop_one, _running_one) = spawn_replica(10, &db, &bus).await;
    let (two, _stop_two, _running_two) = spawn_replica(10, &db, &bus).await;
    let seller = new_user_id();
    let listed = TestClient::new(&one)
        .request(
            Method::POST,
            "/api/tickets",
            Some(&seller),
            Some(serde_json::json!({"title": "Concert", "price": 20.0})),
        )
        .await
        .body;
    let id = listed["id"].as_str().unwrap();

    // Open on the second replica; the seller edits through the first.
    let mut stream = EventStream::open(&two, id, None).await;
    stream.expect("the state", Duration::from_secs(5)).await;
    let edited = TestClient::new(&one)
        .request(
            Method::PUT,
            &format!("/api/tickets/{id}"),
            Some(&seller),
            Some(serde_json::json!({"title": "Concert (late)", "price": 25.0})),
        )
        .await;
    assert_eq!(edited.status, 200);
    let update = stream
        .expect("the first replica's change", Duration::from_secs(5))
        .await;
    assert_eq!(update.event, "update");
    assert_eq!(
        update.data,
        serde_json::json!({"id": id, "status": "available", "version": 1})
    );
}

#[tokio::test]
async fn a_ticket_taken_off_sale_says_so_and_the_stream_stays_open() {
    let app = spawn_app().await;
    let (seller, id) = app.listed_ticket().await;
    let mut stream = EventStream::open(&app.address, &id, None).await;
    stream.expect("the state", Duration::from_secs(5)).await;
    let removed = app
        .request(
            Method::DELETE,
            &format!("/api/tickets/{id}"),
            Some(&seller),
            None,
        )
        .await;
    assert_eq!(removed.status, 204, "{:?}", removed.body);
    let update = stream.expect("the removal", Duration::from_secs(5)).await;
    assert_eq!(
        update.data,
        serde_json::json!({"id": id, "status": "removed", "version": 1})
    );
    // Not necessarily for good (an order placed before the removal was known wins), so
    // the stream stays open; a new one starts from the state GET shows.
    let mut again = EventStream::open(&app.address, &id, None).await;
    let state = again.expect("the state", Duration::from_secs(5)).await;
    assert_eq!(state.data["status"], "removed");
    assert_eq!(
        app.get(&format!("/api/tickets/{id}")).await.body["status"],
        "removed"
    );
}
