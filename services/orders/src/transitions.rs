//! Every change of an order, decided by the state machine in `domain` and written through
//! `common::change` (conditioned on the order's version as read, decided again after a
//! lost race). HTTP handlers, listeners and the sweeper call these; none of them writes an
//! order itself. Results are neutral: callers map them to `ApiError` or `Outcome`.

use std::time::Duration;

use bson::oid::ObjectId;
use chrono::Utc;
use common::change::{ChangeError, Decision, change_from};
use common::events::CancelReason;
use common::store::StoreError;

use crate::domain::{CancelError, Completion, Expiry, Order, PaymentReceived, Transition};
use crate::store::Store;

pub type Result<T> = std::result::Result<T, ChangeError<StoreError>>;

/// The rules an order's life depends on besides its own state.
#[derive(Debug, Clone)]
pub struct Rules {
    /// How long after its payment deadline an unpaid order may still be completed: longer
    /// than the longest charge attempt (`PAYMENT_GRACE_SECONDS`).
    pub payment_grace: Duration,
    /// The currency every charge is in (`PAYMENT_CURRENCY`).
    pub currency: String,
}

/// What an expiry did.
#[derive(Debug, PartialEq, Eq)]
pub enum Expired {
    Cancelled,
    /// Paid or cancelled before.
    AlreadyFinal,
    /// Not cancellable before this long (a charge may be in flight).
    NotYet(Duration),
}

/// What a payment did.
#[derive(Debug, PartialEq, Eq)]
pub enum Paid {
    Completed,
    /// This payment completed it before (a redelivery).
    AlreadyCompleted,
    /// The payment cannot complete the order; payments refunds it.
    Refused(&'static str),
}

/// What the buyer's cancellation did.
#[derive(Debug, PartialEq, Eq)]
pub enum Cancelled {
    Done,
    NotYours,
    Completed,
}

#[derive(Clone)]
pub struct Transitions {
    pub store: Store,
    pub rules: Rules,
}

impl Transitions {
    pub fn new(store: Store, rules: Rules) -> Self {
        Self { store, rules }
    }

    /// Loads the order (unless `read` is given), decides, and saves the changed order with
    /// its event if it is still at the version decided from.
    async fn transition<R>(
        &self,
        id: ObjectId,
        read: Option<Order>,
        decide: impl Fn(&Order) -> Decision<Order, R>,
    ) -> Result<R> {
        let store = &self.store;
        change_from(
            read,
            || store.find(id),
            decide,
            |read, changed: Order| async move {
                let saved = store
                    .save_transition(read.version, &changed, changed.status_event())
                    .await?;
                if saved {
                    metrics::counter!("orders_total", "status" => changed.status.as_str())
                        .increment(1);
                }
                Ok(saved)
            },
        )
        .await
    }

    /// The window (and the grace) passed: cancel the order if it is still unpaid.
    pub async fn expire(&self, id: ObjectId, read: Option<Order>) -> Result<Expired> {
        let now = Utc::now();
        self.transition(id, read, |order| {
            match order.expire(now, self.rules.payment_grace) {
                Expiry::Apply(cancelled) => Decision::Write(cancelled, Expired::Cancelled),
                Expiry::Unchanged => Decision::Keep(Expired::AlreadyFinal),
                Expiry::NotYet(wait) => Decision::Keep(Expired::NotYet(wait)),
            }
        })
        .await
    }

    /// A payment arrived for the order.
    pub async fn pay(&self, id: ObjectId, payment: &PaymentReceived) -> Result<Paid> {
        self.transition(id, None, |order| {
            match order.complete(payment, &self.rules.currency) {
                Completion::Apply(paid) => Decision::Write(paid, Paid::Completed),
                Completion::AlreadyComplete => Decision::Keep(Paid::AlreadyCompleted),
                Completion::Refused(why) => Decision::Keep(Paid::Refused(why)),
            }
        })
        .await
    }

    /// The buyer `user_id` cancels the order (or their ban does: `reason`); cancelling
    /// twice is a no-op.
    pub async fn cancel(
        &self,
        id: ObjectId,
        user_id: &str,
        reason: CancelReason,
    ) -> Result<Cancelled> {
        self.transition(id, None, |order| {
            if order.user_id != user_id {
                return Decision::Keep(Cancelled::NotYours);
            }
            match order.cancel(reason) {
                Ok(Transition::Apply(cancelled)) => Decision::Write(cancelled, Cancelled::Done),
                Ok(Transition::Unchanged) => Decision::Keep(Cancelled::Done),
                Err(CancelError::Completed) => Decision::Keep(Cancelled::Completed),
            }
        })
        .await
    }

    /// Announces the order's whole state (`order.snapshot`) at its current version, for a
    /// service that lost track of it.
    pub async fn announce(&self, id: ObjectId) -> Result<()> {
        let store = &self.store;
        change_from(
            None,
            || store.find(id),
            |order| Decision::Write(order.snapshot_event(), ()),
            |read, event| async move { store.push_event_if_version(&read, event).await },
        )
        .await
    }

    /// A buyer found the ticket held: if its holder has lapsed (unpaid past its deadline
    /// and grace) it is cancelled now rather than turning the buyer away. True when the
    /// ticket may be free now.
    pub async fn free_lapsed_holder(&self, ticket_id: &str) -> Result<bool> {
        let Some(holder) = self
            .store
            .find_holder(ticket_id)
            .await
            .map_err(ChangeError::Store)?
        else {
            return Ok(true);
        };
        if !holder.is_lapsed(Utc::now(), self.rules.payment_grace) {
            return Ok(false);
        }
        let expired = self.expire(holder.id, Some(holder)).await?;
        Ok(matches!(
            expired,
            Expired::Cancelled | Expired::AlreadyFinal
        ))
    }
}
