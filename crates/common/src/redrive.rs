//! Replaying dead letters after a fix: `gittix redrive` (crates/admin), `make redrive`.
//!
//! A dead letter is the original event body on `<prefix>.dead.<service>.<subject>` with the
//! original subject in a header. Redriving publishes it again on its original subject,
//! addressed to the service that dead-lettered it (the `GitTix-Redrive-For` header: other
//! services' listeners ack it untouched), then deletes the dead letter. The republished
//! message's id is derived from the dead letter's stream sequence, so a redrive interrupted
//! between publishing and deleting and run again publishes it once; handlers are
//! idempotent, so a redriven event that was meanwhile applied some other way is a no-op.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::message::PublishMessage;
use futures::StreamExt;

use crate::bus::Bus;

/// The header naming the one service a redriven event is for.
pub const REDRIVE_FOR: &str = "GitTix-Redrive-For";

/// What a redrive did: dead letters per `service subject`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub redriven: BTreeMap<String, usize>,
    /// Dead letters without the original subject (not ours): left in place.
    pub skipped: usize,
}

impl Report {
    pub fn total(&self) -> usize {
        self.redriven.values().sum()
    }
}

/// Redrives the dead letters of `service` (every service when `None`). With `dry_run`,
/// only counts them.
pub async fn redrive(bus: &Bus, service: Option<&str>, dry_run: bool) -> anyhow::Result<Report> {
    let dead_subjects = bus.dead_letter_subject(service.unwrap_or("*"), ">");
    let stream = bus
        .jetstream()
        .get_stream(bus.stream_name())
        .await
        .context("opening the stream")?;
    let reader = stream
        .create_consumer(pull::Config {
            filter_subject: dead_subjects,
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .context("reading dead letters")?;
    let mut report = Report::default();
    loop {
        let mut batch = reader
            .fetch()
            .max_messages(100)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .context("fetching dead letters")?;
        let mut seen = 0;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| anyhow::anyhow!("reading a dead letter: {e}"))?;
            seen += 1;
            let sequence = message
                .info()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .stream_sequence;
            let original = message
                .headers
                .as_ref()
                .and_then(|h| h.get("GitTix-Original-Subject"))
                .map(|v| v.to_string());
            let Some(original) = original else {
                report.skipped += 1;
                continue;
            };
            // `<prefix>.dead.<service>.<subject…>`
            let dead_service = message
                .subject
                .split('.')
                .nth(2)
                .unwrap_or_default()
                .to_owned();
            *report
                .redriven
                .entry(format!("{dead_service} {original}"))
                .or_default() += 1;
            if dry_run {
                continue;
            }
            let mut headers = HeaderMap::new();
            headers.insert(REDRIVE_FOR, dead_service.as_str());
            let publish = PublishMessage::build()
                .payload(message.payload.clone())
                .headers(headers)
                .message_id(format!("redrive-{}-{sequence}", bus.stream_name()));
            bus.jetstream()
                .send_publish(original.clone(), publish)
                .await
                .with_context(|| format!("republishing to {original}"))?
                .await
                .with_context(|| format!("waiting for the stream to store {original}"))?;
            stream
                .delete_message(sequence)
                .await
                .with_context(|| format!("deleting dead letter {sequence}"))?;
        }
        if seen == 0 {
            return Ok(report);
        }
    }
}
