//! The payments service's collections: `payments` (owned, with their outbox: one record
//! per successful PaymentIntent, with its refund when it has one), `intents` (the
//! PaymentIntents it created, until they are closed) and `orders` (a replica kept from
//! order events).
//!
//! Every write that depends on what was read is conditioned on it (the payment's state,
//! the refund attempt read), so concurrent replicas and redeliveries change a record once.

use bson::oid::ObjectId;
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use common::events::{PaymentCreated, PaymentRefunded};
use common::mongo::{Inserted, ensure_indexes, index, insert_once, insert_unless_duplicate};
use common::outbox::{OutboxSignal, PENDING_EVENTS, PendingEvent};
use common::store::{StoreError, StoreResult};
use futures::TryStreamExt;
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};

use crate::domain::{
    IntentId, OPEN_INTENT_STATUSES, OrderId, OrderStatus, PaymentState, RefundReason,
};
use crate::replica::OrderReplica;

/// A successful PaymentIntent, recorded once (a unique index on `stripeId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub order_id: OrderId,
    pub stripe_id: IntentId,
    pub amount_cents: i64,
    pub currency: String,
    pub created_at: bson::DateTime,
    pub state: PaymentState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundRecord>,
}

/// A payment's refund, from the decision to refund until Stripe confirms it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRecord {
    /// The refund record's id (`payment.refunded`'s `data.id`).
    pub id: ObjectId,
    pub reason: RefundReason,
    pub requested_at: bson::DateTime,
    /// Stripe calls made so far.
    pub attempts: i64,
    /// When the worker tries next (or until when a worker holds it).
    pub next_attempt_at: bson::DateTime,
    /// Stripe's `re_…` once Stripe has answered with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_at: Option<bson::DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Payment {
    pub fn new(order_id: OrderId, stripe_id: IntentId, amount_cents: i64, currency: &str) -> Self {
        Self {
            id: ObjectId::new(),
            order_id,
            stripe_id,
            amount_cents,
            currency: currency.to_owned(),
            created_at: bson::DateTime::now(),
            state: PaymentState::Succeeded,
            refund: None,
        }
    }

    pub fn created_event(&self) -> PaymentCreated {
        PaymentCreated {
            id: self.id.to_hex(),
            order_id: self.order_id.to_string(),
            stripe_id: self.stripe_id.to_string(),
            amount_cents: self.amount_cents,
            currency: self.currency.clone(),
            version: 0,
        }
    }

    fn refunded_event(&self, refund: &RefundRecord, refund_id: &str) -> PaymentRefunded {
        PaymentRefunded {
            id: refund.id.to_hex(),
            payment_id: self.id.to_hex(),
            order_id: self.order_id.to_string(),
            stripe_id: self.stripe_id.to_string(),
            refund_id: refund_id.to_owned(),
            amount_cents: self.amount_cents,
            currency: self.currency.clone(),
            reason: refund.reason.as_str().to_owned(),
        }
    }
}

/// A PaymentIntent payments created, remembered so an open one can be cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    /// Stripe's `pi_…` (never 24 hex digits, see docs/STORE-CONTRACT.md).
    #[serde(rename = "_id")]
    pub id: IntentId,
    pub order_id: OrderId,
    pub payment_method: String,
    /// Stripe's status as last seen.
    pub status: String,
    /// To be cancelled at Stripe by the worker.
    #[serde(default)]
    pub close_due: bool,
    #[serde(default)]
    pub attempts: i64,
    pub next_attempt_at: bson::DateTime,
}

/// Statuses after which an intent never changes.
const FINAL_INTENT_STATUSES: [&str; 2] = ["succeeded", "canceled"];

#[derive(Clone)]
pub struct Store {
    orders: Collection<OrderReplica>,
    payments: Collection<Payment>,
    intents: Collection<Intent>,
    db: Database,
    outbox: OutboxSignal,
}

fn at(time: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_chrono(time)
}

impl Store {
    pub fn new(db: &Database, outbox: OutboxSignal) -> Self {
        Self {
            orders: db.collection("orders"),
            payments: db.collection("payments"),
            intents: db.collection("intents"),
            db: db.clone(),
            outbox,
        }
    }

    pub fn payments(&self) -> &Collection<Payment> {
        &self.payments
    }

    pub async fn ensure_indexes(&self) -> StoreResult<()> {
        // Several payments per order now: the old unique index would refuse the second.
        let existing = self.payments.list_index_names().await.unwrap_or_default();
        if existing.iter().any(|name| name == "one_payment_per_order") {
            self.payments.drop_index("one_payment_per_order").await?;
        }
        ensure_indexes(
            &self.payments,
            &[
                index("one_payment_per_intent", doc! {"stripeId": 1}).unique(),
                index("payments_by_order", doc! {"orderId": 1}),
                // A Stripe refund is recorded on one payment only.
                index("one_payment_per_refund", doc! {"refund.refundId": 1})
                    .unique()
                    .sparse(),
                index("refunds_due", doc! {"state": 1, "refund.nextAttemptAt": 1}),
            ],
        )
        .await?;
        ensure_indexes(
            &self.intents,
            &[
                index("intents_by_order", doc! {"orderId": 1}),
                index("intents_to_close", doc! {"closeDue": 1, "nextAttemptAt": 1}),
            ],
        )
        .await?;
        Ok(())
    }

    /// Successful intents an earlier version kept in `refunds_due` (nothing read it):
    /// returned for recording as payments, so the usual rules refund them; each is
    /// deleted once recorded, with [`Self::forget_legacy_refund`].
    pub async fn legacy_refunds_due(&self) -> StoreResult<Vec<Document>> {
        Ok(self
            .db
            .collection::<Document>("refunds_due")
            .find(doc! {})
            .await?
            .try_collect()
            .await?)
    }

    pub async fn forget_legacy_refund(&self, id: &Bson) -> StoreResult<()> {
        self.db
            .collection::<Document>("refunds_due")
            .delete_one(doc! {"_id": id})
            .await?;
        Ok(())
    }

    // ---- the order replica ----

    pub async fn find_order(&self, id: ObjectId) -> StoreResult<Option<OrderReplica>> {
        Ok(self.orders.find_one(doc! {"_id": id}).await?)
    }

    /// Adds an order seen for the first time; false when it is there already.
    pub async fn insert_order(&self, order: &OrderReplica) -> StoreResult<bool> {
        insert_once(&self.orders, order).await
    }

    /// Applies an order's whole state when it is newer than the replica's (or the replica
    /// lacks the order): state transfer after a gap that did not close.
    pub async fn apply_order_snapshot(&self, order: &OrderReplica) -> StoreResult<()> {
        let newer = self
            .orders
            .update_one(
                doc! {"_id": order.id, "version": {"$lt": order.version}},
                doc! {"$set": {
                    "status": order.status.as_str(),
                    "version": order.version,
                    "paymentId": &order.payment_id,
                }},
            )
            .await?;
        if newer.matched_count == 0 {
            // Absent (inserted now), or as new already (the insert is a duplicate).
            self.insert_order(order).await?;
        }
        Ok(())
    }

    /// Applies the next version of an order's status (and the payment that completed
    /// it); false when the replica is not at the version just before it.
    pub async fn update_order_status(
        &self,
        id: ObjectId,
        version: i64,
        status: OrderStatus,
        payment_id: Option<&str>,
    ) -> StoreResult<bool> {
        let mut set = doc! {"status": status.as_str(), "version": version};
        if let Some(payment_id) = payment_id {
            set.insert("paymentId", payment_id);
        }
        let result = self
            .orders
            .update_one(doc! {"_id": id, "version": version - 1}, doc! {"$set": set})
            .await?;
        Ok(result.matched_count == 1)
    }

    /// Takes the order's charging slot until `until`, so that two requests for one order
    /// never charge at once. False when another request holds it.
    pub async fn claim_charge(&self, id: ObjectId, until: DateTime<Utc>) -> StoreResult<bool> {
        let now = bson::DateTime::now();
        let result = self
            .orders
            .update_one(
                doc! {"_id": id, "$or": [{"chargingUntil": null}, {"chargingUntil": {"$lt": now}}]},
                doc! {"$set": {"chargingUntil": at(until)}},
            )
            .await?;
        Ok(result.modified_count == 1)
    }

    pub async fn release_charge(&self, id: ObjectId) -> StoreResult<()> {
        self.orders
            .update_one(doc! {"_id": id}, doc! {"$set": {"chargingUntil": null}})
            .await?;
        Ok(())
    }

    // ---- payments ----

    /// Every payment of an order, in the order they were recorded.
    pub async fn payments_of(&self, order_id: &OrderId) -> StoreResult<Vec<Payment>> {
        Ok(self
            .payments
            .find(doc! {"orderId": order_id.as_str()})
            .sort(doc! {"_id": 1})
            .await?
            .try_collect()
            .await?)
    }

    /// Whether the order has money that is kept (not refunded or being refunded).
    pub async fn is_paid(&self, order_id: &OrderId) -> StoreResult<bool> {
        let kept = [PaymentState::Succeeded, PaymentState::Settled].map(PaymentState::as_str);
        Ok(self
            .payments
            .find_one(doc! {"orderId": order_id.as_str(), "state": {"$in": kept.to_vec()}})
            .await?
            .is_some())
    }

    /// Records a successful intent with its `payment.created` event in one insert. Known
    /// already (the webhook and the synchronous path both arrive): the stored payment
    /// with `false`, and nothing new is emitted.
    pub async fn record(&self, payment: Payment) -> StoreResult<(Payment, bool)> {
        let mut document = bson::to_document(&payment)?;
        document.insert(
            PENDING_EVENTS,
            vec![PendingEvent::new(payment.created_event()).to_bson()],
        );
        match insert_unless_duplicate(&self.payments.clone_with_type::<Document>(), &document)
            .await?
        {
            Inserted::New => {
                self.outbox.notify();
                metrics::counter!("payments_total").increment(1);
                metrics::counter!("revenue_cents_total", "currency" => payment.currency.clone())
                    .increment(u64::try_from(payment.amount_cents).unwrap_or(0));
                Ok((payment, true))
            }
            Inserted::Duplicate => {
                let existing = self
                    .payments
                    .find_one(doc! {"stripeId": payment.stripe_id.as_str()})
                    .await?
                    .ok_or_else(|| {
                        StoreError::Inconsistent(format!(
                            "duplicate payment {} not found",
                            payment.stripe_id
                        ))
                    })?;
                Ok((existing, false))
            }
        }
    }

    /// `succeeded` → `settled`: the payment completed its order.
    pub async fn settle(&self, payment: &Payment) -> StoreResult<bool> {
        let result = self
            .payments
            .update_one(
                doc! {"_id": payment.id, "state": PaymentState::Succeeded.as_str()},
                doc! {"$set": {"state": PaymentState::Settled.as_str()}},
            )
            .await?;
        Ok(result.modified_count == 1)
    }

    /// `succeeded` → `refund_pending`, due at once. False when it was decided otherwise
    /// meanwhile.
    pub async fn request_refund(
        &self,
        payment: &Payment,
        reason: RefundReason,
    ) -> StoreResult<bool> {
        let now = bson::DateTime::now();
        let refund = RefundRecord {
            id: ObjectId::new(),
            reason,
            requested_at: now,
            attempts: 0,
            next_attempt_at: now,
            refund_id: None,
            refunded_at: None,
            last_error: None,
        };
        let result = self
            .payments
            .update_one(
                doc! {"_id": payment.id, "state": PaymentState::Succeeded.as_str()},
                doc! {"$set": {
                    "state": PaymentState::RefundPending.as_str(),
                    "refund": bson::to_bson(&refund)?,
                }},
            )
            .await?;
        Ok(result.modified_count == 1)
    }

    /// Refunds whose next attempt is due.
    pub async fn due_refunds(&self, limit: i64) -> StoreResult<Vec<Payment>> {
        Ok(self
            .payments
            .find(doc! {
                "state": PaymentState::RefundPending.as_str(),
                "refund.nextAttemptAt": {"$lte": bson::DateTime::now()},
            })
            .limit(limit)
            .await?
            .try_collect()
            .await?)
    }

    /// Holds a due refund for one worker until `until`: conditioned on the attempt time
    /// read, so of two replicas reading it one gets it.
    pub async fn claim_refund(
        &self,
        payment: &Payment,
        refund: &RefundRecord,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = self
            .payments
            .update_one(
                doc! {
                    "_id": payment.id,
                    "state": PaymentState::RefundPending.as_str(),
                    "refund.id": refund.id,
                    "refund.nextAttemptAt": refund.next_attempt_at,
                },
                doc! {"$set": {"refund.nextAttemptAt": at(until)}},
            )
            .await?;
        Ok(result.modified_count == 1)
    }

    /// Schedules the next attempt of a refund that is not confirmed yet.
    pub async fn retry_refund(
        &self,
        payment: &Payment,
        refund: &RefundRecord,
        next: DateTime<Utc>,
        refund_id: Option<&str>,
        error: &str,
    ) -> StoreResult<()> {
        let mut set = doc! {
            "refund.attempts": refund.attempts + 1,
            "refund.nextAttemptAt": at(next),
            "refund.lastError": error,
        };
        if let Some(refund_id) = refund_id {
            set.insert("refund.refundId", refund_id);
        }
        self.payments
            .update_one(
                doc! {"_id": payment.id, "state": PaymentState::RefundPending.as_str(), "refund.id": refund.id},
                doc! {"$set": set},
            )
            .await?;
        Ok(())
    }

    /// `refund_pending` → `refunded` with `payment.refunded`, one write. False when it
    /// was confirmed already (by another worker).
    pub async fn confirm_refund(
        &self,
        payment: &Payment,
        refund: &RefundRecord,
        refund_id: &str,
    ) -> StoreResult<bool> {
        let event = PendingEvent::new(payment.refunded_event(refund, refund_id));
        let update = doc! {
            "$set": {
                "state": PaymentState::Refunded.as_str(),
                "refund.refundId": refund_id,
                "refund.refundedAt": bson::DateTime::now(),
                "refund.attempts": refund.attempts + 1,
            },
            "$push": {PENDING_EVENTS: event.to_bson()},
        };
        let result = self
            .payments
            .update_one(
                doc! {"_id": payment.id, "state": PaymentState::RefundPending.as_str(), "refund.id": refund.id},
                update,
            )
            .await?;
        if result.modified_count == 1 {
            self.outbox.notify();
            metrics::counter!("refunds_total").increment(1);
        }
        Ok(result.modified_count == 1)
    }

    /// `refund_pending` → `refund_failed`: Stripe will not refund it; a person must.
    pub async fn fail_refund(
        &self,
        payment: &Payment,
        refund: &RefundRecord,
        refund_id: &str,
        reason: &str,
    ) -> StoreResult<()> {
        self.payments
            .update_one(
                doc! {"_id": payment.id, "state": PaymentState::RefundPending.as_str(), "refund.id": refund.id},
                doc! {"$set": {
                    "state": PaymentState::RefundFailed.as_str(),
                    "refund.refundId": refund_id,
                    "refund.lastError": reason,
                }},
            )
            .await?;
        Ok(())
    }

    /// Makes a pending refund of this intent's payment due now (Stripe said something
    /// about it). False when there is none.
    pub async fn refund_due_now(&self, stripe_id: &IntentId) -> StoreResult<bool> {
        let result = self
            .payments
            .update_one(
                doc! {"stripeId": stripe_id.as_str(), "state": PaymentState::RefundPending.as_str()},
                doc! {"$set": {"refund.nextAttemptAt": bson::DateTime::now()}},
            )
            .await?;
        Ok(result.matched_count == 1)
    }

    // ---- intents ----

    /// Remembers an intent payments created (or its newer status).
    pub async fn remember_intent(
        &self,
        order_id: &OrderId,
        stripe_id: &IntentId,
        payment_method: &str,
        status: &str,
    ) -> StoreResult<()> {
        let intent = Intent {
            id: stripe_id.clone(),
            order_id: order_id.clone(),
            payment_method: payment_method.to_owned(),
            status: status.to_owned(),
            close_due: false,
            attempts: 0,
            next_attempt_at: bson::DateTime::now(),
        };
        if !insert_once(&self.intents, &intent).await? {
            self.set_intent_status(stripe_id, status).await?;
        }
        Ok(())
    }

    /// A newer status of a known intent; a final one (succeeded, canceled) never
    /// changes again, and ends any pending cancellation. False when nothing changed.
    pub async fn set_intent_status(&self, stripe_id: &IntentId, status: &str) -> StoreResult<bool> {
        let mut set = doc! {"status": status};
        if FINAL_INTENT_STATUSES.contains(&status) {
            set.insert("closeDue", false);
        }
        let result = self
            .intents
            .update_one(
                doc! {"_id": stripe_id.as_str(), "status": {"$nin": FINAL_INTENT_STATUSES.to_vec()}},
                doc! {"$set": set},
            )
            .await?;
        Ok(result.modified_count == 1)
    }

    /// Marks the order's open intents for cancellation (except those of
    /// `except_method`, the attempt being made); how many were marked.
    pub async fn close_open_intents(
        &self,
        order_id: &OrderId,
        except_method: Option<&str>,
    ) -> StoreResult<u64> {
        let mut filter = doc! {
            "orderId": order_id.as_str(),
            "status": {"$in": OPEN_INTENT_STATUSES.to_vec()},
            "closeDue": false,
        };
        if let Some(method) = except_method {
            filter.insert("paymentMethod", doc! {"$ne": method});
        }
        let result = self
            .intents
            .update_many(
                filter,
                doc! {"$set": {"closeDue": true, "nextAttemptAt": bson::DateTime::now()}},
            )
            .await?;
        Ok(result.modified_count)
    }

    /// Intents to cancel whose next attempt is due.
    pub async fn due_closes(&self, limit: i64) -> StoreResult<Vec<Intent>> {
        Ok(self
            .intents
            .find(doc! {"closeDue": true, "nextAttemptAt": {"$lte": bson::DateTime::now()}})
            .limit(limit)
            .await?
            .try_collect()
            .await?)
    }

    /// Holds a due cancellation for one worker until `until` (see [`Self::claim_refund`]).
    pub async fn claim_close(&self, intent: &Intent, until: DateTime<Utc>) -> StoreResult<bool> {
        let result = self
            .intents
            .update_one(
                doc! {"_id": intent.id.as_str(), "closeDue": true, "nextAttemptAt": intent.next_attempt_at},
                doc! {"$set": {"nextAttemptAt": at(until)}},
            )
            .await?;
        Ok(result.modified_count == 1)
    }

    pub async fn retry_close(&self, intent: &Intent, next: DateTime<Utc>) -> StoreResult<()> {
        self.intents
            .update_one(
                doc! {"_id": intent.id.as_str(), "closeDue": true},
                doc! {"$set": {"nextAttemptAt": at(next), "attempts": intent.attempts + 1}},
            )
            .await?;
        Ok(())
    }
}
