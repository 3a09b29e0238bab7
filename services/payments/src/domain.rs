//! What becomes of a successful charge, with no I/O: every one either completes its
//! order or is refunded.
//!
//! ```text
//! succeeded ──order.completed names it──▶ settled
//!     └──order cancelled / another payment completed it / wrong amount──▶ refund_pending ──Stripe confirms──▶ refunded
//!                                                                              └──Stripe says failed──▶ refund_failed
//! ```
//! Intents payments created are remembered until closed: an open one (`requires_action`,
//! `requires_payment_method`, …) of an order that is over, or of an order whose buyer
//! started another attempt, is cancelled at Stripe.

use std::fmt;
use std::time::Duration;

use bson::oid::ObjectId;
use serde::{Deserialize, Serialize};

/// Declares a string id type: its own type so that two ids of different kinds cannot
/// be swapped where a function takes both. Stored and sent as the bare string.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

string_id! {
    /// An order's id as orders announces it (24 hex digits from orders, but kept as the
    /// string the event or the legacy record carried).
    OrderId
}

impl From<ObjectId> for OrderId {
    fn from(id: ObjectId) -> Self {
        Self(id.to_hex())
    }
}

string_id! {
    /// Stripe's PaymentIntent id, `pi_…` (a payment's `stripeId`, an intent's `_id`).
    IntentId
}

/// The state of a payment record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// Charged; waiting for the order's outcome.
    Succeeded,
    /// The payment that completed its order.
    Settled,
    /// To be refunded: the refund worker retries until Stripe confirms.
    RefundPending,
    /// Stripe confirmed the refund; `payment.refunded` was published.
    Refunded,
    /// Stripe refused or failed the refund for good: needs a person.
    RefundFailed,
}

impl PaymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Settled => "settled",
            Self::RefundPending => "refund_pending",
            Self::Refunded => "refunded",
            Self::RefundFailed => "refund_failed",
        }
    }

    /// Money the buyer has paid and not been given back (or about to be).
    pub fn is_kept(self) -> bool {
        matches!(self, Self::Succeeded | Self::Settled)
    }
}

/// Why a payment is refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// The order was cancelled (expired or by its buyer) before or while it was paid.
    OrderCancelled,
    /// The order was completed by another payment.
    Duplicate,
    /// The amount or currency charged is not the order's price.
    AmountMismatch,
}

impl RefundReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderCancelled => "order_cancelled",
            Self::Duplicate => "duplicate",
            Self::AmountMismatch => "amount_mismatch",
        }
    }
}

/// An order's status, as orders announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Reserved, awaiting payment.
    Created,
    Cancelled,
    /// Paid.
    Complete,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Cancelled => "cancelled",
            Self::Complete => "complete",
        }
    }

    /// The status an event names (`order.snapshot` carries it as a string); `None` for
    /// one orders does not write, which the listener rejects rather than guess at.
    pub fn from_event(status: &str) -> Option<Self> {
        match status {
            "created" => Some(Self::Created),
            "cancelled" => Some(Self::Cancelled),
            "complete" => Some(Self::Complete),
            _ => None,
        }
    }
}

/// The order as the replica knows it, reduced to what decides its payments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderOutcome {
    /// Still open (or unknown yet): a matching payment waits for the order's outcome.
    Open,
    Cancelled,
    /// Completed, naming the payment that completed it when the event says.
    Completed {
        payment_id: Option<String>,
    },
}

/// A payment, as [`decide`] needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFacts {
    pub id: String,
    pub state: PaymentState,
    pub amount_cents: i64,
    pub currency: String,
}

/// What to do with one payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Keep,
    Settle,
    Refund(RefundReason),
}

/// Decides every payment of one order at once (in the order they were recorded), given
/// the order's outcome and price. Only `succeeded` payments change.
pub fn decide(
    order: &OrderOutcome,
    price: Option<(i64, &str)>,
    payments: &[PaymentFacts],
) -> Vec<Decision> {
    let matches = |p: &PaymentFacts| {
        price.is_none_or(|(cents, currency)| p.amount_cents == cents && p.currency == currency)
    };
    // An order completed without naming its payment (an event from before
    // `paymentId`): the settled one, else the first matching one, completed it.
    let mut completer = match order {
        OrderOutcome::Completed {
            payment_id: Some(id),
        } => Some(id.clone()),
        OrderOutcome::Completed { payment_id: None } => payments
            .iter()
            .find(|p| p.state == PaymentState::Settled)
            .or_else(|| {
                payments
                    .iter()
                    .find(|p| p.state == PaymentState::Succeeded && matches(p))
            })
            .map(|p| p.id.clone()),
        _ => None,
    };
    payments
        .iter()
        .map(|p| {
            if p.state != PaymentState::Succeeded {
                return Decision::Keep;
            }
            match order {
                OrderOutcome::Cancelled => Decision::Refund(RefundReason::OrderCancelled),
                // Orders is the authority on what completed the order.
                OrderOutcome::Completed { .. } if completer.as_deref() == Some(p.id.as_str()) => {
                    completer = None;
                    Decision::Settle
                }
                _ if !matches(p) => Decision::Refund(RefundReason::AmountMismatch),
                OrderOutcome::Completed { .. } => Decision::Refund(RefundReason::Duplicate),
                OrderOutcome::Open => Decision::Keep,
            }
        })
        .collect()
}

/// Intent statuses that may still take money (the buyer can finish them).
pub const OPEN_INTENT_STATUSES: &[&str] = &[
    "requires_action",
    "requires_payment_method",
    "requires_confirmation",
    "requires_capture",
];

/// The pause before retry `attempts + 1` of a Stripe call that failed: 0.5 s doubling
/// up to five minutes, for ever (the state is in Mongo, so restarts keep it).
pub fn retry_delay(attempts: u32) -> Duration {
    Duration::from_millis(500)
        .saturating_mul(2u32.saturating_pow(attempts.min(16)))
        .min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(id: &str, state: PaymentState, amount_cents: i64) -> PaymentFacts {
        PaymentFacts {
            id: id.into(),
            state,
            amount_cents,
            currency: "usd".into(),
        }
    }

    const PRICE: Option<(i64, &str)> = Some((1999, "usd"));

    #[test]
    fn a_cancelled_order_refunds_every_succeeded_payment_and_nothing_else() {
        let payments = [
            payment("a", PaymentState::Succeeded, 1999),
            payment("b", PaymentState::Refunded, 1999),
            payment("c", PaymentState::Succeeded, 5),
        ];
        assert_eq!(
            decide(&OrderOutcome::Cancelled, PRICE, &payments),
            [
                Decision::Refund(RefundReason::OrderCancelled),
                Decision::Keep,
                Decision::Refund(RefundReason::OrderCancelled)
            ]
        );
    }

    #[test]
    fn a_completed_order_settles_the_named_payment_and_refunds_the_others() {
        let payments = [
            payment("a", PaymentState::Succeeded, 1999),
            payment("b", PaymentState::Succeeded, 1999),
        ];
        let completed = OrderOutcome::Completed {
            payment_id: Some("b".into()),
        };
        assert_eq!(
            decide(&completed, PRICE, &payments),
            [Decision::Refund(RefundReason::Duplicate), Decision::Settle]
        );
        // Without a name (an older event): the first matching one completed it.
        let unnamed = OrderOutcome::Completed { payment_id: None };
        assert_eq!(
            decide(&unnamed, PRICE, &payments),
            [Decision::Settle, Decision::Refund(RefundReason::Duplicate)]
        );
        let after_settled = [
            payment("a", PaymentState::Settled, 1999),
            payment("b", PaymentState::Succeeded, 1999),
        ];
        assert_eq!(
            decide(&unnamed, PRICE, &after_settled),
            [Decision::Keep, Decision::Refund(RefundReason::Duplicate)]
        );
    }

    #[test]
    fn an_open_order_keeps_matching_payments_and_refunds_wrong_amounts() {
        let payments = [
            payment("a", PaymentState::Succeeded, 1999),
            payment("b", PaymentState::Succeeded, 1000),
            PaymentFacts {
                currency: "eur".into(),
                ..payment("c", PaymentState::Succeeded, 1999)
            },
        ];
        assert_eq!(
            decide(&OrderOutcome::Open, PRICE, &payments),
            [
                Decision::Keep,
                Decision::Refund(RefundReason::AmountMismatch),
                Decision::Refund(RefundReason::AmountMismatch)
            ]
        );
        // An order not known yet: nothing to compare with, nothing decided.
        assert_eq!(
            decide(&OrderOutcome::Open, None, &payments),
            [Decision::Keep; 3]
        );
    }

    #[test]
    fn order_statuses_read_as_orders_writes_them() {
        for status in [
            OrderStatus::Created,
            OrderStatus::Cancelled,
            OrderStatus::Complete,
        ] {
            assert_eq!(OrderStatus::from_event(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_value(status).unwrap_or_default(),
                status.as_str()
            );
        }
        assert_eq!(OrderStatus::from_event("awaiting:payment"), None);
    }

    #[test]
    fn ids_are_stored_and_sent_as_the_bare_string() {
        let order = OrderId::new("64b7f0c2a1b2c3d4e5f60718");
        assert_eq!(
            serde_json::to_value(&order).unwrap_or_default(),
            "64b7f0c2a1b2c3d4e5f60718"
        );
        assert_eq!(order.to_string(), order.as_str());
        let intent: Result<IntentId, _> = serde_json::from_str("\"pi_123\"");
        assert_eq!(intent.ok(), Some(IntentId::from("pi_123")));
        let oid = ObjectId::new();
        assert_eq!(OrderId::from(oid).as_str(), oid.to_hex());
    }

    #[test]
    fn refund_retries_back_off_up_to_five_minutes() {
        assert_eq!(retry_delay(0), Duration::from_millis(500));
        assert_eq!(retry_delay(3), Duration::from_secs(4));
        assert_eq!(retry_delay(40), Duration::from_secs(300));
    }
}
