//! The `signin_failures` collection: recent failed sign-ins per email (see
//! `domain::lockout`), whether or not an account has that email.
//!
//! Many failures of one email arrive at once (that is what an attack is), so each step is
//! one atomic update conditioned on what it depends on, rather than a read-decide-write
//! of the whole record that would keep losing races: a window that ended starts again
//! (conditioned on its start), the failure is counted (`$inc`), and a lock is set by one
//! of the concurrent failures that reached the maximum (conditioned on the count and on
//! the number of locks so far).

use bson::doc;
use chrono::Utc;
use common::mongo::insert_once;
use common::store::StoreResult;
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database};

use crate::domain::lockout::{Failures, LockRule};

#[derive(Clone)]
pub struct FailureStore {
    failures: Collection<Failures>,
    rule: LockRule,
}

impl FailureStore {
    pub fn new(db: &Database, rule: LockRule) -> Self {
        Self {
            failures: db.collection("signin_failures"),
            rule,
        }
    }

    /// How long sign-in of `email` stays locked, if it is.
    pub async fn locked_for(&self, email: &str) -> StoreResult<Option<std::time::Duration>> {
        let record = self.failures.find_one(doc! {"_id": email}).await?;
        Ok(record.and_then(|record| record.locked_for(Utc::now())))
    }

    /// Counts a failure, and locks the email when it reaches the maximum.
    pub async fn record_failure(&self, email: &str) -> StoreResult<()> {
        let now = Utc::now();
        insert_once(&self.failures, &Failures::new(email, now)).await?;
        let window = chrono::Duration::from_std(self.rule.window).unwrap_or(chrono::Duration::MAX);
        let window_start = now.checked_sub_signed(window).unwrap_or(now);
        self.failures
            .update_one(
                doc! {"_id": email, "windowStart": {"$lt": bson::DateTime::from_chrono(window_start)}},
                doc! {"$set": {"count": 0, "windowStart": bson::DateTime::from_chrono(now)}},
            )
            .await?;
        let Some(counted) = self
            .failures
            .find_one_and_update(doc! {"_id": email}, doc! {"$inc": {"count": 1}})
            .return_document(ReturnDocument::After)
            .await?
        else {
            return Ok(());
        };
        if self.rule.should_lock(&counted, now) {
            let lock = chrono::Duration::from_std(self.rule.lock_after(counted.locks))
                .unwrap_or(chrono::Duration::MAX);
            let until = now.checked_add_signed(lock).unwrap_or(now);
            self.failures
                .update_one(
                    doc! {"_id": email, "locks": counted.locks, "count": {"$gte": self.rule.max}},
                    doc! {
                        "$set": {
                            "lockedUntil": bson::DateTime::from_chrono(until),
                            "count": 0,
                            "windowStart": bson::DateTime::from_chrono(now),
                        },
                        "$inc": {"locks": 1},
                    },
                )
                .await?;
            tracing::warn!("an email's sign-in is locked after repeated failures");
        }
        Ok(())
    }

    /// A password reset lifts a lock in force and forgets the failures: whoever reset the
    /// password holds the email, and this is how a locked-out user gets back in. The
    /// number of past locks is kept, so the next lock still lasts longer.
    pub async fn unlock(&self, email: &str) -> StoreResult<()> {
        self.failures
            .update_one(
                doc! {"_id": email},
                doc! {"$set": {"count": 0}, "$unset": {"lockedUntil": ""}},
            )
            .await?;
        Ok(())
    }

    /// A successful sign-in forgets the failures (a lock in force is checked before the
    /// password, so it is never lifted this way), and keeps the number of past locks.
    pub async fn clear(&self, email: &str) -> StoreResult<()> {
        self.failures
            .update_one(doc! {"_id": email}, doc! {"$set": {"count": 0}})
            .await?;
        Ok(())
    }
}
