//! The order state machine, with no I/O.
//!
//! ```text
//! created ──pay──▶ complete
//!    └──cancel / expire──▶ cancelled
//! ```
//! Every transition bumps `version` and has an event, so replicas never wait on a gap.

use bson::oid::ObjectId;
use chrono::{DateTime, Utc};
use common::events::{OrderCancelled, OrderCompleted, OrderCreated, OrderTicket, OrderTicketRef};
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
        }
    }

    /// The buyer cancels: a paid order cannot be; a cancelled one stays as it is.
    pub fn cancel(&self) -> Result<Transition, CancelError> {
        match self.status {
            Status::Created => Ok(Transition::Apply(self.moved_to(Status::Cancelled))),
            Status::Cancelled => Ok(Transition::Unchanged),
            Status::Complete => Err(CancelError::Completed),
        }
    }

    /// The payment window passed: only an unpaid order is cancelled.
    pub fn expire(&self) -> Transition {
        match self.status {
            Status::Created => Transition::Apply(self.moved_to(Status::Cancelled)),
            Status::Cancelled | Status::Complete => Transition::Unchanged,
        }
    }

    /// A payment arrived. `None` when the order was cancelled meanwhile: a paid but
    /// cancelled order is a conflict to refund, never a resurrection.
    pub fn complete(&self) -> Option<Transition> {
        match self.status {
            Status::Created => Some(Transition::Apply(self.moved_to(Status::Complete))),
            Status::Complete => Some(Transition::Unchanged),
            Status::Cancelled => None,
        }
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::Created && self.expires_at <= now
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
        }
    }

    pub fn completed_event(&self) -> OrderCompleted {
        OrderCompleted {
            id: self.id.to_hex(),
            ticket: OrderTicketRef {
                id: self.ticket.id.clone(),
            },
            version: self.version,
            // Filled by the orders side of issue 13 (the payment that completed it).
            payment_id: None,
        }
    }
}

/// The orders service's copy of a ticket, kept from `ticket.*` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketReplica {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub title: String,
    pub price_cents: i64,
    pub user_id: String,
    pub version: i64,
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
            },
            Utc::now(),
        )
    }

    #[test]
    fn every_transition_bumps_the_version_once() {
        let Ok(Transition::Apply(cancelled)) = order().cancel() else {
            panic!()
        };
        assert_eq!(
            (cancelled.status, cancelled.version),
            (Status::Cancelled, 1)
        );
        assert_eq!(cancelled.cancel(), Ok(Transition::Unchanged));
        assert_eq!(cancelled.expire(), Transition::Unchanged);
        assert_eq!(
            cancelled.complete(),
            None,
            "paid after cancellation is a conflict"
        );

        let Some(Transition::Apply(paid)) = order().complete() else {
            panic!()
        };
        assert_eq!((paid.status, paid.version), (Status::Complete, 1));
        assert_eq!(paid.cancel(), Err(CancelError::Completed));
        assert_eq!(paid.expire(), Transition::Unchanged);
        assert_eq!(paid.complete(), Some(Transition::Unchanged));
    }

    #[test]
    fn only_unpaid_orders_past_their_window_are_expired() {
        let o = order();
        assert!(o.is_expired(o.expires_at));
        assert!(!o.is_expired(o.expires_at - chrono::Duration::seconds(1)));
        let Some(Transition::Apply(paid)) = o.complete() else {
            panic!()
        };
        assert!(!paid.is_expired(paid.expires_at));
    }
}
