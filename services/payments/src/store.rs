//! The payments service's collections: `payments` (owned, with their outbox) and
//! `orders` (a replica kept from order events).

use bson::oid::ObjectId;
use bson::{Document, doc};
use chrono::{DateTime, Utc};
use common::events::PaymentCreated;
use common::mongo::{ensure_indexes, index};
use common::outbox::{OutboxSignal, PENDING_EVENTS, PendingEvent};
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};

/// What the payments service knows of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderReplica {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: String,
    /// `created`, `cancelled` or `complete`.
    pub status: String,
    pub price_cents: i64,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    pub expires_at: DateTime<Utc>,
    pub version: i64,
}

/// A successful payment. One per order: a unique index on `orderId` guarantees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub order_id: String,
    pub stripe_id: String,
    pub amount_cents: i64,
    pub currency: String,
    pub created_at: bson::DateTime,
}

impl Payment {
    pub fn created_event(&self) -> PaymentCreated {
        PaymentCreated {
            id: self.id.to_hex(),
            order_id: self.order_id.clone(),
            stripe_id: self.stripe_id.clone(),
            amount_cents: self.amount_cents,
            currency: self.currency.clone(),
            version: 0,
        }
    }
}

#[derive(Clone)]
pub struct PaymentStore {
    orders: Collection<OrderReplica>,
    payments: Collection<Payment>,
    /// Successful charges for orders already paid by another PaymentIntent: to refund.
    refunds_due: Collection<Document>,
    outbox: OutboxSignal,
}

impl PaymentStore {
    pub fn new(db: &Database, outbox: OutboxSignal) -> Self {
        Self {
            orders: db.collection("orders"),
            payments: db.collection("payments"),
            refunds_due: db.collection("refunds_due"),
            outbox,
        }
    }

    pub fn payments(&self) -> &Collection<Payment> {
        &self.payments
    }

    pub async fn ensure_indexes(&self) -> mongodb::error::Result<()> {
        ensure_indexes(
            &self.payments,
            &[
                index("one_payment_per_order", doc! {"orderId": 1}).unique(),
                index("one_payment_per_intent", doc! {"stripeId": 1}).unique(),
            ],
        )
        .await
    }

    pub async fn find_order(&self, id: ObjectId) -> mongodb::error::Result<Option<OrderReplica>> {
        self.orders.find_one(doc! {"_id": id}).await
    }

    /// Adds an order seen for the first time; false when it is there already.
    pub async fn insert_order(&self, order: &OrderReplica) -> mongodb::error::Result<bool> {
        match self.orders.insert_one(order).await {
            Ok(_) => Ok(true),
            Err(err) if common::mongo::is_duplicate_key(&err) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Applies the next version of an order's status; false when the replica is not at
    /// the version just before it.
    pub async fn update_order_status(
        &self,
        id: ObjectId,
        version: i64,
        status: &str,
    ) -> mongodb::error::Result<bool> {
        let result = self
            .orders
            .update_one(
                doc! {"_id": id, "version": version - 1},
                doc! {"$set": {"status": status, "version": version}},
            )
            .await?;
        Ok(result.matched_count == 1)
    }

    /// Takes the order's charging slot until `until`, so that two requests for one order
    /// never charge at once. False when another request holds it.
    pub async fn claim_charge(
        &self,
        id: ObjectId,
        until: DateTime<Utc>,
    ) -> mongodb::error::Result<bool> {
        let now = bson::DateTime::now();
        let result = self
            .orders
            .update_one(
                doc! {"_id": id, "$or": [{"chargingUntil": null}, {"chargingUntil": {"$lt": now}}]},
                doc! {"$set": {"chargingUntil": bson::DateTime::from_chrono(until)}},
            )
            .await?;
        Ok(result.modified_count == 1)
    }

    pub async fn release_charge(&self, id: ObjectId) -> mongodb::error::Result<()> {
        self.orders
            .update_one(doc! {"_id": id}, doc! {"$set": {"chargingUntil": null}})
            .await?;
        Ok(())
    }

    /// A second successful PaymentIntent for an order already paid (say a card that
    /// needed 3-D Secure, completed after another card paid): kept once, for a refund.
    async fn record_refund_due(
        &self,
        extra: &Payment,
        kept: &Payment,
    ) -> mongodb::error::Result<()> {
        tracing::error!(
            order.id = extra.order_id,
            stripe.id = extra.stripe_id,
            kept.stripe_id = kept.stripe_id,
            "second successful payment for a paid order; recorded for refund"
        );
        let record = doc! {
            "_id": &extra.stripe_id,
            "orderId": &extra.order_id,
            "amountCents": extra.amount_cents,
            "currency": &extra.currency,
            "keptStripeId": &kept.stripe_id,
            "detectedAt": bson::DateTime::now(),
        };
        match self.refunds_due.insert_one(record).await {
            Err(err) if !common::mongo::is_duplicate_key(&err) => Err(err),
            _ => Ok(()),
        }
    }

    pub async fn find_payment_for(
        &self,
        order_id: &str,
    ) -> mongodb::error::Result<Option<Payment>> {
        self.payments.find_one(doc! {"orderId": order_id}).await
    }

    /// Records a payment with its `payment.created` event in one insert. If the order
    /// was paid already (the webhook and the synchronous path both arrive), the stored
    /// payment is returned with `false` and nothing new is emitted.
    pub async fn record(&self, payment: Payment) -> anyhow::Result<(Payment, bool)> {
        let mut document = bson::to_document(&payment)?;
        document.insert(
            PENDING_EVENTS,
            vec![PendingEvent::new(payment.created_event()).to_bson()],
        );
        match self
            .payments
            .clone_with_type::<Document>()
            .insert_one(document)
            .await
        {
            Ok(_) => {
                self.outbox.notify();
                Ok((payment, true))
            }
            Err(err) if common::mongo::is_duplicate_key(&err) => {
                let existing =
                    self.find_payment_for(&payment.order_id)
                        .await?
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "duplicate payment {} but no payment for its order",
                                payment.stripe_id
                            )
                        })?;
                if existing.stripe_id != payment.stripe_id {
                    self.record_refund_due(&payment, &existing).await?;
                }
                Ok((existing, false))
            }
            Err(err) => Err(err.into()),
        }
    }
}
