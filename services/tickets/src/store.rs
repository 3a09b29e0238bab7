//! The `tickets` collection. Every change is one version-checked update that also
//! pushes the change's event onto the ticket's outbox.

use bson::oid::ObjectId;
use bson::{Document, doc};
use common::outbox::{OutboxSignal, PENDING_EVENTS, PendingEvent};
use common::paging::Page;
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};

use crate::domain::Ticket;

const RELEASED_ORDER_IDS: &str = "releasedOrderIds";

#[derive(Clone)]
pub struct TicketStore {
    tickets: Collection<Ticket>,
    outbox: OutboxSignal,
}

impl TicketStore {
    pub fn new(db: &Database, outbox: OutboxSignal) -> Self {
        Self {
            tickets: db.collection("tickets"),
            outbox,
        }
    }

    pub fn collection(&self) -> &Collection<Ticket> {
        &self.tickets
    }

    /// The listing reads available tickets newest first: `{orderId: null}` sorted by `_id`.
    pub async fn ensure_indexes(&self) -> mongodb::error::Result<()> {
        let available = IndexModel::builder()
            .keys(doc! {"orderId": 1, "_id": -1})
            .options(
                IndexOptions::builder()
                    .name("available_newest_first".to_owned())
                    .build(),
            )
            .build();
        self.tickets.create_index(available).await?;
        Ok(())
    }

    /// Inserts a new ticket with its `ticket.created` event.
    pub async fn insert(&self, ticket: &Ticket) -> anyhow::Result<()> {
        let mut document = bson::to_document(ticket)?;
        let event = PendingEvent::new(ticket.created_event());
        document.insert(PENDING_EVENTS, vec![event.to_bson()]);
        self.tickets
            .clone_with_type::<Document>()
            .insert_one(document)
            .await?;
        self.outbox.notify();
        Ok(())
    }

    pub async fn find(&self, id: ObjectId) -> mongodb::error::Result<Option<Ticket>> {
        self.tickets.find_one(doc! {"_id": id}).await
    }

    /// Unreserved tickets, newest first, one page (plus one to detect the next page).
    pub async fn list_available(&self, page: &Page) -> mongodb::error::Result<Vec<Ticket>> {
        let mut filter = doc! {"orderId": null};
        if let Some(cursor) = page.cursor {
            filter.insert("_id", doc! {"$lt": cursor});
        }
        self.tickets
            .find(filter)
            .sort(doc! {"_id": -1})
            .limit(page.fetch_limit())
            .await?
            .try_collect()
            .await
    }

    /// Writes `changed` if the stored ticket is still at `expected_version`, with `event`
    /// on its outbox, in one atomic update. False when someone else changed it first.
    ///
    /// `releasedOrderIds` is never overwritten, only added to: a ticket is never saved as
    /// held by an order whose cancellation was recorded meanwhile, and `released` (the
    /// order a release frees it from) is recorded in the same write.
    pub async fn save_if_version(
        &self,
        expected_version: i64,
        changed: &Ticket,
        event: PendingEvent,
        released: Option<&str>,
    ) -> mongodb::error::Result<bool> {
        let mut filter = doc! {"_id": changed.id, "version": expected_version};
        if let Some(holder) = &changed.order_id {
            filter.insert(RELEASED_ORDER_IDS, doc! {"$nin": [holder]});
        }
        let mut push = doc! {PENDING_EVENTS: event.to_bson()};
        if let Some(order_id) = released {
            push.insert(RELEASED_ORDER_IDS, order_id);
        }
        let update = doc! {
            "$set": {
                "title": &changed.title,
                "priceCents": changed.price_cents,
                "orderId": &changed.order_id,
                "version": changed.version,
            },
            "$push": push,
        };
        let saved = self.tickets.update_one(filter, update).await?.matched_count == 1;
        if saved {
            self.outbox.notify();
        }
        Ok(saved)
    }

    /// Records that an order not holding the ticket was cancelled (no version change, no
    /// event), so its late creation will not reserve the ticket.
    pub async fn remember_release(
        &self,
        id: ObjectId,
        order_id: &str,
    ) -> mongodb::error::Result<()> {
        self.tickets
            .update_one(
                doc! {"_id": id, RELEASED_ORDER_IDS: {"$nin": [order_id]}},
                doc! {"$push": {RELEASED_ORDER_IDS: order_id}},
            )
            .await?;
        Ok(())
    }
}
