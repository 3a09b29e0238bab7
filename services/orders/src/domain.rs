//! The order state machine, with no I/O.
//!
//! ```text
//! created ──pay──▶ complete
//!    └──cancel / expire──▶ cancelled
//! ```
//! Every transition bumps `version` and has an event, so replicas never wait on a gap.
//!
//! Two instants bound an unpaid order: `expiresAt`, the payment deadline the buyer sees
//! (payments accepts no charge after it), and `expiresAt + grace`, after which it may be
//! cancelled. The grace is longer than the longest charge attempt, so a charge accepted
//! just before the deadline completes the order instead of racing its cancellation.

use bson::oid::ObjectId;
use chrono::{DateTime, Utc};
use common::events::{
    CancelReason, OrderCancelled, OrderCompleted, OrderCreated, OrderSnapshot, OrderTicket,
    OrderTicketRef, TicketDetails,
};
use common::outbox::PendingEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Cancelled,
    Complete,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Cancelled => "cancelled",
            Self::Complete => "complete",
        }
    }
}

/// The ticket as the order saw it when it was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketSnapshot {
    pub id: String,
    pub title: String,
    pub price_cents: i64,
    /// Venue, date and seat (absent on orders placed before tickets carried them).
    #[serde(default)]
    pub details: Box<TicketDetails>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: String,
    pub status: Status,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub expires_at: DateTime<Utc>,
    pub ticket: TicketSnapshot,
    pub version: i64,
    /// The payment that completed the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Charges of this order that payments refunded (a payment that came too late, or a
    /// second one), as announced by `payment.refunded`.
    #[serde(default)]
    pub refunds: Vec<Refund>,
    /// Why a cancelled order was cancelled (absent on orders cancelled before reasons
    /// were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<CancelReason>,
}

/// A refunded charge, as the buyer is shown it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub payment_id: String,
    pub amount_cents: i64,
    pub currency: String,
}

/// A successful charge, as `payment.created` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReceived {
    pub id: String,
    pub amount_cents: i64,
    pub currency: String,
}

/// What a payment does to an order.
#[derive(Debug, PartialEq, Eq)]
pub enum Completion {
    /// It completes the order: the changed order.
    Apply(Order),
    /// Already completed by this payment (a redelivery).
    AlreadyComplete,
    /// It cannot complete the order: cancelled meanwhile, completed by another payment, or
    /// for another amount or currency. Payments refunds such a charge once the order ends.
    Refused(&'static str),
}

/// What the passing of time does to an unpaid order.
#[derive(Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Cancel it: the changed order.
    Apply(Order),
    /// Paid or cancelled already: nothing to do.
    Unchanged,
    /// A charge may still be in flight until the grace has passed: not before this long.
    NotYet(std::time::Duration),
}

/// Why an order cannot be cancelled by its buyer.
#[derive(Debug, PartialEq, Eq)]
pub enum CancelError {
    Completed,
}

/// The result of a transition: the changed order, or nothing to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Transition {
    Apply(Order),
    Unchanged,
}

impl Order {
    pub fn place(user_id: &str, ticket: TicketSnapshot, expires_at: DateTime<Utc>) -> Self {
        Self {
            id: ObjectId::new(),
            user_id: user_id.to_owned(),
            status: Status::Created,
            expires_at,
            ticket,
            version: 0,
            payment_id: None,
            refunds: Vec::new(),
            cancel_reason: None,
        }
    }

    /// The buyer cancels (or the buyer's ban does, by `reason`): a paid order cannot be;
    /// a cancelled one stays as it is.
    pub fn cancel(&self, reason: CancelReason) -> Result<Transition, CancelError> {
        match self.status {
            Status::Created => Ok(Transition::Apply(self.cancelled(reason))),
            Status::Cancelled => Ok(Transition::Unchanged),
            Status::Complete => Err(CancelError::Completed),
        }
    }

    /// The payment window passed: an unpaid order is cancelled once `grace` has passed
    /// after its deadline too, never while a charge accepted in time may still succeed.
    pub fn expire(&self, now: DateTime<Utc>, grace: std::time::Duration) -> Expiry {
        if self.status != Status::Created {
            return Expiry::Unchanged;
        }
        let cancellable_at =
            self.expires_at + chrono::Duration::from_std(grace).unwrap_or_default();
        match (cancellable_at - now).to_std() {
            Ok(wait) if !wait.is_zero() => Expiry::NotYet(wait),
            _ => Expiry::Apply(self.cancelled(CancelReason::Expired)),
        }
    }

    /// A payment arrived: it completes an unpaid order when it charged the order's price
    /// in the deployment's `currency`. A paid but cancelled order is never resurrected.
    pub fn complete(&self, payment: &PaymentReceived, currency: &str) -> Completion {
        match self.status {
            Status::Complete if self.payment_id.as_deref() == Some(payment.id.as_str()) => {
                Completion::AlreadyComplete
            }
            Status::Complete => Completion::Refused("the order was paid by another payment"),
            Status::Cancelled => Completion::Refused("the order was cancelled"),
            Status::Created if payment.amount_cents != self.ticket.price_cents => {
                Completion::Refused("the amount differs from the order's price")
            }
            Status::Created if !payment.currency.eq_ignore_ascii_case(currency) => {
                Completion::Refused("the currency differs from the order's")
            }
            Status::Created => Completion::Apply(Self {
                payment_id: Some(payment.id.clone()),
                ..self.moved_to(Status::Complete)
            }),
        }
    }

    /// Whether a buyer may be turned away for this order holding the ticket: true once
    /// it is cancellable (see [`Self::expire`]).
    pub fn is_lapsed(&self, now: DateTime<Utc>, grace: std::time::Duration) -> bool {
        matches!(self.expire(now, grace), Expiry::Apply(_))
    }

    fn cancelled(&self, reason: CancelReason) -> Self {
        Self {
            cancel_reason: Some(reason),
            ..self.moved_to(Status::Cancelled)
        }
    }

    fn moved_to(&self, status: Status) -> Self {
        Self {
            status,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// Whether this order holds its ticket (so no other order may).
    pub fn holds_ticket(&self) -> bool {
        matches!(self.status, Status::Created | Status::Complete)
    }

    /// The event announcing the order's current status.
    pub fn status_event(&self) -> PendingEvent {
        match self.status {
            Status::Created => PendingEvent::new(self.created_event()),
            Status::Cancelled => PendingEvent::new(self.cancelled_event()),
            Status::Complete => PendingEvent::new(self.completed_event()),
        }
    }

    pub fn created_event(&self) -> OrderCreated {
        OrderCreated {
            id: self.id.to_hex(),
            user_id: self.user_id.clone(),
            expires_at: self.expires_at,
            ticket: OrderTicket {
                id: self.ticket.id.clone(),
                price_cents: self.ticket.price_cents,
            },
            version: self.version,
        }
    }

    pub fn cancelled_event(&self) -> OrderCancelled {
        OrderCancelled {
            id: self.id.to_hex(),
            ticket: OrderTicketRef {
                id: self.ticket.id.clone(),
            },
            version: self.version,
            reason: self.cancel_reason,
        }
    }

    /// The order's whole state, for state transfer.
    pub fn snapshot_event(&self) -> PendingEvent {
        PendingEvent::new(OrderSnapshot {
            id: self.id.to_hex(),
            user_id: self.user_id.clone(),
            status: self.status.as_str().to_owned(),
            expires_at: self.expires_at,
            ticket: OrderTicket {
                id: self.ticket.id.clone(),
                price_cents: self.ticket.price_cents,
            },
            payment_id: self.payment_id.clone(),
            version: self.version,
        })
    }

    pub fn completed_event(&self) -> OrderCompleted {
        OrderCompleted {
            id: self.id.to_hex(),
            ticket: OrderTicketRef {
                id: self.ticket.id.clone(),
            },
            version: self.version,
            payment_id: self.payment_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn order() -> Order {
        Order::place(
            "buyer",
            TicketSnapshot {
                id: "t".into(),
                title: "Gig".into(),
                price_cents: 100,
                details: Box::default(),
            },
            Utc::now(),
        )
    }

    const GRACE: std::time::Duration = std::time::Duration::from_secs(30);

    fn payment(amount_cents: i64) -> PaymentReceived {
        PaymentReceived {
            id: "p1".into(),
            amount_cents,
            currency: "usd".into(),
        }
    }

    fn past_grace(order: &Order) -> DateTime<Utc> {
        order.expires_at + chrono::Duration::seconds(31)
    }

    #[test]
    fn every_transition_bumps_the_version_once() {
        let Ok(Transition::Apply(cancelled)) = order().cancel(CancelReason::Buyer) else {
            panic!()
        };
        assert_eq!(
            (cancelled.status, cancelled.version),
            (Status::Cancelled, 1)
        );
        assert_eq!(
            cancelled.cancelled_event().reason,
            Some(CancelReason::Buyer)
        );
        assert_eq!(
            cancelled.cancel(CancelReason::Banned),
            Ok(Transition::Unchanged)
        );
        assert_eq!(
            cancelled.expire(past_grace(&cancelled), GRACE),
            Expiry::Unchanged
        );
        assert!(
            matches!(
                cancelled.complete(&payment(100), "usd"),
                Completion::Refused(_)
            ),
            "paid after cancellation is refused, for a refund"
        );

        let Completion::Apply(paid) = order().complete(&payment(100), "usd") else {
            panic!()
        };
        assert_eq!((paid.status, paid.version), (Status::Complete, 1));
        assert_eq!(paid.payment_id.as_deref(), Some("p1"));
        assert_eq!(paid.completed_event().payment_id.as_deref(), Some("p1"));
        assert_eq!(
            paid.cancel(CancelReason::Buyer),
            Err(CancelError::Completed)
        );
        assert_eq!(paid.expire(past_grace(&paid), GRACE), Expiry::Unchanged);
        assert_eq!(
            paid.complete(&payment(100), "usd"),
            Completion::AlreadyComplete
        );
        let other = PaymentReceived {
            id: "p2".into(),
            ..payment(100)
        };
        assert!(matches!(
            paid.complete(&other, "usd"),
            Completion::Refused(_)
        ));
    }

    #[test]
    fn a_payment_completes_only_for_the_price_in_the_currency() {
        let o = order();
        assert!(matches!(
            o.complete(&payment(99), "usd"),
            Completion::Refused(_)
        ));
        assert!(matches!(
            o.complete(&payment(100), "eur"),
            Completion::Refused(_)
        ));
        assert!(matches!(
            o.complete(&payment(100), "USD"),
            Completion::Apply(_)
        ));
    }

    #[test]
    fn an_unpaid_order_is_cancelled_only_after_its_deadline_plus_the_grace() {
        let o = order();
        assert_eq!(
            o.expire(o.expires_at, GRACE),
            Expiry::NotYet(GRACE),
            "at the deadline a charge may still be in flight"
        );
        assert!(!o.is_lapsed(o.expires_at + chrono::Duration::seconds(29), GRACE));
        let Expiry::Apply(cancelled) =
            o.expire(o.expires_at + chrono::Duration::seconds(30), GRACE)
        else {
            panic!()
        };
        assert_eq!(
            (cancelled.status, cancelled.version),
            (Status::Cancelled, 1)
        );
        assert_eq!(
            cancelled.cancelled_event().reason,
            Some(CancelReason::Expired)
        );
        assert!(o.is_lapsed(past_grace(&o), GRACE));
        let Completion::Apply(paid) = o.complete(&payment(100), "usd") else {
            panic!()
        };
        assert!(!paid.is_lapsed(past_grace(&paid), GRACE));
    }
}
