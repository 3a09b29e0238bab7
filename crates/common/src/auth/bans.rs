//! Bans: every service that verifies sessions keeps its own copy of who is suspended.
//!
//! Auth publishes `user.banned` / `user.unbanned` with the user's version. Each service
//! applies them to its own `banned_users` collection (newer versions only, so a late
//! unban never undoes a later ban), and every replica re-reads that small collection
//! into memory a few times a second. One replica's durable consumer receives each event,
//! and the store is how the others, and a restarted process, learn of it.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use bson::doc;
use futures::TryStreamExt;
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::events::{Envelope, UserBanned, UserUnbanned};
use crate::listener::{Outcome, Subscriptions};
use crate::shutdown::BackgroundTasks;

/// How often a replica re-reads the bans: a ban reaches every replica within this (plus
/// the event's trip).
pub const REFRESH_EVERY: Duration = Duration::from_millis(250);

/// The users suspended now, as this process knows them. Cheap to clone and to read.
#[derive(Clone, Default)]
pub struct BanList(Arc<RwLock<Arc<HashSet<String>>>>);

impl BanList {
    pub fn contains(&self, user_id: &str) -> bool {
        self.snapshot().contains(user_id)
    }

    /// Every banned user id (e.g. to leave their listings out of a query).
    pub fn snapshot(&self) -> Arc<HashSet<String>> {
        match self.0.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, banned: HashSet<String>) {
        let banned = Arc::new(banned);
        match self.0.write() {
            Ok(mut guard) => *guard = banned,
            Err(poisoned) => *poisoned.into_inner() = banned,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BanDoc {
    /// [`key`] of the user's id.
    #[serde(rename = "_id")]
    id: String,
    banned: bool,
    /// The user's version in auth when this was decided.
    version: i64,
}

/// The record's `_id` for a user: prefixed, as string `_id`s of 24 hex digits collide with
/// ObjectIds on the FerretDB stand-in (docs/STORE-CONTRACT.md).
fn key(user_id: &str) -> String {
    format!("user-{user_id}")
}

/// A service's `banned_users` collection.
#[derive(Clone)]
pub struct BanStore {
    bans: Collection<BanDoc>,
}

impl BanStore {
    pub fn new(db: &Database) -> Self {
        Self {
            bans: db.collection("banned_users"),
        }
    }

    /// Records the user's state as of `version`, unless a newer one is recorded. True
    /// when this changed the record.
    pub async fn apply(
        &self,
        user_id: &str,
        banned: bool,
        version: i64,
    ) -> crate::store::StoreResult<bool> {
        let newer = self
            .bans
            .update_one(
                doc! {"_id": key(user_id), "version": {"$lt": version}},
                doc! {"$set": {"banned": banned, "version": version}},
            )
            .await?;
        if newer.matched_count == 1 {
            return Ok(true);
        }
        // Not there yet, or already at this version or a later one (then the insert
        // finds the key taken and nothing changes).
        let record = BanDoc {
            id: key(user_id),
            banned,
            version,
        };
        crate::mongo::insert_once(&self.bans, &record).await
    }

    pub async fn banned_ids(&self) -> crate::store::StoreResult<HashSet<String>> {
        let records: Vec<BanDoc> = self
            .bans
            .find(doc! {"banned": true})
            .await?
            .try_collect()
            .await?;
        Ok(records
            .into_iter()
            .filter_map(|record| record.id.strip_prefix("user-").map(str::to_owned))
            .collect())
    }

    /// Records auth's ban events in this store (one durable consumer per event for the
    /// service) and [`Self::watch`]es it.
    pub async fn follow(
        &self,
        bus: &Bus,
        service: &str,
        tasks: &mut BackgroundTasks,
    ) -> anyhow::Result<BanList> {
        Subscriptions::new(bus, service, self.clone(), tasks)
            .on(Self::user_banned)
            .await?
            .on(Self::user_unbanned)
            .await?;
        self.watch(tasks).await
    }

    /// A list of the banned users, filled now and kept equal to the store.
    pub async fn watch(&self, tasks: &mut BackgroundTasks) -> anyhow::Result<BanList> {
        let list = BanList::default();
        list.replace(self.banned_ids().await.context("reading bans")?);
        tasks.push(self.keep_in_sync(list.clone(), tasks.token()));
        Ok(list)
    }

    fn keep_in_sync(&self, list: BanList, shutdown: CancellationToken) -> JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                match store.banned_ids().await {
                    Ok(banned) => list.replace(banned),
                    // Keep the last known list: a store hiccup must not lift every ban.
                    Err(err) => tracing::warn!(error = %err, "re-reading bans failed"),
                }
            }
        })
    }

    /// The handler of `user.banned`.
    pub async fn user_banned(self, event: Envelope<UserBanned>) -> Outcome {
        self.record(&event.data.id, true, event.data.version).await
    }

    /// The handler of `user.unbanned`.
    pub async fn user_unbanned(self, event: Envelope<UserUnbanned>) -> Outcome {
        self.record(&event.data.id, false, event.data.version).await
    }

    async fn record(&self, user_id: &str, banned: bool, version: i64) -> Outcome {
        match self.apply(user_id, banned, version).await {
            Ok(_) => Outcome::Ack,
            Err(err) => err.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_answers_from_its_latest_snapshot() {
        let list = BanList::default();
        assert!(!list.contains("u1"));
        list.replace(HashSet::from(["u1".to_owned()]));
        assert!(list.contains("u1") && !list.contains("u2"));
        let before = list.snapshot();
        list.replace(HashSet::new());
        assert!(before.contains("u1") && !list.contains("u1"));
    }
}
