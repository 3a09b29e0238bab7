//! Sending an email at most once per event, however often the event is delivered.
//!
//! Every email has a delivery record, unique per (event id, template). It is **claimed**
//! (inserted) *before* the send and marked sent after it; a delivery that finds the claim
//! taken never sends. That is at-most-once, chosen deliberately: between the provider
//! accepting a message and the record saying so there is a window no design closes (a
//! crash there), and a lost email is better than a duplicate one (a second receipt, a
//! second password-reset link). The cost:
//!
//! - a process that dies between claim and send loses that email: the next delivery finds
//!   the claim still `claimed`, logs it and counts it in `emails_possibly_lost_total`;
//! - a send whose outcome is unknown (a timeout or a dropped connection after the message
//!   was handed over) is recorded `unknown`, logged and counted the same way, never
//!   retried.
//!
//! A failure that *proves* the provider did not accept the message (connection refused
//! before the message was sent, SMTP 4xx/5xx answers, SendGrid 429/5xx/4xx) releases the
//! claim: a 4xx-class refusal is dead-lettered with its reason (a redrive may send it once
//! fixed), anything else is retried with back-off.
//!
//! An email of no use any more is not sent (nor claimed): its event is older than
//! `MAIL_MAX_EVENT_AGE_HOURS` (a first deployment reads the stream's history), or what it
//! offers has expired (a reservation's pay-by time, a reset link's validity).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use common::events::Envelope;
use common::listener::Outcome;
use lettre::message::Mailbox;
use minijinja::Value;

use crate::store::{Claim, Delivery, DeliveryState, Store};
use crate::templates::{RenderError, Template, Templates};
use crate::transport::{Email, Mailer, SendError};

/// What an email needs besides its content.
#[derive(Clone)]
pub struct Postman {
    pub store: Store,
    pub templates: Templates,
    pub mailer: Arc<dyn Mailer>,
    pub from: Mailbox,
    /// Events older than this send nothing (`MAIL_MAX_EVENT_AGE_HOURS`).
    pub max_event_age: Duration,
}

/// The event an email is for: its id (with the template, the email's identity), when it
/// happened, and until when the email is of any use (a reservation's pay-by time, a reset
/// link's expiry).
#[derive(Debug, Clone, Copy)]
pub struct Occasion<'a> {
    pub event_id: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub useful_until: Option<DateTime<Utc>>,
}

impl<'a> Occasion<'a> {
    pub fn of<E>(event: &'a Envelope<E>, event_id: &'a str) -> Self {
        Self {
            event_id,
            occurred_at: event.occurred_at,
            useful_until: None,
        }
    }

    pub fn useful_until(self, until: DateTime<Utc>) -> Self {
        Self {
            useful_until: Some(until),
            ..self
        }
    }

    /// Why this email would be of no use now, if it would not.
    fn pointless(&self, now: DateTime<Utc>, max_age: Duration) -> Option<&'static str> {
        let age = (now - self.occurred_at).to_std().unwrap_or_default();
        if age > max_age {
            Some("stale")
        } else if self.useful_until.is_some_and(|until| until <= now) {
            Some("expired")
        } else {
            None
        }
    }
}

impl Postman {
    /// Sends `template` with `vars` to `to` for the event, unless a delivery of that event
    /// claimed it before, or it is of no use any more. The answer is the listener's outcome.
    pub async fn deliver(
        &self,
        occasion: Occasion<'_>,
        template: Template,
        to: &str,
        vars: Value,
    ) -> Outcome {
        let name = template.name();
        let event_id = occasion.event_id;
        if let Some(why) = occasion.pointless(Utc::now(), self.max_event_age) {
            metrics::counter!("emails_skipped_total", "template" => name, "why" => why)
                .increment(1);
            tracing::info!(
                template = name,
                event_id,
                why,
                "email of no use any more; not sent"
            );
            return Outcome::Ack;
        }
        // Rendered before claiming: a template or cache failure leaves nothing claimed.
        let rendered = match self.templates.render(template, vars).await {
            Ok(rendered) => rendered,
            Err(err @ RenderError::Template { .. }) => {
                return Outcome::Reject(err.to_string());
            }
            Err(err) => return Outcome::retry_after_error(&err.into()),
        };
        let key = Delivery::key(event_id, template);
        match self.store.claim(&key, event_id, template).await {
            Ok(Claim::Won) => {}
            Ok(Claim::Taken(state)) => return suppressed(template, &key, state),
            Err(err) => return Outcome::retry_after_error(&err.into()),
        }
        let email = Email {
            from: self.from.clone(),
            to: to.to_owned(),
            subject: rendered.subject,
            html: rendered.html,
            text: rendered.text,
            id: key.replace(':', "."),
        };
        let started = Instant::now();
        let sent = self.mailer.send(&email).await;
        metrics::histogram!("email_send_duration_seconds", "transport" => self.mailer.name())
            .record(started.elapsed().as_secs_f64());
        match sent {
            Ok(()) => {
                metrics::counter!("emails_sent_total", "template" => name).increment(1);
                tracing::info!(template = name, delivery = key, "email sent");
                if let Err(err) = self.store.mark_sent(&key).await {
                    // Sent all the same; the claim alone keeps it from being sent again.
                    tracing::warn!(delivery = key, error = %err, "email sent but not recorded as sent");
                }
                Outcome::Ack
            }
            Err(SendError::Unknown(reason)) => {
                failed(template, "unknown");
                metrics::counter!("emails_possibly_lost_total", "template" => name).increment(1);
                tracing::error!(
                    template = name,
                    delivery = key,
                    reason,
                    "email may or may not have been delivered; not sent again (at most once)"
                );
                if let Err(err) = self.store.mark_unknown(&key, &reason).await {
                    tracing::warn!(delivery = key, error = %err, "cannot record the unknown outcome; the claim stays");
                }
                Outcome::Ack
            }
            Err(SendError::Transient { reason, after }) => {
                failed(template, "transient");
                tracing::warn!(
                    template = name,
                    delivery = key,
                    reason,
                    "email not accepted; will retry"
                );
                self.release(&key).await;
                Outcome::Retry(after.unwrap_or(Duration::from_secs(1)))
            }
            Err(SendError::Refused(reason)) => {
                failed(template, "refused");
                self.release(&key).await;
                Outcome::Reject(format!("{name} email refused: {reason}"))
            }
        }
    }

    async fn release(&self, key: &str) {
        if let Err(err) = self.store.release(key).await {
            // The claim stays: the next delivery will not send (at most once).
            tracing::error!(delivery = key, error = %err, "cannot release the claim of an email that was not accepted; it will not be sent");
        }
    }
}

fn failed(template: Template, failure: &'static str) {
    metrics::counter!("emails_failed_total", "template" => template.name(), "failure" => failure)
        .increment(1);
}

/// A delivery found the email claimed by an earlier one: never sent again.
fn suppressed(template: Template, key: &str, state: DeliveryState) -> Outcome {
    let name = template.name();
    metrics::counter!("emails_suppressed_total", "template" => name).increment(1);
    match state {
        DeliveryState::Sent => {
            tracing::info!(
                template = name,
                delivery = key,
                "email sent before; not again"
            );
        }
        DeliveryState::Unknown => {
            tracing::info!(
                template = name,
                delivery = key,
                "email's earlier send has an unknown outcome; not again"
            );
        }
        DeliveryState::Claimed => {
            // The claimer died between claim and record (or is still sending): the one
            // window at-most-once gives up.
            metrics::counter!("emails_possibly_lost_total", "template" => name).increment(1);
            tracing::warn!(
                template = name,
                delivery = key,
                "email claimed by an earlier delivery that never recorded its send; not sent again (possibly lost)"
            );
        }
    }
    Outcome::Ack
}
