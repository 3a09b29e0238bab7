//! The event bus: NATS JetStream.
//!
//! One stream holds every event of a deployment, on subjects `<prefix>.<event subject>`
//! (e.g. `gittix.ticket.created`). Dead letters go to `<prefix>.dead.<service>.<subject>`
//! in the same stream, where they are kept for inspection. The stream name and prefix come
//! from config, so each test has a stream of its own.

use std::time::Duration;

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage, stream};
use bytes::Bytes;
use tracing::Instrument;

use crate::config::{ConfigError, Env};
use crate::events::{Envelope, Event};
use crate::outbox::PendingEvent;

/// How long the stream remembers message ids for dedupe: an outbox relay retrying after a
/// crash or a lost PubAck within this window publishes an event once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// `NATS_URL`, `EVENTS_STREAM`, `EVENTS_SUBJECT_PREFIX`.
#[derive(Debug, Clone)]
pub struct BusConfig {
    pub url: String,
    pub stream: String,
    pub subject_prefix: String,
}

impl BusConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let prefix: String = env.or("EVENTS_SUBJECT_PREFIX", "gittix".to_owned())?;
        if prefix.is_empty() || prefix.contains(['.', '*', '>', ' ']) {
            return Err(ConfigError::new(
                "EVENTS_SUBJECT_PREFIX",
                "must be one subject token (no dots, spaces or wildcards)",
            ));
        }
        Ok(Self {
            url: env.required("NATS_URL")?,
            stream: env.or("EVENTS_STREAM", "GITTIX".to_owned())?,
            subject_prefix: prefix,
        })
    }
}

/// A connection to JetStream with the deployment's stream and subject naming.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    config: BusConfig,
}

impl Bus {
    /// Connects and makes sure the stream exists with our settings (safe to repeat, and
    /// safe for several services starting at once).
    pub async fn connect(config: &BusConfig, service: &str) -> anyhow::Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .name(service)
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .connect(&config.url)
            .await
            .with_context(|| {
                format!("connecting to NATS at {}", without_credentials(&config.url))
            })?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(5));
        let bus = Self {
            client,
            js,
            config: config.clone(),
        };
        bus.ensure_stream().await?;
        Ok(bus)
    }

    async fn ensure_stream(&self) -> anyhow::Result<()> {
        let config = stream::Config {
            name: self.config.stream.clone(),
            subjects: vec![format!("{}.>", self.config.subject_prefix)],
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            max_age: Duration::from_secs(30 * 24 * 3600),
            ..Default::default()
        };
        self.js
            .create_or_update_stream(config)
            .await
            .with_context(|| format!("creating stream {}", self.config.stream))?;
        Ok(())
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    pub fn stream_name(&self) -> &str {
        &self.config.stream
    }

    /// The full subject of an event subject, e.g. `gittix.ticket.created`.
    pub fn subject(&self, event_subject: &str) -> String {
        format!("{}.{event_subject}", self.config.subject_prefix)
    }

    /// Where a service's rejected messages of one subject go.
    pub fn dead_letter_subject(&self, service: &str, event_subject: &str) -> String {
        format!(
            "{}.dead.{service}.{event_subject}",
            self.config.subject_prefix
        )
    }

    /// Publishes a serialized envelope with its id as `Nats-Msg-Id` and waits for the
    /// stream's acknowledgement. `Ok` means stored (or recognised as a duplicate).
    pub async fn publish_raw(
        &self,
        event_subject: &str,
        id: &str,
        body: Bytes,
    ) -> anyhow::Result<()> {
        self.publish_message(
            self.subject(event_subject),
            PublishMessage::build().payload(body).message_id(id),
        )
        .await
    }

    /// Publishes an event from an outbox, with the id of the request that caused it, in a
    /// span continuing that request's trace (its context goes on to the handlers).
    pub async fn publish_pending(&self, event: &PendingEvent) -> anyhow::Result<()> {
        let span = tracing::info_span!(
            "publish",
            subject = %event.subject,
            event_id = %event.id,
            request_id = event.request_id.as_deref().unwrap_or(""),
        );
        crate::trace_context::continue_from(&span, event.traceparent.as_deref());
        let mut message = PublishMessage::build()
            .payload(event.body.clone().into())
            .message_id(&event.id);
        // `header` adds to the headers (`headers` would drop the Nats-Msg-Id).
        if let Some(request_id) = &event.request_id {
            message = message.header(crate::request_id::HEADER, request_id.as_str());
        }
        if let Some(traceparent) = crate::trace_context::of(&span) {
            message = message.header(crate::trace_context::HEADER, traceparent.as_str());
        }
        self.publish_message(self.subject(&event.subject), message)
            .instrument(span)
            .await
    }

    /// Publishes one event directly (not through an outbox): for services whose state
    /// change is not a Mongo write, like expiration.
    pub async fn publish<E: Event>(&self, envelope: &Envelope<E>) -> anyhow::Result<()> {
        let body = serde_json::to_vec(envelope).context("serializing event")?;
        self.publish_raw(E::SUBJECT, &envelope.id.to_string(), body.into())
            .await
    }

    /// Publishes a dead letter: the original body, with the reason in headers.
    pub async fn publish_dead_letter(
        &self,
        service: &str,
        event_subject: &str,
        reason: &str,
        body: Bytes,
    ) -> anyhow::Result<()> {
        let mut headers = HeaderMap::new();
        headers.insert("GitTix-Dead-Reason", truncate_header(reason));
        headers.insert(
            "GitTix-Original-Subject",
            self.subject(event_subject).as_str(),
        );
        self.publish_message(
            self.dead_letter_subject(service, event_subject),
            PublishMessage::build().payload(body).headers(headers),
        )
        .await
    }

    async fn publish_message(
        &self,
        subject: String,
        message: PublishMessage,
    ) -> anyhow::Result<()> {
        let ack: PublishAckFuture = self
            .js
            .send_publish(subject.clone(), message)
            .await
            .with_context(|| format!("publishing to {subject}"))?;
        ack.await
            .with_context(|| format!("waiting for the stream to store {subject}"))?;
        Ok(())
    }

    /// The readiness check: the server answers and the stream exists.
    pub async fn check(&self) -> Result<(), String> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err("nats: not connected".into());
        }
        self.js
            .get_stream(&self.config.stream)
            .await
            .map(|_| ())
            .map_err(|e| format!("nats: {e}"))
    }
}

/// A server URL fit for logs: any `user:password@` dropped.
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => url.to_owned(),
        },
        None => url
            .rsplit_once('@')
            .map_or(url, |(_, host)| host)
            .to_owned(),
    }
}

/// Header values must be one line and reasonably short.
fn truncate_header(reason: &str) -> String {
    reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(500)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_logs() {
        assert_eq!(
            without_credentials("nats://user:secret@nats:4222"),
            "nats://nats:4222"
        );
        assert_eq!(without_credentials("nats://nats:4222"), "nats://nats:4222");
        assert_eq!(without_credentials("token@nats:4222"), "nats:4222");
    }
}
