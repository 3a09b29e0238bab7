//! The `users` collection.

use bson::oid::ObjectId;
use bson::{Document, doc};
use common::mongo::{Inserted, ensure_indexes, index, insert_unless_duplicate};
use common::store::StoreResult;
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};

use common::events::{UserBanned, UserCreated, UserPasswordResetRequested, UserUnbanned};
use common::outbox::{OutboxSignal, PENDING_EVENTS, PendingEvent};

use crate::domain::email::Email;
use crate::domain::reset::ResetToken;

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
    /// The pending password reset, if one was asked for and not used since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_reset: Option<PasswordReset>,
    /// Incremented by every new password (a change or a reset), in the same write. Each
    /// session records the value its sign-in checked the password against; a session
    /// under another value is refused at refresh, whether or not ending the sessions
    /// eagerly after the new password worked. Absent (0) in users created before it.
    #[serde(default)]
    pub credentials_version: i64,
}

/// A password reset asked for: the hash of its single-use token and when it expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordReset {
    /// SHA-256 of the token, hex (`domain::reset::hash`); the token itself is not kept.
    pub token_hash: String,
    pub expires_at: bson::DateTime,
}

/// The fields of the pending reset, as filters and updates name them.
const RESET: &str = "passwordReset";
const RESET_TOKEN_HASH: &str = "passwordReset.tokenHash";
const RESET_EXPIRES_AT: &str = "passwordReset.expiresAt";
const CREDENTIALS_VERSION: &str = "credentialsVersion";

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
    pub async fn ensure_indexes(&self) -> StoreResult<()> {
        Ok(ensure_indexes(
            &self.users,
            &[
                index("email_unique", doc! {"email": 1}).unique(),
                // Only users with a pending reset are in it: a confirm finds one by its
                // token's hash without a scan.
                index("password_reset_token", doc! {RESET_TOKEN_HASH: 1}).sparse(),
            ],
        )
        .await?)
    }

    /// Inserts the user together with its `user.created` event: one atomic write. `None`
    /// (nothing written) when the email is in use.
    pub async fn insert(
        &self,
        email: &Email,
        password_hash: String,
    ) -> StoreResult<Option<UserDoc>> {
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
            password_reset: None,
            credentials_version: 0,
        };
        match insert_unless_duplicate(&self.users, &user).await? {
            Inserted::New => {
                self.outbox.notify();
                Ok(Some(user))
            }
            Inserted::Duplicate => Ok(None),
        }
    }

    pub async fn find_by_email(&self, email: &Email) -> StoreResult<Option<UserDoc>> {
        Ok(self.users.find_one(doc! {"email": email.as_str()}).await?)
    }

    pub async fn find(&self, id: ObjectId) -> StoreResult<Option<UserDoc>> {
        Ok(self.users.find_one(doc! {"_id": id}).await?)
    }

    /// Bans or unbans the user as read, with the event every service follows, if it is
    /// still at the version read. False when it changed meanwhile.
    pub async fn set_banned(&self, read: &UserDoc, banned: bool) -> StoreResult<bool> {
        let version = read.version + 1;
        let id = read.id.to_hex();
        let event = if banned {
            PendingEvent::new(UserBanned { id, version })
        } else {
            PendingEvent::new(UserUnbanned { id, version })
        };
        self.update_with_event(read, doc! {"banned": banned}, event)
            .await
    }

    /// Replaces the password hash of the user as read, if it is still at that version, and
    /// increments the credentials version with it (every earlier session is refused from
    /// then on). A pending password reset is dropped with it: its link was for the old
    /// password.
    pub async fn set_password(&self, read: &UserDoc, password_hash: String) -> StoreResult<bool> {
        Ok(self
            .users
            .update_one(
                doc! {"_id": read.id, "version": read.version},
                doc! {
                    "$set": {"passwordHash": password_hash, "version": read.version + 1},
                    "$inc": {CREDENTIALS_VERSION: 1},
                    "$unset": {RESET: ""},
                },
            )
            .await?
            .matched_count
            == 1)
    }

    /// Stores a new pending reset on the user as read (replacing any earlier one), with
    /// the `user.password_reset_requested` event that carries the token in clear to
    /// notifications: one write, if the user is still at the version read.
    pub async fn request_password_reset(
        &self,
        read: &UserDoc,
        token: &ResetToken,
        expires_at: bson::DateTime,
    ) -> StoreResult<bool> {
        let event = PendingEvent::new(UserPasswordResetRequested {
            user_id: read.id.to_hex(),
            token: token.expose().to_owned(),
            expires_at: expires_at.to_chrono(),
            email: Some(read.email.clone()),
        });
        let reset = doc! {RESET: {"tokenHash": token.hash(), "expiresAt": expires_at}};
        self.update_with_event(read, reset, event).await
    }

    /// Sets `fields` on the user as read and moves it to the next version, with `event`
    /// in its outbox: one write, if the user is still at the version read. False when it
    /// changed meanwhile.
    async fn update_with_event(
        &self,
        read: &UserDoc,
        mut fields: Document,
        event: PendingEvent,
    ) -> StoreResult<bool> {
        fields.insert("version", read.version + 1);
        let changed = self
            .users
            .update_one(
                doc! {"_id": read.id, "version": read.version},
                doc! {"$set": fields, "$push": {PENDING_EVENTS: event.to_bson()}},
            )
            .await?
            .matched_count
            == 1;
        if changed {
            self.outbox.notify();
        }
        Ok(changed)
    }

    /// The user whose pending reset has this token hash, expired or not.
    pub async fn find_by_reset_token(&self, token_hash: &str) -> StoreResult<Option<UserDoc>> {
        Ok(self
            .users
            .find_one(doc! {RESET_TOKEN_HASH: token_hash})
            .await?)
    }

    /// Sets the password of the user whose pending reset has this token hash and has not
    /// expired at `now`, increments the credentials version (every earlier session is
    /// refused from then on) and removes the reset: one write, conditioned on the token
    /// still being there, so of two uses of one token exactly one succeeds, and on the user
    /// not being banned. False when the token is gone (used, replaced) or expired, or the
    /// user is banned.
    pub async fn reset_password(
        &self,
        id: ObjectId,
        token_hash: &str,
        password_hash: String,
        now: bson::DateTime,
    ) -> StoreResult<bool> {
        Ok(self
            .users
            .update_one(
                doc! {
                    "_id": id,
                    RESET_TOKEN_HASH: token_hash,
                    RESET_EXPIRES_AT: {"$gt": now},
                    "banned": {"$ne": true},
                },
                doc! {
                    "$set": {"passwordHash": password_hash},
                    "$inc": {"version": 1, CREDENTIALS_VERSION: 1},
                    "$unset": {RESET: ""},
                },
            )
            .await?
            .matched_count
            == 1)
    }
}
