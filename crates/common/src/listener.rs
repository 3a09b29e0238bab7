//! Consuming events: one durable pull consumer per service and subject, shared by every
//! replica of the service (the queue-group equivalent), with explicit acks.
//!
//! A handler answers with an [`Outcome`]. Errors and panics in a handler never stop the
//! process: a panic counts as a retry. A message that cannot be decoded, that a handler
//! rejects, or that has used up its deliveries goes to the dead-letter subject with the
//! reason, and is logged.

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{AckKind, Message};
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::events::{Envelope, Event};
use crate::outbox::PendingEvent;
use crate::shutdown::BackgroundTasks;
use crate::store::StoreResult;

/// What to do with a delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done (applied, or already applied before: handlers are idempotent).
    Ack,
    /// Not now: deliver again after the delay (a transient failure, or an earlier event
    /// has not arrived yet).
    Retry(Duration),
    /// Not now: deliver again with the usual backoff, but no later than this (the handler
    /// knows when waiting longer stops making sense, e.g. when another's claim turns old).
    RetryBefore(Duration),
    /// Never: dead-letter it with this reason.
    Reject(String),
    /// Not yet: the record this event changes is behind it (an earlier event is missing).
    /// Retried like [`Outcome::Retry`]; when the gap has not closed after
    /// [`RESYNC_AFTER_DELIVERIES`], `resync` (requests for the owners' full state of the
    /// records the gap may be about) is published, and again every so often, so a replica
    /// never diverges for good.
    Behind { resync: Vec<PendingEvent> },
}

/// Deliveries of an event that finds its record behind before the owner is asked for the
/// record's whole state (state transfer).
pub const RESYNC_AFTER_DELIVERIES: i64 = 4;

impl Outcome {
    /// The usual answer to an unexpected error: log it and try again shortly.
    pub fn retry_after_error(err: &anyhow::Error) -> Self {
        tracing::warn!(error = ?err, "handler failed; will retry");
        Self::Retry(Duration::from_secs(1))
    }
}

/// Consumer settings; the defaults suit every service (`Bus::listener_options` gives them
/// with the deployment's `EVENT_ACK_WAIT_MS`).
#[derive(Debug, Clone, Copy)]
pub struct ListenerOptions {
    /// How long the server waits for an ack, or for a sign of life, before it redelivers:
    /// the delay before a message held by a replica that died reaches another one. A
    /// replica that lives keeps what it holds alive (in-progress acks every third of it),
    /// so this can be short whatever the handlers take.
    pub ack_wait: Duration,
    /// Deliveries before a message is dead-lettered.
    pub max_deliver: i64,
    /// The longest a handler may run before it is aborted and its message retried.
    pub handler_timeout: Duration,
}

/// The default ack wait: well within an order's payment grace (30 s by default), so a
/// payment held by an orders replica that crashed completes its order rather than finding
/// it expired (and being refunded).
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(5);

impl Default for ListenerOptions {
    fn default() -> Self {
        Self {
            ack_wait: DEFAULT_ACK_WAIT,
            // With the backoff below, about 25 minutes of retrying: a database election
            // or a restart with a backlog does not dead-letter anything.
            max_deliver: 30,
            handler_timeout: Duration::from_secs(30),
        }
    }
}

impl ListenerOptions {
    /// The longest a handler may run before it is aborted (and its message retried). While
    /// it runs, its replica keeps the message alive, so another replica gets it only if
    /// this one dies or loses its connection for longer than the ack wait: a handler that
    /// finds work claimed less than this long ago may be looking at a claimer that is
    /// still running.
    pub fn handler_limit(&self) -> Duration {
        self.handler_timeout
    }

    /// How often a held message is kept alive: three times per ack wait, so one lost
    /// in-progress ack does not cost a redelivery.
    fn keepalive_period(&self) -> Duration {
        (self.ack_wait / 3).max(Duration::from_millis(100))
    }
}

/// Messages pulled per request. Each is kept alive while it waits, so a small batch is not
/// needed for correctness, only to share a backlog among replicas.
const BATCH: usize = 10;

/// How long a pull request waits on the server for messages before another is made.
const PULL_WAIT: Duration = Duration::from_secs(5);

/// The longest pause between two deliveries of a retried message.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// The delay before delivery `delivered + 1`: what the handler asked for, growing
/// exponentially with the deliveries so far (0.25 s, 0.5 s, 1 s, … up to a minute).
pub fn retry_delay(asked: Duration, delivered: i64) -> Duration {
    let exponent = u32::try_from(delivered.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    let backoff = Duration::from_millis(250).saturating_mul(2u32.saturating_pow(exponent));
    asked.max(backoff).min(MAX_RETRY_DELAY)
}

/// The durable consumer name of a service for an event, e.g. `tickets-order-created`.
pub fn durable_name(service: &str, event_subject: &str) -> String {
    format!("{service}-{}", event_subject.replace('.', "-"))
}

/// Starts consuming `E` as `service`, calling `handler` for each event until `shutdown`.
/// Creates the durable consumer if needed; fails only if that is impossible.
pub async fn spawn<E, F, Fut>(
    bus: &Bus,
    service: &str,
    options: ListenerOptions,
    handler: F,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>>
where
    E: Event,
    F: Fn(Envelope<E>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let consumer = create_consumer::<E>(bus, service, options).await?;
    let listener = Listener {
        bus: bus.clone(),
        service: service.to_owned(),
        consumer: durable_name(service, E::SUBJECT),
        options,
        handler: Arc::new(handler),
        _event: PhantomData,
    };
    Ok(tokio::spawn(listener.run(consumer, shutdown)))
}

/// One service's subscriptions: handlers that share a state (its store, say), each on a
/// consumer of its own, stopped with the service's background tasks.
pub struct Subscriptions<'a, S> {
    bus: &'a Bus,
    service: &'a str,
    state: S,
    options: ListenerOptions,
    tasks: &'a mut BackgroundTasks,
}

impl<'a, S: Clone + Send + Sync + 'static> Subscriptions<'a, S> {
    pub fn new(bus: &'a Bus, service: &'a str, state: S, tasks: &'a mut BackgroundTasks) -> Self {
        Self {
            bus,
            service,
            state,
            options: bus.listener_options(),
            tasks,
        }
    }

    /// Consumes `E` with `handler(state, event)`, which answers with an [`Outcome`] or a
    /// [`Handled`].
    pub async fn on<E, F, Fut>(&mut self, handler: F) -> anyhow::Result<&mut Self>
    where
        E: Event,
        F: Fn(S, Envelope<E>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output: Into<Outcome>> + Send + 'static,
    {
        let state = self.state.clone();
        let handle = spawn(
            self.bus,
            self.service,
            self.options,
            move |event: Envelope<E>| {
                let handled = handler(state.clone(), event);
                async move { handled.await.into() }
            },
            self.tasks.token(),
        )
        .await?;
        self.tasks.push(handle);
        Ok(self)
    }
}

async fn create_consumer<E: Event>(
    bus: &Bus,
    service: &str,
    options: ListenerOptions,
) -> anyhow::Result<PullConsumer> {
    bus.check_consumes(service, E::SUBJECT)?;
    let name = durable_name(service, E::SUBJECT);
    let stream = bus
        .jetstream()
        .get_stream(bus.stream_name())
        .await
        .with_context(|| format!("opening stream {}", bus.stream_name()))?;
    // Create or update: a deployment that changes these settings gets them on its
    // existing consumer, with the position it had.
    stream
        .create_consumer(pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: bus.subject(E::SUBJECT),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: options.ack_wait,
            // Unlimited: the listener counts deliveries and dead-letters at its own limit,
            // and a message whose dead-lettering failed must come again, not be dropped.
            max_deliver: -1,
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating or updating consumer {name}"))
}

struct Listener<E, F> {
    bus: Bus,
    service: String,
    /// The durable consumer's name: in logs and as the metrics' `consumer` label.
    consumer: String,
    options: ListenerOptions,
    handler: Arc<F>,
    _event: PhantomData<fn(E)>,
}

impl<E, F, Fut> Listener<E, F>
where
    E: Event,
    F: Fn(Envelope<E>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    /// Pulls and handles messages one at a time until `shutdown`. Every message this
    /// replica holds (the one being handled and those pulled behind it) is kept alive
    /// with in-progress acks, so the ack wait bounds only how long a message held by a
    /// replica that died waits for another.
    async fn run(self, consumer: PullConsumer, shutdown: CancellationToken) {
        let consumer_name = &self.consumer;
        let period = self.options.keepalive_period();
        // One clock for everything held: a message waiting behind quick handlers is kept
        // alive as surely as one behind a slow handler.
        let mut keepalive = tokio::time::interval(period);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !shutdown.is_cancelled() {
            // One request of at most BATCH messages, the next only when all of it is
            // handled: the server never hands this replica more than it keeps alive (a
            // self-refilling pull would leave messages unseen in the client's buffer).
            let pull = consumer
                .batch()
                .max_messages(BATCH)
                .expires(PULL_WAIT)
                .messages();
            let mut batch = tokio::select! {
                () = shutdown.cancelled() => return,
                pull = pull => match pull {
                    Ok(batch) => batch,
                    Err(err) => {
                        tracing::warn!(consumer = consumer_name, error = %err, "cannot pull; retrying");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        }
                    }
                },
            };
            // Pulled and not handled yet.
            let mut held = VecDeque::<Message>::new();
            let mut ended = false;
            loop {
                let message = match held.pop_front() {
                    Some(message) => message,
                    None if ended => break,
                    None => {
                        let next = tokio::select! {
                            () = shutdown.cancelled() => return,
                            next = batch.next() => next,
                        };
                        match next {
                            Some(Ok(message)) => message,
                            Some(Err(err)) => {
                                tracing::debug!(consumer = consumer_name, error = %err, "pull error");
                                continue;
                            }
                            None => break,
                        }
                    }
                };
                let work = self.process(&message);
                tokio::pin!(work);
                loop {
                    tokio::select! {
                        () = &mut work => break,
                        _ = keepalive.tick() => {
                            keep_alive(std::iter::once(&message).chain(held.iter())).await;
                        }
                        // Take the rest of the batch as it comes, to keep it alive.
                        next = batch.next(), if !ended => match next {
                            Some(Ok(pulled)) => held.push_back(pulled),
                            Some(Err(err)) => {
                                tracing::debug!(consumer = consumer_name, error = %err, "pull error");
                            }
                            None => ended = true,
                        },
                        // Stopping: what was not started goes to another replica now;
                        // the handling under way finishes.
                        () = shutdown.cancelled(), if !ended => {
                            ended = true;
                            release(std::mem::take(&mut held)).await;
                        }
                    }
                }
                if shutdown.is_cancelled() {
                    return release(held).await;
                }
            }
        }
    }

    async fn process(&self, message: &Message) {
        if redriven_for_another_service(message, &self.service) {
            if let Err(err) = message.ack().await {
                tracing::debug!(error = %err, "ack of another service's redriven event failed");
            }
            return;
        }
        let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
        // What the consumer still has to deliver after this one (0 once caught up).
        if let Ok(info) = message.info() {
            metrics::gauge!("events_pending", "consumer" => self.consumer.clone())
                .set(info.pending as f64);
        }
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(name))
                .map(|value| value.as_str())
        };
        let cause = Cause {
            request_id: header(crate::request_id::HEADER).and_then(crate::request_id::accept),
            traceparent: header(crate::trace_context::HEADER).map(str::to_owned),
        };
        let started = std::time::Instant::now();
        let outcome = match serde_json::from_slice::<Envelope<E>>(&message.payload) {
            Err(err) => Outcome::Reject(format!("malformed {} event: {err}", E::SUBJECT)),
            Ok(envelope) => self.handle(envelope, cause).await,
        };
        let consumer = &self.consumer;
        metrics::histogram!("event_handle_duration_seconds", "consumer" => consumer.clone())
            .record(started.elapsed().as_secs_f64());
        if let Outcome::Behind { resync } = &outcome {
            self.request_resync(resync, delivered).await;
        }
        let outcome = match outcome {
            Outcome::Retry(_) | Outcome::RetryBefore(_) | Outcome::Behind { .. }
                if delivered >= self.options.max_deliver =>
            {
                Outcome::Reject(format!("gave up after {delivered} deliveries"))
            }
            other => other,
        };
        let kind = match &outcome {
            Outcome::Ack => "ack",
            Outcome::Retry(_) | Outcome::RetryBefore(_) => "retry",
            Outcome::Behind { .. } => "behind",
            Outcome::Reject(_) => "dead_letter",
        };
        metrics::counter!("events_handled_total", "consumer" => consumer.clone(), "outcome" => kind)
            .increment(1);
        if delivered > 1 {
            metrics::counter!("events_redelivered_total", "consumer" => consumer.clone())
                .increment(1);
        }
        let ack = match outcome {
            Outcome::Ack => AckKind::Ack,
            Outcome::Retry(delay) => AckKind::Nak(Some(retry_delay(delay, delivered))),
            Outcome::RetryBefore(latest) => {
                AckKind::Nak(Some(retry_delay(Duration::ZERO, delivered).min(latest)))
            }
            Outcome::Behind { .. } => {
                AckKind::Nak(Some(retry_delay(Duration::from_millis(500), delivered)))
            }
            Outcome::Reject(reason) => {
                tracing::error!(
                    subject = E::SUBJECT,
                    service = self.service,
                    reason,
                    "dead-lettering message"
                );
                if let Err(err) = self
                    .bus
                    .publish_dead_letter(
                        &self.service,
                        E::SUBJECT,
                        &reason,
                        message.payload.clone(),
                    )
                    .await
                {
                    // Not stored as a dead letter: deliver it again, to try again.
                    tracing::error!(error = ?err, "cannot dead-letter; will be redelivered");
                    AckKind::Nak(Some(retry_delay(Duration::from_secs(1), delivered)))
                } else {
                    metrics::counter!("events_dead_lettered_total", "consumer" => consumer.clone())
                        .increment(1);
                    AckKind::Term
                }
            }
        };
        if let Err(err) = message.ack_with(ack).await {
            tracing::warn!(error = %err, "ack failed; the message will be redelivered");
        }
    }

    /// Asks the owner for the record's whole state when a gap has lasted (and on the last
    /// delivery, before the event is dead-lettered). The message id is derived from what
    /// the replica has and the delivery, so a redelivered ask is stored once.
    async fn request_resync(&self, requests: &[PendingEvent], delivered: i64) {
        let due = delivered >= RESYNC_AFTER_DELIVERIES
            && ((delivered - RESYNC_AFTER_DELIVERIES) % RESYNC_AFTER_DELIVERIES == 0
                || delivered >= self.options.max_deliver);
        if !due {
            return;
        }
        for resync in requests {
            tracing::warn!(
                subject = E::SUBJECT,
                delivered,
                request = resync.subject,
                "a gap has not closed; asking the owner for the record's state"
            );
            if let Err(err) = self
                .bus
                .publish_raw(
                    &resync.subject,
                    &format!("{}-{delivered}", resync.id),
                    resync.body.clone().into(),
                )
                .await
            {
                tracing::warn!(error = ?err, "cannot ask for a resync; will ask again");
            }
        }
    }

    /// Runs the handler in a task of its own, so that a panic is caught, and bounded by
    /// the handler timeout: a stuck handler is aborted and its message retried.
    /// It runs under the id of the request that caused the event: its log lines carry it,
    /// and so do the events it causes.
    async fn handle(&self, envelope: Envelope<E>, cause: Cause) -> Outcome {
        let event_id = envelope.id;
        let span = tracing::info_span!(
            "event",
            service = %self.service,
            subject = E::SUBJECT,
            %event_id,
            request_id = cause.request_id.as_deref().unwrap_or(""),
        );
        crate::trace_context::continue_from(&span, cause.traceparent.as_deref());
        let work = crate::request_id::scope(cause.request_id, (self.handler)(envelope));
        let mut task = tokio::spawn(tracing::Instrument::instrument(work, span));
        let limit = self.options.handler_limit();
        match tokio::time::timeout(limit, &mut task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join_error)) => {
                tracing::error!(%event_id, subject = E::SUBJECT, error = %join_error, "handler panicked; will retry");
                Outcome::Retry(Duration::from_secs(1))
            }
            Err(_) => {
                task.abort();
                tracing::warn!(%event_id, subject = E::SUBJECT, "handler timed out; will retry");
                Outcome::Retry(Duration::from_secs(1))
            }
        }
    }
}

/// Tells the server the messages are still being worked on: their ack wait starts again.
async fn keep_alive<'m>(messages: impl Iterator<Item = &'m Message>) {
    for message in messages {
        if let Err(err) = message.ack_with(AckKind::Progress).await {
            tracing::debug!(error = %err, "in-progress ack failed; the message may be redelivered");
        }
    }
}

/// Hands back what a stopping replica pulled but did not handle, for another replica now
/// rather than after the ack wait.
async fn release(held: VecDeque<Message>) {
    for message in held {
        if let Err(err) = message.ack_with(AckKind::Nak(None)).await {
            tracing::debug!(error = %err, "nak on shutdown failed; redelivered after the ack wait");
        }
    }
}

/// A dead letter replayed (`common::redrive`) for another service than `service`.
fn redriven_for_another_service(message: &Message, service: &str) -> bool {
    message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(crate::redrive::REDRIVE_FOR))
        .is_some_and(|target| target.as_str() != service)
}

/// A handler's answer written with `?`: `Err` is an answer reached early (a malformed id
/// rejected, a store failure retried: [`crate::store::StoreError`] converts), `Ok` the
/// answer at the end.
pub type Handled = Result<Outcome, Outcome>;

impl From<Handled> for Outcome {
    fn from(handled: Handled) -> Self {
        handled.unwrap_or_else(|early| early)
    }
}

/// An id carried by an event. A malformed one can never be applied, so the message is
/// rejected (dead-lettered) rather than retried.
pub fn event_id(raw: &str, what: &str) -> Result<bson::oid::ObjectId, Outcome> {
    raw.parse()
        .map_err(|_| Outcome::Reject(format!("malformed {what} id {raw:?}")))
}

/// How a replica should treat an update carrying `incoming`, given its own `local`
/// version of the record (`None`: it does not have the record yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionCheck {
    /// The next version: apply it.
    Apply,
    /// Already applied (a redelivery): ack without effect.
    AlreadyApplied,
    /// An earlier version is missing: retry later, it will arrive.
    Gap,
}

impl VersionCheck {
    pub fn of(local: Option<i64>, incoming: i64) -> Self {
        match local {
            None => Self::Gap,
            Some(local) if incoming <= local => Self::AlreadyApplied,
            Some(local) if incoming == local + 1 => Self::Apply,
            Some(_) => Self::Gap,
        }
    }

    /// As [`Self::outcome_when_not_applied`], asking the owner for the record's state
    /// (`resync`) when the gap lasts.
    pub fn outcome_when_behind(self, resync: impl FnOnce() -> PendingEvent) -> Outcome {
        match self {
            Self::Gap => Outcome::Behind {
                resync: vec![resync()],
            },
            other => other.outcome_when_not_applied(),
        }
    }

    /// The listener outcome when a version-checked write did not apply and a re-read
    /// gave this. `Apply` means the record reached the previous version meanwhile: try
    /// again at once rather than ack an update that was never written.
    pub fn outcome_when_not_applied(self) -> Outcome {
        match self {
            Self::AlreadyApplied => Outcome::Ack,
            Self::Apply => Outcome::Retry(Duration::ZERO),
            Self::Gap => Outcome::Retry(Duration::from_millis(500)),
        }
    }
}

/// What [`apply_in_order`] did with a replica's update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The update was written.
    Written,
    /// It was not: the replica holds `known_version` of the record (`None`: not the
    /// record at all), and `check` says what that means.
    NotWritten {
        check: VersionCheck,
        known_version: Option<i64>,
    },
}

impl Applied {
    /// The listener's answer: ack what was written, otherwise as
    /// [`VersionCheck::outcome_when_behind`], asking the owner for the record's state
    /// (`resync(known_version)`) when the gap lasts.
    pub fn outcome_when_behind(self, resync: impl FnOnce(Option<i64>) -> PendingEvent) -> Outcome {
        match self {
            Self::Written => Outcome::Ack,
            Self::NotWritten {
                check,
                known_version,
            } => check.outcome_when_behind(|| resync(known_version)),
        }
    }
}

/// Applies the update to version `incoming` of a replicated record in version order:
/// `write` writes it only on top of the version before (true when it did); when it did
/// not, `known_version` reads the version the replica holds, and [`VersionCheck`] says
/// whether the update was applied already or an earlier one is missing.
pub async fn apply_in_order(
    incoming: i64,
    write: impl Future<Output = StoreResult<bool>>,
    known_version: impl Future<Output = StoreResult<Option<i64>>>,
) -> StoreResult<Applied> {
    if write.await? {
        return Ok(Applied::Written);
    }
    let known_version = known_version.await?;
    Ok(Applied::NotWritten {
        check: VersionCheck::of(known_version, incoming),
        known_version,
    })
}

/// What a message says about the request that caused it (its headers): the request id
/// and the trace the handling continues.
struct Cause {
    request_id: Option<String>,
    traceparent: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn versions_apply_only_in_sequence() {
        assert_eq!(VersionCheck::of(Some(3), 4), VersionCheck::Apply);
        assert_eq!(VersionCheck::of(Some(3), 3), VersionCheck::AlreadyApplied);
        assert_eq!(VersionCheck::of(Some(3), 1), VersionCheck::AlreadyApplied);
        assert_eq!(VersionCheck::of(Some(3), 5), VersionCheck::Gap);
        assert_eq!(VersionCheck::of(None, 1), VersionCheck::Gap);
    }

    #[test]
    fn retries_back_off_exponentially_up_to_a_minute() {
        let asked = Duration::from_millis(100);
        assert_eq!(retry_delay(asked, 1), Duration::from_millis(250));
        assert_eq!(retry_delay(asked, 3), Duration::from_secs(1));
        assert_eq!(
            retry_delay(Duration::from_secs(5), 1),
            Duration::from_secs(5)
        );
        assert_eq!(retry_delay(asked, 29), MAX_RETRY_DELAY);
        assert_eq!(
            VersionCheck::Apply.outcome_when_not_applied(),
            Outcome::Retry(Duration::ZERO)
        );
    }

    #[tokio::test]
    async fn an_update_not_written_is_judged_by_the_version_read_back() {
        let written = apply_in_order(4, async { Ok(true) }, async { Ok(Some(3)) }).await;
        assert_eq!(written.unwrap(), Applied::Written);
        let again = apply_in_order(4, async { Ok(false) }, async { Ok(Some(4)) }).await;
        assert_eq!(
            again.unwrap(),
            Applied::NotWritten {
                check: VersionCheck::AlreadyApplied,
                known_version: Some(4)
            }
        );
        let missing = apply_in_order(4, async { Ok(false) }, async { Ok(None) })
            .await
            .unwrap();
        let resync = missing.outcome_when_behind(|known| {
            assert_eq!(known, None);
            PendingEvent::keyed(
                "k",
                crate::events::TicketResyncRequested {
                    id: "t".into(),
                    known_version: known,
                    requested_by: "test".into(),
                },
            )
        });
        assert!(matches!(resync, Outcome::Behind { resync } if resync.len() == 1));
        assert_eq!(Outcome::from(Handled::Err(Outcome::Ack)), Outcome::Ack);
    }

    #[test]
    fn durable_names_are_per_service_and_subject() {
        assert_eq!(
            durable_name("tickets", "order.created"),
            "tickets-order-created"
        );
    }
}
