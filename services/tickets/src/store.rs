//! The `tickets` collection. Every change is one version-checked update that also
//! pushes the change's event onto the ticket's outbox.

use std::collections::HashSet;

use bson::oid::ObjectId;
use bson::{Document, doc};
use common::mongo::{ensure_indexes, index};
use common::outbox::{OutboxSignal, PENDING_EVENTS, PendingEvent, push_if_version};
use common::paging::Page;
use common::store::StoreResult;
use futures::TryStreamExt;
use mongodb::{Collection, Database};

use crate::domain::{State, Ticket, city_key, far_future, search_words};

const RELEASED_ORDER_IDS: &str = "releasedOrderIds";
/// Derived from the ticket on every write, for the listing's search and sorts.
const SEARCH_WORDS: &str = "searchWords";
const CITY_KEY: &str = "cityKey";
const SORT_STARTS_AT: &str = "sortStartsAt";

/// The listing's orders; each is served by an index per filter shape (see `ensure_indexes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Newest first (by `_id`).
    Newest,
    /// Soonest event first; tickets without a date last.
    StartsAt,
    /// Cheapest first.
    Price,
    /// Dearest first.
    PriceDescending,
}

impl Sort {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Newest => "newest",
            Self::StartsAt => "startsAt",
            Self::Price => "price",
            Self::PriceDescending => "-price",
        }
    }

    fn order(self) -> Document {
        match self {
            Self::Newest => doc! {"_id": -1},
            Self::StartsAt => doc! {SORT_STARTS_AT: 1, "_id": 1},
            Self::Price => doc! {"priceCents": 1, "_id": 1},
            Self::PriceDescending => doc! {"priceCents": -1, "_id": -1},
        }
    }

    /// The sort key of a ticket, as its cursor carries it (with its `_id`).
    pub fn key(self, ticket: &Ticket) -> Option<i64> {
        match self {
            Self::Newest => None,
            Self::StartsAt => Some(sort_starts_at(ticket).timestamp_millis()),
            Self::Price | Self::PriceDescending => Some(ticket.price_cents),
        }
    }

    /// What comes after (`key`, `id`) in this order.
    fn after(self, key: Option<i64>, id: ObjectId) -> Document {
        match (self, key) {
            (Self::StartsAt, Some(key)) => {
                let at = bson::DateTime::from_millis(key);
                doc! {"$or": [{SORT_STARTS_AT: {"$gt": at}}, {SORT_STARTS_AT: at, "_id": {"$gt": id}}]}
            }
            (Self::Price, Some(key)) => {
                doc! {"$or": [{"priceCents": {"$gt": key}}, {"priceCents": key, "_id": {"$gt": id}}]}
            }
            (Self::PriceDescending, Some(key)) => {
                doc! {"$or": [{"priceCents": {"$lt": key}}, {"priceCents": key, "_id": {"$lt": id}}]}
            }
            _ => doc! {"_id": {"$lt": id}},
        }
    }
}

/// A search of the listing: every filter is optional; the page starts after `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// Words (or beginnings of words) that the title, venue or city must all contain.
    pub words: Vec<String>,
    pub city: Option<String>,
    pub from: Option<bson::DateTime>,
    pub to: Option<bson::DateTime>,
    pub min_cents: Option<i64>,
    pub max_cents: Option<i64>,
    pub sort: Sort,
    pub limit: i64,
    /// The previous page's last sort key and id.
    pub after: Option<(Option<i64>, ObjectId)>,
}

fn sort_starts_at(ticket: &Ticket) -> bson::DateTime {
    ticket
        .starts_at
        .unwrap_or_else(|| bson::DateTime::from_chrono(far_future()))
}

/// The fields derived from a ticket for search and sorts, written with it every time.
fn derived(ticket: &Ticket) -> Document {
    doc! {
        SEARCH_WORDS: search_words(ticket),
        CITY_KEY: ticket.city.as_deref().map(city_key),
        SORT_STARTS_AT: sort_starts_at(ticket),
    }
}

#[derive(Clone)]
pub struct Store {
    tickets: Collection<Ticket>,
    outbox: OutboxSignal,
}

impl Store {
    pub fn new(db: &Database, outbox: OutboxSignal) -> Self {
        Self {
            tickets: db.collection("tickets"),
            outbox,
        }
    }

    pub fn collection(&self) -> &Collection<Ticket> {
        &self.tickets
    }

    /// The listing reads available tickets (`{orderId: null}`), in one of its sorts, maybe in
    /// a city or matching words: one index per sort and shape, equality fields first. The
    /// remaining filters (price or date range, removed, hidden sellers) are checked on the
    /// index's documents. Sellers read theirs by `userId`.
    pub async fn ensure_indexes(&self) -> StoreResult<()> {
        Ok(ensure_indexes(
            &self.tickets,
            &[
                index("available_newest_first", doc! {"orderId": 1, "_id": -1}),
                index(
                    "available_by_start",
                    doc! {"orderId": 1, SORT_STARTS_AT: 1, "_id": 1},
                ),
                index(
                    "available_by_price",
                    doc! {"orderId": 1, "priceCents": 1, "_id": 1},
                ),
                index(
                    "in_city_newest_first",
                    doc! {CITY_KEY: 1, "orderId": 1, "_id": -1},
                ),
                index(
                    "in_city_by_start",
                    doc! {CITY_KEY: 1, "orderId": 1, SORT_STARTS_AT: 1, "_id": 1},
                ),
                index(
                    "in_city_by_price",
                    doc! {CITY_KEY: 1, "orderId": 1, "priceCents": 1, "_id": 1},
                ),
                index(
                    "matching_newest_first",
                    doc! {SEARCH_WORDS: 1, "orderId": 1, "_id": -1},
                ),
                index(
                    "matching_by_start",
                    doc! {SEARCH_WORDS: 1, "orderId": 1, SORT_STARTS_AT: 1, "_id": 1},
                ),
                index(
                    "matching_by_price",
                    doc! {SEARCH_WORDS: 1, "orderId": 1, "priceCents": 1, "_id": 1},
                ),
                index("by_seller_newest_first", doc! {"userId": 1, "_id": -1}),
            ],
        )
        .await?)
    }

    /// Inserts a new ticket with its `ticket.created` event.
    pub async fn insert(&self, ticket: &Ticket) -> StoreResult<()> {
        let mut document = bson::to_document(ticket)?;
        document.extend(derived(ticket));
        let event = PendingEvent::new(ticket.created_event());
        document.insert(PENDING_EVENTS, vec![event.to_bson()]);
        self.tickets
            .clone_with_type::<Document>()
            .insert_one(document)
            .await?;
        self.outbox.notify();
        Ok(())
    }

    pub async fn find(&self, id: ObjectId) -> StoreResult<Option<Ticket>> {
        Ok(self.tickets.find_one(doc! {"_id": id}).await?)
    }

    /// Free tickets matching `search`, in its order, one page plus one (to detect the next
    /// page), except those of `hidden_sellers`.
    pub async fn list_available(
        &self,
        search: &Search,
        hidden_sellers: &HashSet<String>,
    ) -> StoreResult<Vec<Ticket>> {
        let mut filter = doc! {"orderId": null, "removedAt": null};
        match search.words.as_slice() {
            [] => {}
            [word] => {
                filter.insert(SEARCH_WORDS, word);
            }
            words => {
                filter.insert(SEARCH_WORDS, doc! {"$all": words});
            }
        }
        if let Some(city) = &search.city {
            filter.insert(CITY_KEY, city);
        }
        if search.from.is_some() || search.to.is_some() {
            let mut range = doc! {"$lt": bson::DateTime::from_chrono(far_future())};
            if let Some(from) = search.from {
                range.insert("$gte", from);
            }
            if let Some(to) = search.to {
                range.insert("$lte", to);
            }
            filter.insert(SORT_STARTS_AT, range);
        }
        if search.min_cents.is_some() || search.max_cents.is_some() {
            let mut range = doc! {};
            if let Some(min) = search.min_cents {
                range.insert("$gte", min);
            }
            if let Some(max) = search.max_cents {
                range.insert("$lte", max);
            }
            filter.insert("priceCents", range);
        }
        if !hidden_sellers.is_empty() {
            let hidden: Vec<&String> = hidden_sellers.iter().collect();
            filter.insert("userId", doc! {"$nin": hidden});
        }
        if let Some((key, id)) = search.after {
            let after = search.sort.after(key, id);
            filter = doc! {"$and": [filter, after]};
        }
        Ok(self
            .tickets
            .find(filter)
            .sort(search.sort.order())
            .limit(search.limit + 1)
            .await?
            .try_collect()
            .await?)
    }

    /// Writes the search fields of tickets stored before they existed, each conditioned on
    /// the version read (a ticket changed meanwhile got them from that change). Run at
    /// start-up; idempotent.
    pub async fn backfill_search_fields(&self) -> StoreResult<u64> {
        let mut written = 0;
        let mut stalled = 0;
        while stalled < 3 {
            let batch: Vec<Ticket> = self
                .tickets
                .find(doc! {SEARCH_WORDS: {"$exists": false}})
                .limit(200)
                .await?
                .try_collect()
                .await?;
            if batch.is_empty() {
                return Ok(written);
            }
            let mut progress = 0;
            for ticket in &batch {
                let result = self
                    .tickets
                    .update_one(
                        doc! {"_id": ticket.id, "version": ticket.version, SEARCH_WORDS: {"$exists": false}},
                        doc! {"$set": derived(ticket)},
                    )
                    .await?;
                progress += result.modified_count;
            }
            written += progress;
            // Every one changed meanwhile (and so got them): look again, a few times.
            stalled = if progress == 0 { stalled + 1 } else { 0 };
        }
        Ok(written)
    }

    /// A seller's tickets, newest first, one page (plus one), in `state` if given (removed
    /// ones never).
    pub async fn list_of_seller(
        &self,
        user_id: &str,
        state: Option<State>,
        page: &Page,
    ) -> StoreResult<Vec<Ticket>> {
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
        page.fetch(&self.tickets, filter).await
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
    ) -> StoreResult<bool> {
        let mut filter = doc! {"_id": changed.id, "version": expected_version};
        if let Some(holder) = &changed.order_id {
            filter.insert(RELEASED_ORDER_IDS, doc! {"$nin": [holder]});
        }
        let mut push = doc! {PENDING_EVENTS: event.to_bson()};
        if let Some(order_id) = released {
            push.insert(RELEASED_ORDER_IDS, order_id);
        }
        let mut set = doc! {
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
                "removeOnRelease": changed.remove_on_release,
        };
        set.extend(derived(changed));
        let update = doc! {"$set": set, "$push": push};
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
    ) -> StoreResult<bool> {
        Ok(push_if_version(&self.tickets, read.id, read.version, event, &self.outbox).await?)
    }

    /// Records that an order not holding the ticket was cancelled (no version change, no
    /// event), so its late creation will not reserve the ticket. Conditioned on the ticket
    /// as read: if it was reserved meanwhile (by this very order, say), nothing is written
    /// and the caller decides again. False when it was not as read.
    pub async fn remember_release(&self, read: &Ticket, order_id: &str) -> StoreResult<bool> {
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

    async fn store() -> (Store, testkit::TestDatabase) {
        let db = testkit::TestDatabase::new("tickets_store");
        let options = common::mongo::options(&db.config(), "test").await.unwrap();
        let database = common::mongo::connect(&options, &db.name).await.unwrap();
        (Store::new(&database, OutboxSignal::default()), db)
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
