//! Reading back what was published, to assert on events.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use common::bus::{Bus, BusConfig};
use futures::StreamExt;

/// Every message stored on a full subject (wildcards allowed), oldest first.
pub async fn stored_messages(bus: &Bus, full_subject: &str) -> Vec<async_nats::jetstream::Message> {
    let stream = bus
        .jetstream()
        .get_stream(bus.stream_name())
        .await
        .expect("open stream");
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: full_subject.to_owned(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("create reader");
    let mut batch = consumer
        .fetch()
        .max_messages(10_000)
        .expires(Duration::from_millis(300))
        .messages()
        .await
        .expect("fetch");
    let mut out = Vec::new();
    while let Some(Ok(message)) = batch.next().await {
        out.push(message);
    }
    out
}

/// The envelopes (as JSON) of every event stored for `event_subject`, e.g. `ticket.updated`.
pub async fn stored_events(config: &BusConfig, event_subject: &str) -> Vec<serde_json::Value> {
    let bus = Bus::connect(config, "test-reader")
        .await
        .expect("connect to NATS");
    stored_messages(&bus, &bus.subject(event_subject))
        .await
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).expect("event JSON"))
        .collect()
}
