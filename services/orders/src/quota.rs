//! At most `MAX_ACTIVE_ORDERS_PER_USER` unpaid orders per buyer, without a transaction.
//!
//! Each buyer has a record (`buyers` collection) listing the orders they placed lately.
//! Placing an order first claims a place in it: the claim keeps only the listed orders
//! still unpaid (or not in the store yet but claimed in the last minute: their insert may
//! be in flight) and adds the
//! new one if there is room, written conditioned on the record's version as read, so two
//! concurrent claims can never both take the last place. Paid, cancelled and never
//! inserted orders drop out at the next claim: nothing has to release a place.

use std::collections::HashMap;

use bson::doc;
use bson::oid::ObjectId;
use chrono::{DateTime, Utc};
use common::change::{ChangeError, Decision, change};
use common::store::{StoreError, StoreResult};
use futures::TryStreamExt;
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};

use crate::domain::{Order, Status};

/// How long a claimed place counts without its order in the store.
const IN_FLIGHT: chrono::Duration = chrono::Duration::minutes(1);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Buyer {
    /// `buyer-<user id>`: string `_id`s of 24 hex digits collide with ObjectIds on the
    /// FerretDB stand-in (docs/STORE-CONTRACT.md).
    #[serde(rename = "_id")]
    key: String,
    places: Vec<Place>,
    version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct Place {
    order_id: ObjectId,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    claimed_at: DateTime<Utc>,
}

fn key(user_id: &str) -> String {
    format!("buyer-{user_id}")
}

#[derive(Clone)]
pub struct Quota {
    buyers: Collection<Buyer>,
    orders: Collection<Order>,
    max: usize,
}

impl Quota {
    pub fn new(db: &Database, orders: &Collection<Order>, max: usize) -> Self {
        Self {
            buyers: db.collection("buyers"),
            orders: orders.clone(),
            max,
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Takes a place for `order_id`; false when the buyer has no room.
    pub async fn claim(
        &self,
        user_id: &str,
        order_id: ObjectId,
    ) -> Result<bool, ChangeError<StoreError>> {
        let empty = Buyer {
            key: key(user_id),
            places: Vec::new(),
            version: 0,
        };
        common::mongo::insert_once(&self.buyers, &empty)
            .await
            .map_err(ChangeError::Store)?;
        let now = Utc::now();
        change(
            || self.load(user_id),
            |(buyer, stored)| {
                let mut kept: Vec<Place> = buyer
                    .places
                    .iter()
                    .filter(|p| match stored.get(&p.order_id) {
                        Some(unpaid) => *unpaid,
                        None => now - p.claimed_at < IN_FLIGHT,
                    })
                    .cloned()
                    .collect();
                if kept.len() >= self.max {
                    return Decision::Keep(false);
                }
                kept.push(Place {
                    order_id,
                    claimed_at: now,
                });
                Decision::Write(kept, true)
            },
            |(read, _), places| self.save(read, places),
        )
        .await
    }

    /// Gives back the place of an order that was not placed after all (its ticket was
    /// held), rather than letting it count for a minute.
    pub async fn release(
        &self,
        user_id: &str,
        order_id: ObjectId,
    ) -> Result<(), ChangeError<StoreError>> {
        change(
            || self.load(user_id),
            |(buyer, _)| {
                let kept: Vec<Place> = buyer
                    .places
                    .iter()
                    .filter(|p| p.order_id != order_id)
                    .cloned()
                    .collect();
                if kept.len() == buyer.places.len() {
                    Decision::Keep(())
                } else {
                    Decision::Write(kept, ())
                }
            },
            |(read, _), places| self.save(read, places),
        )
        .await
    }

    /// Replaces the places of the record as read, if it is still at that version (a whole
    /// new list: `$pull` with a condition silently removes nothing on FerretDB).
    async fn save(&self, read: Buyer, places: Vec<Place>) -> StoreResult<bool> {
        let places = bson::to_bson(&places)?;
        let written = self
            .buyers
            .update_one(
                doc! {"_id": &read.key, "version": read.version},
                doc! {"$set": {"places": places, "version": read.version + 1}},
            )
            .await?;
        Ok(written.matched_count == 1)
    }

    /// The buyer's record, and for each of its orders in the store whether it is unpaid.
    async fn load(&self, user_id: &str) -> StoreResult<Option<(Buyer, HashMap<ObjectId, bool>)>> {
        let Some(buyer) = self.buyers.find_one(doc! {"_id": key(user_id)}).await? else {
            return Ok(None);
        };
        let ids: Vec<ObjectId> = buyer.places.iter().map(|p| p.order_id).collect();
        let stored: Vec<Order> = self
            .orders
            .find(doc! {"_id": {"$in": ids}})
            .await?
            .try_collect()
            .await?;
        let unpaid = stored
            .into_iter()
            .map(|order| (order.id, order.status == Status::Created))
            .collect();
        Ok(Some((buyer, unpaid)))
    }
}
