//! The notifications database: small replicas of what emails need (`users`: email
//! addresses; `tickets`: titles; `orders`; `payments`), kept from events, and `deliveries`,
//! one record per email (event id and template) that guards its send.
//!
//! Replicas hold what the emails show, never more; the record of a user is the address
//! `user.created` carried, so the service never asks auth.

use std::time::Duration;

use bson::{Document, doc};
use common::mongo::{ensure_indexes, index, insert_once};
use common::store::StoreResult;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::replica::{OrderReplica, PaymentReplica, TicketReplica, UserReplica};
use crate::templates::Template;

/// Where an email's send stands. The record is created (claimed) before the send; see
/// `crate::delivery` for why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Claimed by a delivery that was about to send, and not known to be sent: if found by
    /// a later delivery, its process died between claim and record (or is still sending).
    Claimed,
    /// The provider accepted it.
    Sent,
    /// The send failed in a way that does not prove the provider refused it (a timeout
    /// after the message was handed over): it may have been delivered, so it never is again.
    Unknown,
}

/// The guard of one email: unique per event and template (its `_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    #[serde(rename = "_id")]
    pub id: String,
    pub event_id: String,
    pub template: String,
    pub state: DeliveryState,
    pub claimed_at: bson::DateTime,
    /// Who holds the claim: a fresh id per claim, so that only its holder records the send
    /// or gives the claim back (a stale holder cannot release a newer claim). Absent from
    /// records claimed before claims had ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<bson::DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Delivery {
    /// The `_id` of an event's email from `template`.
    pub fn key(event_id: &str, template: Template) -> String {
        format!("{event_id}:{}", template.name())
    }
}

/// A claim's holder: only it may mark the email sent or give the claim back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimId(pub String);

impl ClaimId {
    pub fn new() -> Self {
        Self(bson::oid::ObjectId::new().to_hex())
    }
}

impl Default for ClaimId {
    fn default() -> Self {
        Self::new()
    }
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This delivery holds the claim (under this id): it sends.
    Won(ClaimId),
    /// Another delivery claimed it before; this is its record as read.
    Taken(Delivery),
    /// The insert found a record, and the read after it none: the holder released it in
    /// between (the provider refused it). The next delivery can claim it.
    Vanished,
}

/// The name of the TTL index on `deliveries.claimedAt`.
pub const DELIVERIES_TTL_INDEX: &str = "deliveries_expire";

/// How long a delivery record is kept: longer than an event may be old and still send
/// (`MAIL_MAX_EVENT_AGE_HOURS`), plus a day for clocks and the TTL monitor's pace. A
/// record is claimed after its event occurred, so once it expires its event is too old to
/// send anything: a redelivery then is skipped as stale, never sent again.
pub fn deliveries_ttl(max_event_age: Duration) -> Duration {
    max_event_age.saturating_add(Duration::from_secs(24 * 3600))
}

#[derive(Clone)]
pub struct Store {
    users: Collection<UserReplica>,
    tickets: Collection<TicketReplica>,
    orders: Collection<OrderReplica>,
    payments: Collection<PaymentReplica>,
    deliveries: Collection<Delivery>,
}

impl Store {
    pub fn new(db: &Database) -> Self {
        Self {
            users: db.collection("users"),
            tickets: db.collection("tickets"),
            orders: db.collection("orders"),
            payments: db.collection("payments"),
            deliveries: db.collection("deliveries"),
        }
    }

    /// The indexes, and delivery records expiring `deliveries_ttl` after their claim.
    pub async fn ensure_indexes(&self, deliveries_ttl: Duration) -> StoreResult<()> {
        // The receipt's payment when `order.completed` names none (older events).
        ensure_indexes(
            &self.payments,
            &[index("payments_by_order", doc! {"orderId": 1})],
        )
        .await?;
        self.ensure_deliveries_ttl(deliveries_ttl).await
    }

    /// A TTL index on `claimedAt`, so delivery records do not accumulate for ever. MongoDB
    /// deletes expired records (its TTL monitor runs every minute). FerretDB 1.24 (the local
    /// stand-in) refuses the option (238 NotImplemented, docs/STORE-CONTRACT.md): there the
    /// index is left out, with a warning, and records are kept. A changed
    /// `MAIL_MAX_EVENT_AGE_HOURS` replaces the existing index with one of the new expiry.
    async fn ensure_deliveries_ttl(&self, ttl: Duration) -> StoreResult<()> {
        let model = IndexModel::builder()
            .keys(doc! {"claimedAt": 1})
            .options(
                IndexOptions::builder()
                    .name(DELIVERIES_TTL_INDEX.to_owned())
                    .expire_after(ttl)
                    .build(),
            )
            .build();
        let Err(err) = self.deliveries.create_index(model.clone()).await else {
            return Ok(());
        };
        let code = match err.kind.as_ref() {
            mongodb::error::ErrorKind::Command(e) => e.code,
            _ => return Err(err.into()),
        };
        if code == 238 {
            tracing::warn!(error = %err, "this server has no TTL indexes: delivery records are not expired");
            return Ok(());
        }
        // 85 IndexOptionsConflict: the index exists with another expiry.
        if code != 85 {
            return Err(err.into());
        }
        // Not collMod: that needs dbAdmin, and the service's user has readWrite on its own
        // database only. Another replica may drop it first (27 IndexNotFound).
        if let Err(err) = self.deliveries.drop_index(DELIVERIES_TTL_INDEX).await
            && !matches!(err.kind.as_ref(), mongodb::error::ErrorKind::Command(e) if e.code == 27)
        {
            return Err(err.into());
        }
        self.deliveries.create_index(model).await?;
        Ok(())
    }

    /// Keeps a user's address at the newest version seen.
    pub async fn put_user(&self, user: &UserReplica) -> StoreResult<()> {
        upsert_newer(
            &self.users.clone_with_type(),
            &user.id,
            user.version,
            doc! {"email": &user.email},
        )
        .await
    }

    /// Keeps a ticket at the newest version seen: an older `ticket.updated` arriving late
    /// changes nothing.
    pub async fn put_ticket(&self, ticket: &TicketReplica) -> StoreResult<()> {
        upsert_newer(
            &self.tickets.clone_with_type(),
            &ticket.id,
            ticket.version,
            doc! {"title": &ticket.title, "priceCents": ticket.price_cents},
        )
        .await
    }

    /// Records an order as created (its later changes come as events of their own).
    pub async fn put_order(&self, order: &OrderReplica) -> StoreResult<()> {
        insert_once(&self.orders, order).await.map(|_| ())
    }

    pub async fn put_payment(&self, payment: &PaymentReplica) -> StoreResult<()> {
        insert_once(&self.payments, payment).await.map(|_| ())
    }

    pub async fn user(&self, id: &str) -> StoreResult<Option<UserReplica>> {
        Ok(self.users.find_one(doc! {"_id": id}).await?)
    }

    pub async fn ticket(&self, id: &str) -> StoreResult<Option<TicketReplica>> {
        Ok(self.tickets.find_one(doc! {"_id": id}).await?)
    }

    pub async fn order(&self, id: &str) -> StoreResult<Option<OrderReplica>> {
        Ok(self.orders.find_one(doc! {"_id": id}).await?)
    }

    pub async fn payment(&self, id: &str) -> StoreResult<Option<PaymentReplica>> {
        Ok(self.payments.find_one(doc! {"_id": id}).await?)
    }

    pub async fn payment_of_order(&self, order_id: &str) -> StoreResult<Option<PaymentReplica>> {
        Ok(self.payments.find_one(doc! {"orderId": order_id}).await?)
    }

    /// Claims the email `key` for this delivery: a unique insert, so of every delivery of an
    /// event (redeliveries, replicas) exactly one wins.
    pub async fn claim(&self, key: &str, event_id: &str, template: Template) -> StoreResult<Claim> {
        let claim_id = ClaimId::new();
        let delivery = Delivery {
            id: key.to_owned(),
            event_id: event_id.to_owned(),
            template: template.name().to_owned(),
            state: DeliveryState::Claimed,
            claimed_at: bson::DateTime::now(),
            claim_id: Some(claim_id.0.clone()),
            sent_at: None,
            error: None,
        };
        if insert_once(&self.deliveries, &delivery).await? {
            return Ok(Claim::Won(claim_id));
        }
        Ok(match self.delivery(key).await? {
            Some(found) => Claim::Taken(found),
            // Released between the insert and the read: the next delivery claims it.
            None => Claim::Vanished,
        })
    }

    pub async fn delivery(&self, key: &str) -> StoreResult<Option<Delivery>> {
        Ok(self.deliveries.find_one(doc! {"_id": key}).await?)
    }

    /// Records that the provider accepted the email, if `claim` still holds it; false when
    /// it did not.
    pub async fn mark_sent(&self, key: &str, claim: &ClaimId) -> StoreResult<bool> {
        let result = self
            .deliveries
            .update_one(
                doc! {"_id": key, "state": "claimed", "claimId": &claim.0},
                doc! {"$set": {"state": "sent", "sentAt": bson::DateTime::now()}},
            )
            .await?;
        Ok(result.matched_count == 1)
    }

    /// Records that the email may or may not have been delivered, if `claim` still holds
    /// it; false when it did not.
    pub async fn mark_unknown(&self, key: &str, claim: &ClaimId, error: &str) -> StoreResult<bool> {
        let result = self
            .deliveries
            .update_one(
                doc! {"_id": key, "state": "claimed", "claimId": &claim.0},
                doc! {"$set": {"state": "unknown", "error": error}},
            )
            .await?;
        Ok(result.matched_count == 1)
    }

    /// Gives the claim back: the provider proved it did not accept the email, so a later
    /// delivery may send it. Only `claim`'s holder can: true when it did, false when the
    /// record is not (or no longer) its claim, which is then left as it is.
    pub async fn release(&self, key: &str, claim: &ClaimId) -> StoreResult<bool> {
        let result = self
            .deliveries
            .delete_one(doc! {"_id": key, "state": "claimed", "claimId": &claim.0})
            .await?;
        Ok(result.deleted_count == 1)
    }
}

/// Sets `fields` and `version` on record `id` unless it is already at `version` or newer,
/// creating it when absent: an insert (unique on `_id`), else an update conditioned on the
/// older version. Both are single-document atomic writes (no upsert semantics relied on).
async fn upsert_newer(
    collection: &Collection<Document>,
    id: &str,
    version: i64,
    mut fields: Document,
) -> StoreResult<()> {
    fields.insert("version", version);
    let mut record = doc! {"_id": id};
    record.extend(fields.clone());
    if insert_once(collection, &record).await? {
        return Ok(());
    }
    collection
        .update_one(
            doc! {"_id": id, "version": {"$lt": version}},
            doc! {"$set": fields},
        )
        .await?;
    Ok(())
}
