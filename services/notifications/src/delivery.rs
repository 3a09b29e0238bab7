//! Sending an email at most once per event, however often the event is delivered.
//!
//! Every email has a delivery record, unique per (event id, template). It is **claimed**
//! (inserted) *before* the send and marked sent after it; a delivery that finds the claim
//! taken never sends. That is at-most-once, chosen deliberately: between the provider
//! accepting a message and the record saying so there is a window no design closes (a
//! crash there), and a lost email is better than a duplicate one (a second receipt, a
//! second password-reset link). The cost:
//!
//! - a process that dies between claim and send loses that email: a later delivery finds
//!   the claim still `claimed`, logs it and counts it in `emails_possibly_lost_total`. Only
//!   once the claim is older than a handler may run ([`claim_in_flight`], 45 s): before that its
//!   holder may still be sending (a holder cut off from NATS for longer than the ack wait
//!   runs on while its event goes to another replica), and may yet release it after a
//!   refusal, so the later delivery looks again when the claim turns old instead of acking
//!   now — acking then would lose an email the holder gives back;
//! - a send whose outcome is unknown (a timeout or a dropped connection after the message
//!   was handed over) is recorded `unknown`, logged and counted the same way, never
//!   retried.
//!
//! A failure that *proves* the provider did not accept the message (connection refused
//! before the message was sent, SMTP 4xx/5xx answers, SendGrid 429/5xx/4xx) releases the
//! claim: a 4xx-class refusal is dead-lettered with its reason (a redrive may send it once
//! fixed), anything else is retried with back-off. Every claim has an id of its own, and
//! only its holder marks it sent or releases it: a stale holder never touches a newer
//! claim.
//!
//! An email of no use any more is not sent (nor claimed): its event is older than
//! `MAIL_MAX_EVENT_AGE_HOURS` (a first deployment reads the stream's history), or what it
//! offers has expired (a reservation's pay-by time, a reset link's validity). Handlers
//! check that ([`Postman::useless`]) before looking up the records the email needs, so an
//! expired event whose records never arrive is acked, not retried until dead-lettered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use common::events::Envelope;
use common::listener::{ListenerOptions, Outcome};
use lettre::message::Mailbox;
use minijinja::Value;

use crate::store::{Claim, ClaimId, Delivery, DeliveryState, Store};
use crate::templates::{RenderError, Template, Templates};
use crate::transport::{Email, Mailer, SendError};

/// How long after its claim a `claimed` record may still have a live holder: the longest a
/// handler runs (the listener's limit) plus a margin for clock differences between
/// replicas (`claimedAt` is the claimer's clock) and for the claimer's last writes.
pub fn claim_in_flight() -> Duration {
    ListenerOptions::default().handler_limit() + CLAIM_MARGIN
}

/// See [`claim_in_flight`].
pub const CLAIM_MARGIN: Duration = Duration::from_secs(15);

/// How soon a delivery that found the email's record gone in between tries again (the
/// listener backs off from there); a claim that turns old sooner is looked at after this.
const RETRY_CLAIMED: Duration = Duration::from_secs(1);

/// What a delivery does with an email another delivery claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Its holder may still be sending, and may give it back: look again when this much
    /// more time has passed, when the claim stops counting as in flight.
    Wait(Duration),
    /// Sent, outcome unknown, or claimed by a holder that died (possibly lost): ack.
    Suppress,
}

/// What to do with `found`, another delivery's record of the email, at `now`.
pub fn taken(found: &Delivery, now: bson::DateTime) -> Taken {
    match found.state {
        DeliveryState::Claimed => {
            let age = now
                .timestamp_millis()
                .saturating_sub(found.claimed_at.timestamp_millis());
            let in_flight = i64::try_from(claim_in_flight().as_millis()).unwrap_or(i64::MAX);
            if age < in_flight {
                let left = u64::try_from(in_flight - age).unwrap_or(0);
                Taken::Wait(Duration::from_millis(left))
            } else {
                Taken::Suppress
            }
        }
        DeliveryState::Sent | DeliveryState::Unknown => Taken::Suppress,
    }
}

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
    /// True (logged and counted) when the email would be of no use any more: its handler
    /// acks without looking anything up.
    pub fn useless(&self, occasion: &Occasion<'_>, template: Template) -> bool {
        let Some(why) = occasion.pointless(Utc::now(), self.max_event_age) else {
            return false;
        };
        let name = template.name();
        metrics::counter!("emails_skipped_total", "template" => name, "why" => why).increment(1);
        tracing::info!(
            template = name,
            event_id = occasion.event_id,
            why,
            "email of no use any more; not sent"
        );
        true
    }

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
        if self.useless(&occasion, template) {
            return Outcome::Ack;
        }
        // Rendered before claiming: a broken template leaves nothing claimed. (Redis, the
        // compiled-template cache, cannot fail a render: it is compiled here instead.)
        let rendered = match self.templates.render(template, vars).await {
            Ok(rendered) => rendered,
            Err(err @ RenderError::Template { .. }) => {
                return Outcome::Reject(err.to_string());
            }
        };
        let key = Delivery::key(event_id, template);
        let claim = match self.store.claim(&key, event_id, template).await {
            Ok(Claim::Won(claim)) => claim,
            Ok(Claim::Taken(found)) => match taken(&found, bson::DateTime::now()) {
                Taken::Wait(left) => {
                    tracing::info!(
                        template = name,
                        delivery = key,
                        "email claimed by a delivery that may still be sending; will look again"
                    );
                    // Soon (the holder may give it back), and never after the claim stops
                    // counting as in flight: the listener's backoff alone would overshoot
                    // that by up to a minute, and a holder that died would hold its event
                    // that much longer.
                    return Outcome::RetryBefore(left.max(RETRY_CLAIMED));
                }
                Taken::Suppress => return suppressed(template, &key, found.state),
            },
            Ok(Claim::Vanished) => {
                tracing::info!(
                    template = name,
                    delivery = key,
                    "email's claim released as it was read; will claim it again"
                );
                return Outcome::Retry(RETRY_CLAIMED);
            }
            Err(err) => return err.into(),
        };
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
                match self.store.mark_sent(&key, &claim).await {
                    Ok(true) => {}
                    // Sent all the same; the claim alone keeps it from being sent again.
                    Ok(false) => {
                        tracing::warn!(
                            delivery = key,
                            "email sent, but its claim is no longer this delivery's; not recorded as sent"
                        );
                    }
                    Err(err) => {
                        tracing::warn!(delivery = key, error = %err, "email sent but not recorded as sent");
                    }
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
                match self.store.mark_unknown(&key, &claim, &reason).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            delivery = key,
                            "the claim is no longer this delivery's; unknown outcome not recorded"
                        );
                    }
                    Err(err) => {
                        tracing::warn!(delivery = key, error = %err, "cannot record the unknown outcome; the claim stays");
                    }
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
                self.release(&key, &claim).await;
                Outcome::Retry(after.unwrap_or(Duration::from_secs(1)))
            }
            Err(SendError::Refused(reason)) => {
                failed(template, "refused");
                self.release(&key, &claim).await;
                Outcome::Reject(format!("{name} email refused: {reason}"))
            }
        }
    }

    async fn release(&self, key: &str, claim: &ClaimId) {
        match self.store.release(key, claim).await {
            Ok(true) => {}
            // Not ours any more: whoever holds it now decides.
            Ok(false) => {
                tracing::warn!(
                    delivery = key,
                    "the claim to release is no longer this delivery's; left as it is"
                );
            }
            // The claim stays: the next delivery will not send (at most once).
            Err(err) => {
                tracing::error!(delivery = key, error = %err, "cannot release the claim of an email that was not accepted; it will not be sent");
            }
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
            // The claimer died between claim and record (its claim is older than any
            // handler runs): the one window at-most-once gives up.
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn found(state: DeliveryState, age: Duration) -> Delivery {
        let now = bson::DateTime::now().timestamp_millis();
        Delivery {
            id: "e:welcome".into(),
            event_id: "e".into(),
            template: "welcome".into(),
            state,
            claimed_at: bson::DateTime::from_millis(now - i64::try_from(age.as_millis()).unwrap()),
            claim_id: Some(ClaimId::new().0),
            sent_at: None,
            error: None,
        }
    }

    #[test]
    fn a_claim_whose_holder_may_still_run_is_waited_for_and_an_older_one_given_up() {
        let now = bson::DateTime::now();
        assert!(claim_in_flight() > ListenerOptions::default().handler_limit());
        let young = found(DeliveryState::Claimed, Duration::from_secs(5));
        assert!(
            matches!(taken(&young, now), Taken::Wait(left) if left > claim_in_flight() - Duration::from_secs(6) && left <= claim_in_flight() - Duration::from_secs(5))
        );
        let at_the_limit = found(
            DeliveryState::Claimed,
            ListenerOptions::default().handler_limit(),
        );
        assert!(matches!(taken(&at_the_limit, now), Taken::Wait(left) if left <= CLAIM_MARGIN));
        let old = found(
            DeliveryState::Claimed,
            claim_in_flight() + Duration::from_secs(1),
        );
        assert_eq!(taken(&old, now), Taken::Suppress);
        for state in [DeliveryState::Sent, DeliveryState::Unknown] {
            assert_eq!(
                taken(&found(state, Duration::ZERO), now),
                Taken::Suppress,
                "{state:?}"
            );
        }
    }
}
