//! The orders service's collections: `orders` (owned), `tickets` (a replica kept from
//! events) and `payment_conflicts` (payments for orders cancelled meanwhile, to refund).

use bson::oid::ObjectId;
use bson::{Document, doc};
use chrono::{DateTime, Utc};
use common::outbox::{OutboxSignal, PENDING_EVENTS, PendingEvent};
use common::paging::Page;
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};

use crate::domain::{Order, TicketReplica};

/// Present only on orders that hold their ticket (created or complete). A sparse unique
/// index on it lets one insert decide a race for a ticket: exactly one active order per
/// ticket, with no transaction, on MongoDB and FerretDB alike (docs/STORE-CONTRACT.md).
const ACTIVE_TICKET_ID: &str = "activeTicketId";

#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("the ticket is held by another order")]
    TicketHeld,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

#[derive(Clone)]
pub struct OrderStore {
    orders: Collection<Order>,
    tickets: Collection<TicketReplica>,
    conflicts: Collection<Document>,
    outbox: OutboxSignal,
}

fn index(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().name(name.to_owned()).build())
        .build()
}

impl OrderStore {
    pub fn new(db: &Database, outbox: OutboxSignal) -> Self {
        Self {
            orders: db.collection("orders"),
            tickets: db.collection("tickets"),
            conflicts: db.collection("payment_conflicts"),
            outbox,
        }
    }

    pub fn orders(&self) -> &Collection<Order> {
        &self.orders
    }

    pub async fn ensure_indexes(&self) -> mongodb::error::Result<()> {
        let one_active = IndexModel::builder()
            .keys(doc! {ACTIVE_TICKET_ID: 1})
            .options(
                IndexOptions::builder()
                    .name("one_active_order_per_ticket".to_owned())
                    .unique(true)
                    .sparse(true)
                    .build(),
            )
            .build();
        self.orders
            .create_indexes([
                one_active,
                index(doc! {"userId": 1, "_id": -1}, "by_user_newest_first"),
                index(doc! {"status": 1, "expiresAt": 1}, "unpaid_by_expiry"),
            ])
            .await?;
        Ok(())
    }

    /// Places the order with its `order.created` event in one insert, which fails with
    /// [`InsertError::TicketHeld`] when another active order holds the ticket.
    pub async fn insert(&self, order: &Order) -> Result<(), InsertError> {
        let mut document = bson::to_document(order).map_err(anyhow::Error::from)?;
        document.insert(ACTIVE_TICKET_ID, &order.ticket.id);
        document.insert(PENDING_EVENTS, vec![order.status_event().to_bson()]);
        match self
            .orders
            .clone_with_type::<Document>()
            .insert_one(document)
            .await
        {
            Ok(_) => {
                self.outbox.notify();
                Ok(())
            }
            Err(err) if common::mongo::is_duplicate_key(&err) => Err(InsertError::TicketHeld),
            Err(err) => Err(InsertError::Other(err.into())),
        }
    }

    pub async fn find(&self, id: ObjectId) -> mongodb::error::Result<Option<Order>> {
        self.orders.find_one(doc! {"_id": id}).await
    }

    /// The order holding a ticket, if any.
    pub async fn find_holder(&self, ticket_id: &str) -> mongodb::error::Result<Option<Order>> {
        self.orders
            .find_one(doc! {ACTIVE_TICKET_ID: ticket_id})
            .await
    }

    pub async fn list_for_user(
        &self,
        user_id: &str,
        page: &Page,
    ) -> mongodb::error::Result<Vec<Order>> {
        let mut filter = doc! {"userId": user_id};
        if let Some(cursor) = page.cursor {
            filter.insert("_id", doc! {"$lt": cursor});
        }
        self.orders
            .find(filter)
            .sort(doc! {"_id": -1})
            .limit(page.fetch_limit())
            .await?
            .try_collect()
            .await
    }

    /// Writes a transition if the order is still at `expected_version`, with its event.
    /// An order that stops holding its ticket releases it in the same write.
    pub async fn save_transition(
        &self,
        expected_version: i64,
        changed: &Order,
        event: PendingEvent,
    ) -> mongodb::error::Result<bool> {
        let mut update = doc! {
            "$set": {"status": changed.status.as_str(), "version": changed.version},
        };
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

    /// Unpaid orders whose window closed before `before`, oldest first.
    pub async fn expired_unpaid(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> mongodb::error::Result<Vec<Order>> {
        self.orders
            .find(doc! {"status": "created", "expiresAt": {"$lt": bson::DateTime::from_chrono(before)}})
            .sort(doc! {"expiresAt": 1})
            .limit(limit)
            .await?
            .try_collect()
            .await
    }

    /// Keeps a payment that arrived for a cancelled order, once per payment.
    pub async fn record_payment_conflict(&self, conflict: Document) -> mongodb::error::Result<()> {
        match self.conflicts.insert_one(conflict).await {
            Err(err) if !common::mongo::is_duplicate_key(&err) => Err(err),
            _ => Ok(()),
        }
    }

    pub async fn find_ticket(&self, id: ObjectId) -> mongodb::error::Result<Option<TicketReplica>> {
        self.tickets.find_one(doc! {"_id": id}).await
    }

    /// Adds a ticket seen for the first time; false when it is there already.
    pub async fn insert_ticket(&self, ticket: &TicketReplica) -> mongodb::error::Result<bool> {
        match self.tickets.insert_one(ticket).await {
            Ok(_) => Ok(true),
            Err(err) if common::mongo::is_duplicate_key(&err) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Applies the next version of a ticket; false when the replica is not at the version
    /// just before it.
    pub async fn update_ticket(&self, ticket: &TicketReplica) -> mongodb::error::Result<bool> {
        let result = self
            .tickets
            .update_one(
                doc! {"_id": ticket.id, "version": ticket.version - 1},
                doc! {"$set": {"title": &ticket.title, "priceCents": ticket.price_cents, "userId": &ticket.user_id, "version": ticket.version}},
            )
            .await?;
        Ok(result.matched_count == 1)
    }
}
