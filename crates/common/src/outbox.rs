//! The transactional outbox: a state change and the events it causes are one
//! single-document atomic MongoDB write.
//!
//! A write pushes its events onto the document's own `pendingEvents` array in the same
//! update that changes the state (and bumps `version`). The [`Relay`] publishes pending
//! events in array order (so a record's events leave in version order) with
//! `Nats-Msg-Id` = event id, waits for the stream's ack, then pulls each from the
//! document. It wakes right after a write through [`OutboxSignal`] and also sweeps
//! periodically, so events written just before a crash still go out after a restart. A
//! crash between publish and pull re-publishes after restart, which the stream dedupes.

use std::sync::Arc;
use std::time::Duration;

use bson::{Bson, Document, doc};
use futures::TryStreamExt;
use mongodb::Collection;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::events::{Envelope, Event};

/// The array field every outboxed document carries.
pub const PENDING_EVENTS: &str = "pendingEvents";

/// An event stored on its document until published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEvent {
    /// The envelope id, also the `Nats-Msg-Id`.
    pub id: String,
    /// The event subject, e.g. `ticket.updated`.
    pub subject: String,
    /// The serialized envelope, exactly the bytes that will be published.
    pub body: String,
    /// The id of the request (or event) that caused it, published as a NATS header.
    #[serde(default, rename = "requestId", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The W3C trace context of the span that caused it (when spans are exported): the
    /// publish, and every handler of the event, continue that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl PendingEvent {
    pub fn new<E: Event>(data: E) -> Self {
        Self::from_envelope(&Envelope::new(data))
    }

    /// An event published at most once per `key` within the stream's duplicate window
    /// (see [`Envelope::with_key`]), e.g. one state request per record and version.
    pub fn keyed<E: Event>(key: &str, data: E) -> Self {
        Self::from_envelope(&Envelope::with_key(key, data))
    }

    pub fn from_envelope<E: Event>(envelope: &Envelope<E>) -> Self {
        Self {
            id: envelope.id.to_string(),
            subject: E::SUBJECT.to_owned(),
            // Serializing our own event types cannot fail: no maps with non-string keys.
            body: serde_json::to_string(envelope).unwrap_or_default(),
            request_id: crate::request_id::current(),
            traceparent: crate::trace_context::current(),
        }
    }

    /// The BSON form stored in `pendingEvents`.
    pub fn to_bson(&self) -> Bson {
        let mut event = doc! {"id": &self.id, "subject": &self.subject, "body": &self.body};
        if let Some(request_id) = &self.request_id {
            event.insert("requestId", request_id);
        }
        if let Some(traceparent) = &self.traceparent {
            event.insert("traceparent", traceparent);
        }
        Bson::Document(event)
    }

    /// `{"$push": {"pendingEvents": …}}` to merge into an update.
    pub fn push(&self) -> Document {
        doc! {"$push": {PENDING_EVENTS: self.to_bson()}}
    }
}

/// Pushes `event` onto the outbox of the document `id` only if it is still at `version`
/// (an event about a record as read, such as its whole state for a replica), and wakes
/// the relay. False when the document changed meanwhile (or does not exist).
pub async fn push_if_version<T: Send + Sync>(
    collection: &Collection<T>,
    id: impl Into<Bson>,
    version: i64,
    event: PendingEvent,
    signal: &OutboxSignal,
) -> mongodb::error::Result<bool> {
    let pushed = collection
        .update_one(doc! {"_id": id.into(), "version": version}, event.push())
        .await?
        .matched_count
        == 1;
    if pushed {
        signal.notify();
    }
    Ok(pushed)
}

/// Wakes the relay after a write with events, so they leave without waiting for a sweep.
#[derive(Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    pub fn notify(&self) {
        self.0.notify_one();
    }

    async fn notified(&self) {
        self.0.notified().await;
    }
}

/// How often the relay looks for pending events when nothing wakes it.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(2);

/// The longest one batch of the relay (up to 100 documents of each collection) may take. Neither the Mongo driver (it has no
/// socket timeout) nor every NATS call bounds its wait, and a relay stuck on one reply
/// after a server restart would hold every later event back for good: a batch that takes
/// longer is dropped (its connection with it) and started again; publishing again is
/// safe, the stream dedupes.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Publishes the pending events of some collections.
#[derive(Clone)]
pub struct Relay {
    bus: Bus,
    collections: Vec<Collection<Document>>,
    signal: OutboxSignal,
    sweep_interval: Duration,
    drain_timeout: Duration,
}

/// A document's id and its pending events as stored: the raw BSON of each event is
/// what `$pullAll` matches, since FerretDB ignores `$pull` by condition (see
/// docs/STORE-CONTRACT.md). One `$pullAll` of every event a batch sent, on every document
/// of the batch, removes from each exactly its own (event ids are unique).
#[derive(Deserialize)]
struct Pending {
    #[serde(rename = "_id")]
    id: Bson,
    #[serde(rename = "pendingEvents", default)]
    pending_events: Vec<Bson>,
}

/// How long the oldest of these pending events has waited (zero for none): the age of
/// its envelope's `occurredAt`, which the stored body carries.
fn oldest_age(batch: &[Pending]) -> Duration {
    #[derive(Deserialize)]
    struct Stamp {
        #[serde(rename = "occurredAt")]
        occurred_at: chrono::DateTime<chrono::Utc>,
    }
    let oldest = batch
        .iter()
        .flat_map(|doc| &doc.pending_events)
        .filter_map(|raw| raw.as_document()?.get_str("body").ok())
        .filter_map(|body| serde_json::from_str::<Stamp>(body).ok())
        .map(|stamp| stamp.occurred_at)
        .min();
    oldest
        .and_then(|at| (chrono::Utc::now() - at).to_std().ok())
        .unwrap_or_default()
}

impl Relay {
    pub fn new(bus: Bus, signal: OutboxSignal) -> Self {
        Self {
            bus,
            collections: Vec::new(),
            signal,
            sweep_interval: SWEEP_INTERVAL,
            drain_timeout: DRAIN_TIMEOUT,
        }
    }

    /// Overrides [`SWEEP_INTERVAL`].
    pub fn sweep_every(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// Overrides [`DRAIN_TIMEOUT`].
    pub fn drain_within(mut self, limit: Duration) -> Self {
        self.drain_timeout = limit;
        self
    }

    /// Adds a collection whose documents carry `pendingEvents`.
    pub fn watch<T: Send + Sync>(mut self, collection: &Collection<T>) -> Self {
        self.collections.push(collection.clone_with_type());
        self
    }

    /// Creates on each watched collection the sparse index the sweep reads, which holds
    /// only documents with pending events: a sweep never scans the whole collection.
    pub async fn ensure_indexes(&self) -> mongodb::error::Result<()> {
        let pending =
            crate::mongo::index("pending_events", doc! {format!("{PENDING_EVENTS}.id"): 1})
                .sparse();
        for collection in &self.collections {
            crate::mongo::ensure_indexes(collection, std::slice::from_ref(&pending)).await?;
        }
        Ok(())
    }

    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move { self.run(shutdown).await })
    }

    async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        loop {
            let pause = match self.drain_bounded().await {
                Ok(_) => {
                    failures = 0;
                    self.sweep_interval
                }
                Err(err) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = ?err, failures, "outbox relay failed; retrying");
                    Duration::from_millis(200 * u64::from(failures.min(25)))
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.signal.notified() => {},
                () = tokio::time::sleep(pause) => {},
            }
        }
    }

    /// Publishes everything pending now; returns how many events went out.
    pub async fn drain(&self) -> anyhow::Result<usize> {
        let mut published = 0;
        loop {
            let batch = self.drain_batch().await?;
            if batch == 0 {
                return Ok(published);
            }
            published += batch;
        }
    }

    /// Publishes one batch (up to 100 documents) of each collection's pending events, then
    /// removes what went out with one update per collection; returns how many events went
    /// out. A publish that fails ends the batch: what was published before it is removed,
    /// the rest stays for the next pass.
    async fn drain_batch(&self) -> anyhow::Result<usize> {
        let mut published = 0;
        for collection in &self.collections {
            let batch = self.pending(collection).await?;
            let waiting: usize = batch.iter().map(|doc| doc.pending_events.len()).sum();
            metrics::gauge!("outbox_pending_events", "collection" => collection.name().to_owned())
                .set(waiting as f64);
            metrics::gauge!("outbox_oldest_event_age_seconds", "collection" => collection.name().to_owned())
                .set(oldest_age(&batch).as_secs_f64());
            let mut sent = Vec::new();
            let outcome = self.publish_batch(&batch, &mut sent).await;
            if !sent.is_empty() {
                let ids: Vec<Bson> = batch.iter().map(|doc| doc.id.clone()).collect();
                collection
                    .update_many(
                        doc! {"_id": {"$in": ids}},
                        doc! {"$pullAll": {PENDING_EVENTS: &sent}},
                    )
                    .await?;
                published += sent.len();
            }
            outcome?;
        }
        Ok(published)
    }

    /// [`Self::drain`], each batch bounded by the drain timeout.
    async fn drain_bounded(&self) -> anyhow::Result<usize> {
        let mut published = 0;
        loop {
            let batch = tokio::time::timeout(self.drain_timeout, self.drain_batch())
                .await
                .unwrap_or_else(|_| {
                    Err(anyhow::anyhow!(
                        "a batch took longer than {:?}; starting over",
                        self.drain_timeout
                    ))
                })?;
            if batch == 0 {
                return Ok(published);
            }
            published += batch;
        }
    }

    async fn pending(&self, collection: &Collection<Document>) -> anyhow::Result<Vec<Pending>> {
        let docs: Vec<Document> = collection
            .find(doc! {format!("{PENDING_EVENTS}.id"): {"$exists": true}})
            .projection(doc! {PENDING_EVENTS: 1})
            .limit(100)
            .await?
            .try_collect()
            .await?;
        Ok(docs
            .into_iter()
            .filter_map(|d| match bson::from_document::<Pending>(d) {
                Ok(pending) => Some(pending),
                Err(err) => {
                    tracing::error!(error = %err, "document with an unreadable pendingEvents field");
                    None
                }
            })
            .collect())
    }

    /// Publishes each document's events in order, collecting into `sent` (as stored) each
    /// one the stream has, or that can never be published.
    async fn publish_batch(&self, batch: &[Pending], sent: &mut Vec<Bson>) -> anyhow::Result<()> {
        for doc in batch {
            for raw in &doc.pending_events {
                match bson::from_bson::<PendingEvent>(raw.clone()) {
                    Ok(event) => {
                        self.bus.publish_pending(&event).await?;
                        metrics::counter!("outbox_events_published_total", "subject" => event.subject.clone())
                            .increment(1);
                        tracing::debug!(
                            event.id = event.id,
                            event.subject = event.subject,
                            "event published"
                        );
                    }
                    // Cannot be published, ever: log it loudly and take it out, so it does
                    // not block the events after it.
                    Err(err) => {
                        tracing::error!(document = %doc.id, event = %raw, error = %err, "dropping a malformed pending event")
                    }
                }
                sent.push(raw.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pending(bodies: &[String]) -> Pending {
        Pending {
            id: Bson::Int32(1),
            pending_events: bodies
                .iter()
                .map(|body| Bson::Document(doc! {"id": "e", "subject": "s", "body": body}))
                .collect(),
        }
    }

    fn body(seconds_ago: i64) -> String {
        let at = chrono::Utc::now() - chrono::Duration::seconds(seconds_ago);
        format!(
            r#"{{"id":"x","type":"s","occurredAt":"{}","data":{{}}}}"#,
            at.to_rfc3339()
        )
    }

    #[test]
    fn the_oldest_pending_event_gives_the_age() {
        assert_eq!(oldest_age(&[]), Duration::ZERO);
        let batch = [
            pending(&[body(5), body(90)]),
            pending(&[body(30), "not json".into()]),
        ];
        let age = oldest_age(&batch).as_secs();
        assert!((89..=91).contains(&age), "{age}");
    }
}
