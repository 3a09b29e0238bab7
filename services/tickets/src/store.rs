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
    pub async fn save_if_version(
        &self,
        expected_version: i64,
        changed: &Ticket,
        event: Option<PendingEvent>,
    ) -> mongodb::error::Result<bool> {
        let mut update = doc! {"$set": {
            "title": &changed.title,
            "priceCents": changed.price_cents,
            "orderId": &changed.order_id,
            "version": changed.version,
            "releasedOrderIds": &changed.released_order_ids,
        }};
        if let Some(event) = &event {
            update.extend(event.push());
        }
        let result = self
            .tickets
            .update_one(
                doc! {"_id": changed.id, "version": expected_version},
                update,
            )
            .await?;
        if result.matched_count == 1 && event.is_some() {
            self.outbox.notify();
        }
        Ok(result.matched_count == 1)
    }
}
