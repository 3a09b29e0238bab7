//! The `signin_failures` collection: recent failed sign-ins per email (see
//! `domain::lockout`), whether or not an account has that email.

use bson::doc;
use chrono::Utc;
use common::change::{ChangeError, Decision, change};
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
    pub async fn locked_for(
        &self,
        email: &str,
    ) -> mongodb::error::Result<Option<std::time::Duration>> {
        let record = self.failures.find_one(doc! {"_id": email}).await?;
        Ok(record.and_then(|record| record.locked_for(Utc::now())))
    }

    /// Counts a failure (conditioned on the record as read: concurrent failures all count).
    pub async fn record_failure(
        &self,
        email: &str,
    ) -> Result<(), ChangeError<mongodb::error::Error>> {
        let first = Failures::new(email, Utc::now());
        common::mongo::insert_once(&self.failures, &first)
            .await
            .map_err(ChangeError::Store)?;
        let (failures, rule) = (&self.failures, self.rule);
        change(
            || std::future::IntoFuture::into_future(failures.find_one(doc! {"_id": email})),
            |read: &Failures| Decision::Write(read.after_failure(Utc::now(), rule), ()),
            |read, next: Failures| async move {
                let replaced = failures
                    .replace_one(doc! {"_id": email, "version": read.version}, &next)
                    .await?;
                Ok(replaced.matched_count == 1)
            },
        )
        .await
    }

    /// A successful sign-in forgets the failures (but not a lock in force: that is
    /// checked before the password).
    pub async fn clear(&self, email: &str) -> mongodb::error::Result<()> {
        self.failures.delete_one(doc! {"_id": email}).await?;
        Ok(())
    }
}
