//! The `users` collection.

use bson::doc;
use bson::oid::ObjectId;
use common::mongo::{ensure_indexes, index};
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};

use common::events::{UserBanned, UserCreated, UserUnbanned};
use common::outbox::{OutboxSignal, PENDING_EVENTS, PendingEvent};

use crate::domain::email::Email;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub email: String,
    pub password_hash: String,
    pub created_at: bson::DateTime,
    pub version: i64,
    /// Suspended by an admin: no sign-in, no refresh, refused by every service.
    #[serde(default)]
    pub banned: bool,
    /// Outbox: events written with this document, removed once published.
    #[serde(default)]
    pub pending_events: Vec<bson::Bson>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("email is already in use")]
    EmailTaken,
    #[error(transparent)]
    Mongo(#[from] mongodb::error::Error),
}

#[derive(Clone)]
pub struct UserStore {
    users: Collection<UserDoc>,
    outbox: OutboxSignal,
}

impl UserStore {
    pub fn new(db: &Database, outbox: OutboxSignal) -> Self {
        Self {
            users: db.collection("users"),
            outbox,
        }
    }

    pub fn collection(&self) -> &Collection<UserDoc> {
        &self.users
    }

    /// The unique index on `email` is what makes concurrent signups safe.
    pub async fn ensure_indexes(&self) -> mongodb::error::Result<()> {
        ensure_indexes(
            &self.users,
            &[index("email_unique", doc! {"email": 1}).unique()],
        )
        .await
    }

    /// Inserts the user together with its `user.created` event: one atomic write.
    pub async fn insert(
        &self,
        email: &Email,
        password_hash: String,
    ) -> Result<UserDoc, StoreError> {
        let id = ObjectId::new();
        let created = PendingEvent::new(UserCreated {
            id: id.to_hex(),
            email: email.as_str().to_owned(),
            version: 0,
        });
        let user = UserDoc {
            id,
            email: email.as_str().to_owned(),
            password_hash,
            created_at: bson::DateTime::now(),
            version: 0,
            banned: false,
            pending_events: vec![created.to_bson()],
        };
        match self.users.insert_one(&user).await {
            Ok(_) => {
                self.outbox.notify();
                Ok(user)
            }
            Err(err) if common::mongo::is_duplicate_key(&err) => Err(StoreError::EmailTaken),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn find_by_email(&self, email: &Email) -> Result<Option<UserDoc>, StoreError> {
        Ok(self.users.find_one(doc! {"email": email.as_str()}).await?)
    }

    pub async fn find(&self, id: ObjectId) -> mongodb::error::Result<Option<UserDoc>> {
        self.users.find_one(doc! {"_id": id}).await
    }

    /// Bans or unbans the user as read, with the event every service follows, if it is
    /// still at the version read. False when it changed meanwhile.
    pub async fn set_banned(&self, read: &UserDoc, banned: bool) -> mongodb::error::Result<bool> {
        let version = read.version + 1;
        let id = read.id.to_hex();
        let event = if banned {
            PendingEvent::new(UserBanned { id, version })
        } else {
            PendingEvent::new(UserUnbanned { id, version })
        };
        let changed = self
            .users
            .update_one(
                doc! {"_id": read.id, "version": read.version},
                doc! {
                    "$set": {"banned": banned, "version": version},
                    "$push": {PENDING_EVENTS: event.to_bson()},
                },
            )
            .await?
            .matched_count
            == 1;
        if changed {
            self.outbox.notify();
        }
        Ok(changed)
    }

    /// Replaces the password hash of the user as read, if it is still at that version.
    pub async fn set_password(
        &self,
        read: &UserDoc,
        password_hash: String,
    ) -> mongodb::error::Result<bool> {
        Ok(self
            .users
            .update_one(
                doc! {"_id": read.id, "version": read.version},
                doc! {"$set": {"passwordHash": password_hash, "version": read.version + 1}},
            )
            .await?
            .matched_count
            == 1)
    }
}
