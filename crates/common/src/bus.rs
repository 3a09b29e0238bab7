//! The event bus: NATS JetStream.
//!
//! One stream holds every event of a deployment, on subjects `<prefix>.<event subject>`
//! (e.g. `gittix.ticket.created`). Dead letters go to `<prefix>.dead.<service>.<subject>`
//! in the same stream, where they are kept for inspection. The stream name and prefix come
//! from config, so each test has a stream of its own.
//!
//! A service connects as its own NATS user (`NATS_USER`, `NATS_PASSWORD` or
//! `NATS_PASSWORD_FILE`), whose permissions [`crate::bus_permissions`] derives: it may
//! publish only its own events, and consume only those it listens to.

use std::time::Duration;

use anyhow::{Context, bail};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage, stream};
use bytes::Bytes;
use tracing::Instrument;

use crate::bus_permissions::{self, ServiceRoutes};
use crate::config::{ConfigError, Env, Secret};
use crate::events::{Envelope, Event};
use crate::listener::{DEFAULT_ACK_WAIT, ListenerOptions};
use crate::outbox::PendingEvent;

/// How long the stream remembers message ids for dedupe: an outbox relay retrying after a
/// crash or a lost PubAck within this window publishes an event once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// How long the stream keeps an event.
const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// `NATS_URL`, `EVENTS_STREAM`, `EVENTS_SUBJECT_PREFIX`, `NATS_USER`, `NATS_PASSWORD` or
/// `NATS_PASSWORD_FILE`, `NATS_STREAM_REPLICAS`, `EVENT_ACK_WAIT_MS`.
#[derive(Debug, Clone)]
pub struct BusConfig {
    pub url: String,
    pub stream: String,
    pub subject_prefix: String,
    /// The NATS user to connect as; `None` connects without (the test servers, which
    /// have no users).
    pub credentials: Option<NatsCredentials>,
    /// Copies of the stream JetStream keeps: 1 on one server, 3 on a cluster.
    pub replicas: usize,
    /// `EVENT_ACK_WAIT_MS`: how long a message a replica pulled waits for a sign of life
    /// before another replica gets it ([`ListenerOptions::ack_wait`]).
    pub ack_wait: Duration,
}

/// A NATS user and its password (never logged).
#[derive(Debug, Clone)]
pub struct NatsCredentials {
    /// `NATS_USER`; the service's name when unset.
    pub user: Option<String>,
    pub password: Secret,
}

impl BusConfig {
    /// A server without users, one copy of the stream: what tests use.
    pub fn new(url: String, stream: String, subject_prefix: String) -> Self {
        Self {
            url,
            stream,
            subject_prefix,
            credentials: None,
            replicas: 1,
            ack_wait: DEFAULT_ACK_WAIT,
        }
    }

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let prefix: String = env.or("EVENTS_SUBJECT_PREFIX", "gittix".to_owned())?;
        if prefix.is_empty() || prefix.contains(['.', '*', '>', ' ']) {
            return Err(ConfigError::new(
                "EVENTS_SUBJECT_PREFIX",
                "must be one subject token (no dots, spaces or wildcards)",
            ));
        }
        let replicas: usize = env.or("NATS_STREAM_REPLICAS", 1)?;
        if !(1..=5).contains(&replicas) {
            return Err(ConfigError::new(
                "NATS_STREAM_REPLICAS",
                "must be 1 to 5 (JetStream's limit), and at most the cluster's servers",
            ));
        }
        Ok(Self {
            url: env.required("NATS_URL")?,
            stream: env.or("EVENTS_STREAM", "GITTIX".to_owned())?,
            subject_prefix: prefix,
            credentials: credentials_from_env(env)?,
            replicas,
            ack_wait: Duration::from_millis(
                env.or("EVENT_ACK_WAIT_MS", DEFAULT_ACK_WAIT.as_millis() as u64)?
                    .max(100),
            ),
        })
    }
}

/// `NATS_PASSWORD`, or the file `NATS_PASSWORD_FILE` names (a mounted secret), with
/// `NATS_USER`.
fn credentials_from_env(env: &Env) -> Result<Option<NatsCredentials>, ConfigError> {
    let user: Option<String> = env.optional("NATS_USER")?;
    let file: Option<String> = env.optional("NATS_PASSWORD_FILE")?;
    let password = match (env.optional_secret("NATS_PASSWORD"), file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "NATS_PASSWORD_FILE",
                "set it or NATS_PASSWORD, not both",
            ));
        }
        (Some(password), None) => Some(password),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|err| {
                ConfigError::new("NATS_PASSWORD_FILE", format!("cannot read {path}: {err}"))
            })?;
            let password = text.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(ConfigError::new(
                    "NATS_PASSWORD_FILE",
                    format!("{path} is empty"),
                ));
            }
            Some(Secret::new(password))
        }
        (None, None) => None,
    };
    match (user, password) {
        (Some(_), None) => Err(ConfigError::new(
            "NATS_USER",
            "is set without NATS_PASSWORD or NATS_PASSWORD_FILE",
        )),
        (user, Some(password)) => Ok(Some(NatsCredentials { user, password })),
        (None, None) => Ok(None),
    }
}

/// A connection to JetStream with the deployment's stream and subject naming.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    config: BusConfig,
    /// What the service may publish and consume, when it is one of
    /// [`bus_permissions::SERVICES`]: anything else is refused here, before NATS would.
    routes: Option<&'static ServiceRoutes>,
    /// Whether this user may change the stream's settings (see [`Self::ensure_stream`]).
    manages_stream: bool,
}

impl Bus {
    /// Connects as the service's NATS user (when credentials are configured) and makes
    /// sure the stream exists (safe to repeat, and safe for several services starting at
    /// once).
    pub async fn connect(config: &BusConfig, service: &str) -> anyhow::Result<Self> {
        let mut options = async_nats::ConnectOptions::new()
            .name(service)
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .event_callback(|event| async move { log_event(&event) });
        let user = config
            .credentials
            .as_ref()
            .map(|c| c.user.clone().unwrap_or_else(|| service.to_owned()));
        if let (Some(credentials), Some(user)) = (&config.credentials, &user) {
            // Replies come to an inbox only this user may subscribe to.
            options = options
                .user_and_password(user.clone(), credentials.password.expose().to_owned())
                .custom_inbox_prefix(bus_permissions::inbox_prefix(user));
        }
        let client = options.connect(&config.url).await.with_context(|| {
            format!("connecting to NATS at {}", without_credentials(&config.url))
        })?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(5));
        let bus = Self {
            client,
            js,
            config: config.clone(),
            routes: bus_permissions::of(service),
            // A service's own user may only create the stream; the operator's, or a
            // connection without users, applies changed settings too.
            manages_stream: user.is_none_or(|user| bus_permissions::of(&user).is_none()),
        };
        bus.ensure_stream().await?;
        Ok(bus)
    }

    /// Creates the stream if it is missing. Its settings are applied to an existing stream
    /// only by a user that may update it (`gittix stream`, as the operator): a service's
    /// user may not, so that no service can shorten the retention or change the subjects
    /// of every other service's events. A service finding other settings says so.
    async fn ensure_stream(&self) -> anyhow::Result<()> {
        let config = stream::Config {
            name: self.config.stream.clone(),
            subjects: vec![format!("{}.>", self.config.subject_prefix)],
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            max_age: MAX_AGE,
            num_replicas: self.config.replicas,
            ..Default::default()
        };
        let name = &self.config.stream;
        if self.manages_stream {
            self.js
                .create_or_update_stream(config)
                .await
                .with_context(|| format!("creating or updating stream {name}"))?;
            return Ok(());
        }
        let stream = self
            .js
            .get_or_create_stream(config.clone())
            .await
            .with_context(|| format!("looking up or creating stream {name}"))?;
        let found = &stream.cached_info().config;
        // Every service may create the stream when it is missing, so whichever comes first
        // on a fresh server chose its settings: one that copies events elsewhere would leak
        // them (the reset tokens) past the permissions. Refused, loudly, by every service.
        if let Some(problem) = leaks(found, &config) {
            bail!(
                "stream {name} {problem}: refusing to use it; recreate it as the NATS admin \
                 user (`gittix stream`)"
            );
        }
        if found.duplicate_window != config.duplicate_window
            || found.max_age != config.max_age
            || found.num_replicas != config.num_replicas
        {
            tracing::warn!(
                stream = %name,
                replicas = found.num_replicas,
                wanted_replicas = config.num_replicas,
                "the stream's settings differ from this service's; `gittix stream` (as the \
                 NATS admin user) applies them"
            );
        }
        Ok(())
    }

    /// Refuses to consume what the service's routes do not list (the NATS user could not
    /// create the consumer either): called for every listener.
    pub fn check_consumes(&self, service: &str, event_subject: &str) -> anyhow::Result<()> {
        match self.routes {
            Some(routes) if routes.service != service || !routes.may_consume(event_subject) => {
                bail!(
                    "{} may not consume {event_subject} as {service}: \
                     common::bus_permissions does not list it (its NATS user could not); \
                     add it there and regenerate infra/nats/permissions.json",
                    routes.service
                )
            }
            _ => Ok(()),
        }
    }

    /// Every publish of one of the service's own events from now on, as it happens: a plain
    /// NATS subscription (no stream history, no redelivery, a duplicate publish seen
    /// twice), for live views. Only what [`ServiceRoutes::watches`] lists.
    pub async fn watch(&self, event_subject: &str) -> anyhow::Result<async_nats::Subscriber> {
        if let Some(routes) = self.routes
            && !routes.may_watch(event_subject)
        {
            bail!(
                "{} may not watch {event_subject}: common::bus_permissions does not list it",
                routes.service
            );
        }
        let subject = self.subject(event_subject);
        self.client
            .subscribe(subject.clone())
            .await
            .with_context(|| format!("subscribing to {subject}"))
    }

    /// Refuses to publish what the service's routes do not list, other than its own dead
    /// letters.
    fn check_publishes(&self, subject: &str) -> anyhow::Result<()> {
        let Some(routes) = self.routes else {
            return Ok(());
        };
        let event_subject = subject
            .strip_prefix(&self.config.subject_prefix)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(subject);
        let own_dead_letters = format!("dead.{}.", routes.service);
        if routes.may_publish(event_subject) || event_subject.starts_with(&own_dead_letters) {
            return Ok(());
        }
        bail!(
            "{} may not publish {event_subject}: common::bus_permissions does not list it \
             (its NATS user could not); add it there and regenerate \
             infra/nats/permissions.json",
            routes.service
        )
    }

    /// The listener settings of this deployment (its ack wait).
    pub fn listener_options(&self) -> ListenerOptions {
        ListenerOptions {
            ack_wait: self.config.ack_wait,
            ..ListenerOptions::default()
        }
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
        self.check_publishes(&subject)?;
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

/// What the connection reports, logged: a refused permission names what was refused,
/// rather than leaving a request to time out unexplained.
fn log_event(event: &async_nats::Event) {
    use async_nats::{Event, ServerError};
    match event {
        Event::ServerError(ServerError::AuthorizationViolation) => tracing::error!(
            "NATS refused this service's credentials (authorization violation): \
             check NATS_USER and NATS_PASSWORD / NATS_PASSWORD_FILE"
        ),
        Event::ServerError(ServerError::Other(message))
            if message
                .to_ascii_lowercase()
                .contains("permissions violation") =>
        {
            tracing::error!(
                error = %message,
                "NATS refused an operation: permission violation (this service's NATS user \
                 may not do it; see common::bus_permissions)"
            );
        }
        Event::ServerError(err) => tracing::warn!(error = %err, "NATS server error"),
        Event::Disconnected => tracing::warn!("disconnected from NATS; reconnecting"),
        Event::Connected => tracing::info!("connected to NATS"),
        other => tracing::debug!(event = %other, "NATS connection event"),
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

/// What makes a stream's settings copy or move events out of sight of the subject
/// permissions: other subjects than ours, a republish, a mirror, sources or a transform.
fn leaks(found: &stream::Config, expected: &stream::Config) -> Option<&'static str> {
    if found.subjects != expected.subjects {
        Some("holds other subjects than this deployment's")
    } else if found.republish.is_some() {
        Some("republishes its messages")
    } else if found.mirror.is_some() || found.sources.as_ref().is_some_and(|s| !s.is_empty()) {
        Some("mirrors or sources another stream")
    } else if found.subject_transform.is_some() {
        Some("transforms its subjects")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_stream_that_copies_events_elsewhere_leaks() {
        let ours = stream::Config {
            subjects: vec!["gittix.>".into()],
            ..Default::default()
        };
        assert_eq!(leaks(&ours.clone(), &ours), None);
        let wider = stream::Config {
            subjects: vec![">".into()],
            ..ours.clone()
        };
        let republished = stream::Config {
            republish: Some(stream::Republish {
                source: "gittix.user.password_reset_requested".into(),
                destination: "_INBOX_tickets.x".into(),
                headers_only: false,
            }),
            ..ours.clone()
        };
        let sourced = stream::Config {
            sources: Some(vec![stream::Source {
                name: "OTHER".into(),
                ..Default::default()
            }]),
            ..ours.clone()
        };
        for copy in [wider, republished, sourced] {
            assert!(leaks(&copy, &ours).is_some(), "{copy:?}");
        }
    }

    #[test]
    fn credentials_never_reach_the_logs() {
        assert_eq!(
            without_credentials("nats://user:secret@nats:4222"),
            "nats://nats:4222"
        );
        assert_eq!(without_credentials("nats://nats:4222"), "nats://nats:4222");
        assert_eq!(without_credentials("token@nats:4222"), "nats:4222");
    }

    fn config(pairs: &[(&str, &str)]) -> Result<BusConfig, ConfigError> {
        let mut all = vec![("NATS_URL", "nats://nats:4222")];
        all.extend_from_slice(pairs);
        BusConfig::from_env(&Env::from_pairs(all))
    }

    #[test]
    fn credentials_come_from_a_password_or_a_secret_file_and_are_never_printed() {
        assert!(config(&[]).unwrap().credentials.is_none());
        let with = config(&[("NATS_USER", "tickets"), ("NATS_PASSWORD", "s3cret")]).unwrap();
        let credentials = with.credentials.unwrap();
        assert_eq!(credentials.user.as_deref(), Some("tickets"));
        assert_eq!(credentials.password.expose(), "s3cret");
        assert!(!format!("{credentials:?}").contains("s3cret"));

        let file = std::env::temp_dir().join(format!("nats-pw-{}", uuid::Uuid::new_v4()));
        std::fs::write(&file, "from-file\n").unwrap();
        let path = file.to_str().unwrap();
        let from_file = config(&[("NATS_PASSWORD_FILE", path)]).unwrap();
        let credentials = from_file.credentials.unwrap();
        assert_eq!(credentials.password.expose(), "from-file");
        assert_eq!(credentials.user, None, "the service's name is the default");

        let both = config(&[("NATS_PASSWORD", "x"), ("NATS_PASSWORD_FILE", path)]);
        assert_eq!(both.unwrap_err().name, "NATS_PASSWORD_FILE");
        std::fs::remove_file(&file).unwrap();
        let missing = config(&[("NATS_PASSWORD_FILE", path)]).unwrap_err();
        assert_eq!(missing.name, "NATS_PASSWORD_FILE");
        assert_eq!(
            config(&[("NATS_USER", "tickets")]).unwrap_err().name,
            "NATS_USER"
        );
    }

    #[test]
    fn stream_replicas_default_to_one_and_stay_within_jetstreams_limit() {
        assert_eq!(config(&[]).unwrap().replicas, 1);
        assert_eq!(
            config(&[("NATS_STREAM_REPLICAS", "3")]).unwrap().replicas,
            3
        );
        for bad in ["0", "6", "three"] {
            let err = config(&[("NATS_STREAM_REPLICAS", bad)]).unwrap_err();
            assert_eq!(err.name, "NATS_STREAM_REPLICAS", "{bad}");
        }
    }
}
