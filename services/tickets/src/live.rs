//! Live availability: every change of a ticket, whichever replica made it, fanned out to
//! the ticket pages that have it open (`GET /api/tickets/{id}/events`, see
//! `http::live`).
//!
//! One feed per process: a plain NATS subscription to tickets' own `ticket.updated`,
//! `.removed` and `.snapshot` (`Bus::watch`), so every replica sees every change. Not a
//! JetStream consumer: tickets' NATS user may create consumers only on what it consumes,
//! and an ordered consumer needs the right to create unnamed ones on any subject (the
//! password-reset subject included) and to pull from any consumer. The price: an event
//! published while this process is cut off from NATS is not seen live (an open page
//! shows it at its next change or reload), and a re-published event is seen twice (the
//! same version again: harmless).
//!
//! The feed publishes each change on one `tokio::sync::broadcast` channel; each open
//! stream keeps the changes of its own ticket. A stream too slow to keep up with the
//! channel is closed (its browser reconnects and starts again from the current state).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use common::bus::Bus;
use common::events::{Event, TicketRemoved, TicketSnapshot, TicketUpdated};
use common::shutdown::BackgroundTasks;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use crate::domain::{State, Ticket};

/// Changes kept for streams that have not read them yet; a stream further behind is closed.
pub const CHANNEL_CAPACITY: usize = 1024;

/// How long the feed waits before starting again after its consumer failed for good.
const FEED_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Where a ticket stands, as a page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Free to buy.
    Available,
    /// Held by an order awaiting payment.
    Reserved,
    /// Paid for.
    Sold,
    /// Taken off sale by its seller.
    Removed,
}

impl From<State> for Status {
    fn from(state: State) -> Self {
        match state {
            State::Available => Self::Available,
            State::Reserved => Self::Reserved,
            State::Sold => Self::Sold,
            State::Removed => Self::Removed,
        }
    }
}

/// The data of every message of a ticket's stream: `{"id", "status", "version"}`, the
/// status as `GET /api/tickets/{id}` says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub id: String,
    pub status: Status,
    pub version: i64,
}

impl Change {
    pub fn of(ticket: &Ticket) -> Self {
        Self {
            id: ticket.id.to_hex(),
            status: ticket.state().into(),
            version: ticket.version,
        }
    }
}

/// What the feed hands to the streams, and what bounds them. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    changes: broadcast::Sender<Arc<Change>>,
    slots: Arc<Semaphore>,
    stop: CancellationToken,
}

impl Hub {
    /// At most `max_streams` open streams; every one ends when `stop` is cancelled.
    pub fn new(max_streams: usize, stop: CancellationToken) -> Self {
        Self {
            changes: broadcast::channel(CHANNEL_CAPACITY).0,
            slots: Arc::new(Semaphore::new(max_streams)),
            stop,
        }
    }

    /// A place for one more stream, held until the stream ends; `None` at the cap.
    pub fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Every change from now on (subscribe before reading the current state, so that
    /// nothing falls between the two).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    /// Cancelled when the service stops: open streams end then.
    pub fn stopped(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Hands a change to the open streams (none listening is fine).
    pub fn publish(&self, change: Change) {
        let _ = self.changes.send(Arc::new(change));
    }
}

/// Starts the feed: the consumer is created here, so a start-up that cannot create it
/// fails (and is retried like the listeners'); then a background task forwards changes.
pub async fn spawn_feed(bus: &Bus, hub: &Hub, tasks: &mut BackgroundTasks) -> anyhow::Result<()> {
    let feed = Feed::start(bus).await?;
    let bus = bus.clone();
    let hub = hub.clone();
    let token = tasks.token();
    tasks.push(tokio::spawn(async move {
        feed.run(&bus, &hub, &token).await;
    }));
    Ok(())
}

/// The subjects the feed follows (tickets' own events), as they are published: a plain
/// subscription, which its NATS user may make to its own events alone, where a stream
/// consumer would need the right to create consumers on any subject.
const FEED_SUBJECTS: [&str; 3] = [
    <TicketUpdated as Event>::SUBJECT,
    <TicketRemoved as Event>::SUBJECT,
    <TicketSnapshot as Event>::SUBJECT,
];

/// The subscriptions, merged.
struct Feed {
    messages: futures::stream::SelectAll<async_nats::Subscriber>,
}

impl Feed {
    async fn start(bus: &Bus) -> anyhow::Result<Self> {
        let mut subscriptions = Vec::new();
        for subject in FEED_SUBJECTS {
            subscriptions.push(
                bus.watch(subject)
                    .await
                    .context("subscribing the live ticket feed")?,
            );
        }
        Ok(Self {
            messages: futures::stream::select_all(subscriptions),
        })
    }

    async fn run(mut self, bus: &Bus, hub: &Hub, stop: &CancellationToken) {
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return,
                next = self.messages.next() => next,
            };
            match next {
                Some(message) => {
                    let subject = message.subject.as_str();
                    if let Some(change) = decode(subject, &message.payload) {
                        hub.publish(change);
                    }
                }
                None => {
                    // Ended for good (the connection closed): subscribe again (changes in
                    // between are missed; streams opened later read the current state).
                    tracing::warn!("live ticket feed ended; starting again");
                    loop {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(FEED_RETRY_DELAY) => {}
                        }
                        match Feed::start(bus).await {
                            Ok(feed) => {
                                self = feed;
                                break;
                            }
                            Err(err) => {
                                tracing::warn!(
                                    error = format!("{err:#}"),
                                    "live ticket feed: cannot start again yet"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The fields of the ticket events the feed reads: `ticket.updated` and `ticket.snapshot`
/// carry the whole state, `ticket.removed` says it went off sale (not necessarily for good:
/// an order placed before the removal was known reserves it again, at a later version).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    id: String,
    version: i64,
    #[serde(default)]
    order_id: Option<String>,
    /// A snapshot of a ticket taken off sale.
    #[serde(default)]
    removed: bool,
}

#[derive(Deserialize)]
struct Envelope {
    data: Data,
}

/// The change an event on `subject` (`<prefix>.ticket.<what>`) announces, if any.
fn decode(subject: &str, payload: &[u8]) -> Option<Change> {
    let what = subject.rsplit_once('.').map_or(subject, |(_, what)| what);
    let status = match what {
        "updated" | "snapshot" => None,
        "removed" => Some(Status::Removed),
        // Created (nobody can have it open yet), resync requests: nothing to show.
        _ => return None,
    };
    let data = match serde_json::from_slice::<Envelope>(payload) {
        Ok(envelope) => envelope.data,
        Err(err) => {
            tracing::warn!(subject, error = %err, "live ticket feed: undecodable event");
            return None;
        }
    };
    let status = status.unwrap_or(if data.removed {
        Status::Removed
    } else if data.order_id.is_some() {
        Status::Reserved
    } else {
        Status::Available
    });
    Some(Change {
        id: data.id,
        status,
        version: data.version,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ticket_events_become_changes_and_others_are_ignored() {
        let updated = br#"{"id":"e","type":"ticket.updated","data":{"id":"t1","title":"Gig","priceCents":100,"userId":"u","orderId":"o1","version":3}}"#;
        assert_eq!(
            decode("gittix.ticket.updated", updated),
            Some(Change {
                id: "t1".into(),
                status: Status::Reserved,
                version: 3
            })
        );
        let released = br#"{"data":{"id":"t1","orderId":null,"version":4}}"#;
        assert_eq!(
            decode("gittix.ticket.snapshot", released).unwrap().status,
            Status::Available
        );
        let off_sale = br#"{"data":{"id":"t1","orderId":null,"version":5,"removed":true}}"#;
        assert_eq!(
            decode("gittix.ticket.snapshot", off_sale).unwrap().status,
            Status::Removed
        );
        let removed = br#"{"data":{"id":"t1","userId":"u","version":5}}"#;
        assert_eq!(
            decode("gittix.ticket.removed", removed).unwrap().status,
            Status::Removed
        );
        assert_eq!(
            decode(
                "gittix.ticket.created",
                br#"{"data":{"id":"t1","version":0}}"#
            ),
            None
        );
        assert_eq!(decode("gittix.ticket.updated", b"not json"), None);
    }
}
