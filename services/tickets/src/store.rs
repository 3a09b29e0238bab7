//! The `tickets` collection. Every change is one version-checked update that also
//! pushes the change's event onto the ticket's outbox.

use std::collections::HashSet;

use bson::oid::ObjectId;
use bson::{Document, doc};
use common::mongo::{ensure_indexes, index};
use common::outbox::{OutboxSignal, PENDING_EVENTS, PendingEvent, push_if_version};
use common::paging::Page;
use futures::TryStreamExt;
use mongodb::{Collection, Database};

use crate::domain::{State, Ticket};

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
        ensure_indexes(
            &self.tickets,
            &[
                index("available_newest_first", doc! {"orderId": 1, "_id": -1}),
                index("by_seller_newest_first", doc! {"userId": 1, "_id": -1}),
            ],
        )
        .await
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
    /// Free tickets, newest first, except those of `hidden_sellers`.
    pub async fn list_available(
        &self,
        page: &Page,
        hidden_sellers: &HashSet<String>,
    ) -> mongodb::error::Result<Vec<Ticket>> {
        let mut filter = doc! {"orderId": null, "removedAt": null};
        if !hidden_sellers.is_empty() {
            let hidden: Vec<&String> = hidden_sellers.iter().collect();
            filter.insert("userId", doc! {"$nin": hidden});
        }
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

    /// A seller's tickets, newest first, one page (plus one), in `state` if given (removed
    /// ones never).
    pub async fn list_of_seller(
        &self,
        user_id: &str,
        state: Option<State>,
        page: &Page,
    ) -> mongodb::error::Result<Vec<Ticket>> {
        let mut filter = doc! {"userId": user_id, "removedAt": null};
        match state {
            None | Some(State::Removed) => {}
            Some(State::Available) => {
                filter.insert("orderId", bson::Bson::Null);
            }
            Some(State::Reserved) => {
                filter.insert("orderId", doc! {"$ne": null});
                filter.insert("soldForCents", bson::Bson::Null);
            }
            Some(State::Sold) => {
                filter.insert("soldForCents", doc! {"$ne": null});
            }
        }
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
                "venue": &changed.venue,
                "city": &changed.city,
                "startsAt": changed.starts_at,
                "section": &changed.section,
                "row": &changed.row,
                "seat": &changed.seat,
                "description": &changed.description,
                "removedAt": changed.removed_at,
                "reservedPriceCents": changed.reserved_price_cents,
                "soldForCents": changed.sold_for_cents,
            },
            "$push": push,
        };
        let saved = self.tickets.update_one(filter, update).await?.matched_count == 1;
        if saved {
            self.outbox.notify();
        }
        Ok(saved)
    }

    /// Publishes `event` about the ticket as read, only if it is still at that version.
    pub async fn push_event_if_version(
        &self,
        read: &Ticket,
        event: PendingEvent,
    ) -> mongodb::error::Result<bool> {
        push_if_version(&self.tickets, read.id, read.version, event, &self.outbox).await
    }

    /// Records that an order not holding the ticket was cancelled (no version change, no
    /// event), so its late creation will not reserve the ticket. Conditioned on the ticket
    /// as read: if it was reserved meanwhile (by this very order, say), nothing is written
    /// and the caller decides again. False when it was not as read.
    pub async fn remember_release(
        &self,
        read: &Ticket,
        order_id: &str,
    ) -> mongodb::error::Result<bool> {
        let result = self
            .tickets
            .update_one(
                doc! {"_id": read.id, "version": read.version, RELEASED_ORDER_IDS: {"$nin": [order_id]}},
                doc! {"$push": {RELEASED_ORDER_IDS: order_id}},
            )
            .await?;
        Ok(result.matched_count == 1)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::{Reserve, Title};
    use common::money::Cents;

    async fn store() -> (TicketStore, testkit::TestDatabase) {
        let db = testkit::TestDatabase::new("tickets_store");
        let options = common::mongo::options(&db.config(), "test").await.unwrap();
        let database = common::mongo::connect(&options, &db.name).await.unwrap();
        (TicketStore::new(&database, OutboxSignal::default()), db)
    }

    /// The interleaving a fault run found: `order.cancelled` read the ticket free and
    /// decided "remember this release"; the same order's reservation was saved before the
    /// remembering was written. The stale decision must write nothing, or the ticket stays
    /// held by a cancelled order for good.
    #[tokio::test]
    async fn a_release_decided_on_a_free_ticket_is_not_recorded_once_that_order_holds_it() {
        let (store, _db) = store().await;
        let ticket = Ticket::new(
            Title::parse("Gig").unwrap(),
            Cents::new(1000).unwrap(),
            "seller",
            common::events::TicketDetails::default(),
        );
        store.insert(&ticket).await.unwrap();
        let read_by_release = store.find(ticket.id).await.unwrap().unwrap();

        let Reserve::Apply(reserved) = read_by_release.reserve("o1", 1000) else {
            panic!("a free ticket is reservable")
        };
        let event = PendingEvent::new(reserved.updated_event());
        assert!(
            store
                .save_if_version(0, &reserved, event, None)
                .await
                .unwrap()
        );

        let written = store
            .remember_release(&read_by_release, "o1")
            .await
            .unwrap();
        assert!(!written, "a decision on a stale read must not be written");
        let now = store.find(ticket.id).await.unwrap().unwrap();
        assert_eq!(now.order_id.as_deref(), Some("o1"));
        assert!(now.released_order_ids.is_empty(), "{now:?}");
    }
}
