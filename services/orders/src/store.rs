//! The orders service's collections: `orders` (owned) and `tickets` (a replica kept from
//! events).

use bson::oid::ObjectId;
use bson::{Document, doc};
use chrono::{DateTime, Utc};
use common::mongo::{Inserted, ensure_indexes, index, insert_once, insert_unless_duplicate};
use common::outbox::{OutboxSignal, PENDING_EVENTS, PendingEvent, push_if_version};
use common::paging::Page;
use common::store::StoreResult;
use futures::TryStreamExt;
use mongodb::{Collection, Database};

use crate::domain::{Order, Refund};
use crate::replica::TicketReplica;

/// The `$set` that makes a replica's ticket `ticket`.
fn replica_set(ticket: &TicketReplica) -> StoreResult<Document> {
    Ok(doc! {"$set": {
        "title": &ticket.title,
        "priceCents": ticket.price_cents,
        "userId": &ticket.user_id,
        "version": ticket.version,
        "details": bson::to_bson(&ticket.details)?,
        // Only a snapshot says removed: a `ticket.updated` after a `ticket.removed` is an
        // order that won over the removal (docs/ARCHITECTURE.md).
        "removed": ticket.removed,
    }})
}

/// Present only on orders that hold their ticket (created or complete). A sparse unique
/// index on it lets one insert decide a race for a ticket: exactly one active order per
/// ticket, with no transaction, on MongoDB and FerretDB alike (docs/STORE-CONTRACT.md).
const ACTIVE_TICKET_ID: &str = "activeTicketId";

#[derive(Clone)]
pub struct Store {
    orders: Collection<Order>,
    tickets: Collection<TicketReplica>,
    outbox: OutboxSignal,
}

impl Store {
    pub fn new(db: &Database, outbox: OutboxSignal) -> Self {
        Self {
            orders: db.collection("orders"),
            tickets: db.collection("tickets"),
            outbox,
        }
    }

    pub fn orders(&self) -> &Collection<Order> {
        &self.orders
    }

    pub async fn ensure_indexes(&self) -> StoreResult<()> {
        Ok(ensure_indexes(
            &self.orders,
            &[
                index("one_active_order_per_ticket", doc! {ACTIVE_TICKET_ID: 1})
                    .unique()
                    .sparse(),
                index("by_user_newest_first", doc! {"userId": 1, "_id": -1}),
                index("unpaid_by_expiry", doc! {"status": 1, "expiresAt": 1}),
            ],
        )
        .await?)
    }

    /// Places the order with its `order.created` event in one insert:
    /// [`Inserted::Duplicate`] (nothing written) when another active order holds the ticket.
    pub async fn insert(&self, order: &Order) -> StoreResult<Inserted> {
        let mut document = bson::to_document(order)?;
        document.insert(ACTIVE_TICKET_ID, &order.ticket.id);
        document.insert(PENDING_EVENTS, vec![order.status_event().to_bson()]);
        let inserted =
            insert_unless_duplicate(&self.orders.clone_with_type::<Document>(), &document).await?;
        if inserted == Inserted::New {
            self.outbox.notify();
        }
        Ok(inserted)
    }

    pub async fn find(&self, id: ObjectId) -> StoreResult<Option<Order>> {
        Ok(self.orders.find_one(doc! {"_id": id}).await?)
    }

    /// The order holding a ticket, if any.
    pub async fn find_holder(&self, ticket_id: &str) -> StoreResult<Option<Order>> {
        Ok(self
            .orders
            .find_one(doc! {ACTIVE_TICKET_ID: ticket_id})
            .await?)
    }

    /// A buyer's orders, newest first: one page (plus one).
    pub async fn list_for_user(&self, user_id: &str, page: &Page) -> StoreResult<Vec<Order>> {
        page.fetch(&self.orders, doc! {"userId": user_id}).await
    }

    /// Writes a transition if the order is still at `expected_version`, with its event.
    /// An order that stops holding its ticket releases it in the same write.
    pub async fn save_transition(
        &self,
        expected_version: i64,
        changed: &Order,
        event: PendingEvent,
    ) -> StoreResult<bool> {
        let mut set = doc! {"status": changed.status.as_str(), "version": changed.version};
        if let Some(payment_id) = &changed.payment_id {
            set.insert("paymentId", payment_id);
        }
        if let Some(reason) = changed.cancel_reason {
            set.insert("cancelReason", reason.as_str());
        }
        let mut update = doc! {"$set": set};
        if !changed.holds_ticket() {
            update.insert("$unset", doc! {ACTIVE_TICKET_ID: ""});
        }
        update.extend(event.push());
        let result = self
            .orders
            .update_one(
                doc! {"_id": changed.id, "version": expected_version},
                update,
            )
            .await?;
        let saved = result.matched_count == 1;
        if saved {
            self.outbox.notify();
        }
        Ok(saved)
    }

    /// The ids of a buyer's unpaid orders.
    pub async fn unpaid_of_user(&self, user_id: &str) -> StoreResult<Vec<ObjectId>> {
        let orders: Vec<Order> = self
            .orders
            .find(doc! {"userId": user_id, "status": "created"})
            .await?
            .try_collect()
            .await?;
        Ok(orders.into_iter().map(|order| order.id).collect())
    }

    /// Unpaid orders whose window closed before `before`, oldest first.
    pub async fn expired_unpaid(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Order>> {
        Ok(self.orders
            .find(doc! {"status": "created", "expiresAt": {"$lt": bson::DateTime::from_chrono(before)}})
            .sort(doc! {"expiresAt": 1})
            .limit(limit)
            .await?
            .try_collect()
            .await?)
    }

    /// Publishes `event` about the order as read, only if it is still at that version (a
    /// snapshot must describe the state it announces). False when it changed meanwhile.
    pub async fn push_event_if_version(
        &self,
        read: &Order,
        event: PendingEvent,
    ) -> StoreResult<bool> {
        Ok(push_if_version(&self.orders, read.id, read.version, event, &self.outbox).await?)
    }

    /// Shows a refund on its order, once per refunded payment. False for an unknown order.
    pub async fn record_refund(&self, id: ObjectId, refund: &Refund) -> StoreResult<bool> {
        let result = self
            .orders
            .update_one(
                doc! {"_id": id, "refunds.paymentId": {"$ne": &refund.payment_id}},
                doc! {"$push": {"refunds": bson::to_bson(refund)?}},
            )
            .await?;
        if result.matched_count == 1 {
            return Ok(true);
        }
        // Recorded before (a redelivery), or no such order.
        Ok(self.find(id).await?.is_some())
    }

    pub async fn find_ticket(&self, id: ObjectId) -> StoreResult<Option<TicketReplica>> {
        Ok(self.tickets.find_one(doc! {"_id": id}).await?)
    }

    /// Adds a ticket seen for the first time; false when it is there already.
    pub async fn insert_ticket(&self, ticket: &TicketReplica) -> StoreResult<bool> {
        insert_once(&self.tickets, ticket).await
    }

    /// Applies a ticket's whole state when it is newer than the replica's (or the replica
    /// lacks the ticket).
    pub async fn apply_ticket_snapshot(&self, ticket: &TicketReplica) -> StoreResult<()> {
        let newer = self
            .tickets
            .update_one(
                doc! {"_id": ticket.id, "version": {"$lt": ticket.version}},
                replica_set(ticket)?,
            )
            .await?;
        if newer.matched_count == 0 {
            // Absent (inserted now), or as new already (the insert is a duplicate).
            self.insert_ticket(ticket).await?;
        }
        Ok(())
    }

    /// Marks a ticket off sale at `version`; false when the replica is not at the version
    /// just before it.
    pub async fn remove_ticket(&self, id: ObjectId, version: i64) -> StoreResult<bool> {
        let result = self
            .tickets
            .update_one(
                doc! {"_id": id, "version": version - 1},
                doc! {"$set": {"removed": true, "version": version}},
            )
            .await?;
        Ok(result.matched_count == 1)
    }

    /// Applies the next version of a ticket; false when the replica is not at the version
    /// just before it.
    pub async fn update_ticket(&self, ticket: &TicketReplica) -> StoreResult<bool> {
        let result = self
            .tickets
            .update_one(
                doc! {"_id": ticket.id, "version": ticket.version - 1},
                replica_set(ticket)?,
            )
            .await?;
        Ok(result.matched_count == 1)
    }
}
