//! The `sessions` collection: one record per session (a refresh-token family).
//!
//! A refresh token is `<session id>.<secret>`; only a hash of the secret is stored. Each
//! use replaces the secret (rotation), conditioned on the hash as read, so of two uses of
//! one token exactly one wins. A token that is not the session's current one has been
//! used before: someone holds a copy, and the whole session is revoked (reuse detection).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bson::doc;
use bson::oid::ObjectId;
use chrono::{DateTime, Utc};
use common::mongo::{ensure_indexes, index};
use common::store::{StoreError, StoreResult};
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionDoc {
    #[serde(rename = "_id")]
    id: String,
    user_id: ObjectId,
    /// SHA-256 of the current token's secret, hex.
    token_hash: String,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    expires_at: DateTime<Utc>,
    revoked: bool,
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    created_at: DateTime<Utc>,
    /// The user's credentials version the sign-in checked the password against
    /// (`UserDoc::credentials_version`; 0 in sessions started before it was recorded).
    #[serde(default)]
    credentials_version: i64,
}

/// A refresh token as handed to the browser; never logged.
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A session that was started or continued: who it belongs to and its new token.
pub struct Issued {
    pub session_id: String,
    pub user_id: ObjectId,
    /// The user's credentials version the session was started under.
    pub credentials_version: i64,
    pub token: RefreshToken,
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Unknown, malformed, expired or revoked.
    #[error("refresh token is not valid")]
    Invalid,
    /// A token that was already used: the session is revoked now.
    #[error("refresh token reused; the session is revoked")]
    Reused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<mongodb::error::Error> for RefreshError {
    fn from(err: mongodb::error::Error) -> Self {
        Self::Store(err.into())
    }
}

#[derive(Clone)]
pub struct SessionStore {
    sessions: Collection<SessionDoc>,
}

impl SessionStore {
    pub fn new(db: &Database) -> Self {
        Self {
            sessions: db.collection("sessions"),
        }
    }

    pub async fn ensure_indexes(&self) -> StoreResult<()> {
        Ok(ensure_indexes(&self.sessions, &[index("by_user", doc! {"userId": 1})]).await?)
    }

    /// Starts a session for the user under the credentials version its password was
    /// checked against, lasting `ttl` unless used.
    pub async fn start(
        &self,
        user_id: ObjectId,
        credentials_version: i64,
        ttl: std::time::Duration,
    ) -> StoreResult<Issued> {
        let now = Utc::now();
        let session_id = uuid::Uuid::new_v4().simple().to_string();
        let (secret, token_hash) = new_secret();
        self.sessions
            .insert_one(SessionDoc {
                id: session_id.clone(),
                user_id,
                token_hash,
                expires_at: now + lifetime(ttl),
                revoked: false,
                created_at: now,
                credentials_version,
            })
            .await?;
        Ok(Issued {
            token: RefreshToken(format!("{session_id}.{secret}")),
            session_id,
            user_id,
            credentials_version,
        })
    }

    /// Continues the session of `token` with a new token, lasting `ttl` from now.
    pub async fn rotate(
        &self,
        token: &str,
        ttl: std::time::Duration,
    ) -> Result<Issued, RefreshError> {
        let (session_id, secret) = token.split_once('.').ok_or(RefreshError::Invalid)?;
        let session = self
            .sessions
            .find_one(doc! {"_id": session_id})
            .await?
            .ok_or(RefreshError::Invalid)?;
        if session.revoked || session.expires_at <= Utc::now() {
            return Err(RefreshError::Invalid);
        }
        if session.token_hash != hash(secret) {
            self.revoke(session_id).await?;
            return Err(RefreshError::Reused);
        }
        let (new_secret, new_hash) = new_secret();
        let rotated = self
            .sessions
            .update_one(
                doc! {"_id": session_id, "tokenHash": &session.token_hash, "revoked": false},
                doc! {"$set": {
                    "tokenHash": new_hash,
                    "expiresAt": bson::DateTime::from_chrono(Utc::now() + lifetime(ttl)),
                }},
            )
            .await?
            .matched_count
            == 1;
        if !rotated {
            // Another use of the same token won the race: two holders of one token.
            self.revoke(session_id).await?;
            return Err(RefreshError::Reused);
        }
        Ok(Issued {
            token: RefreshToken(format!("{session_id}.{new_secret}")),
            session_id: session_id.to_owned(),
            user_id: session.user_id,
            credentials_version: session.credentials_version,
        })
    }

    /// The session id a refresh token names (for sign-out), without checking it.
    pub fn session_of(token: &str) -> Option<&str> {
        token.split_once('.').map(|(id, _)| id)
    }

    pub async fn revoke(&self, session_id: &str) -> StoreResult<()> {
        self.sessions
            .update_one(doc! {"_id": session_id}, doc! {"$set": {"revoked": true}})
            .await?;
        Ok(())
    }

    /// Ends every session of the user (sign-out everywhere, a new password, a ban).
    pub async fn revoke_all(&self, user_id: ObjectId) -> StoreResult<()> {
        self.sessions
            .update_many(
                doc! {"userId": user_id, "revoked": false},
                doc! {"$set": {"revoked": true}},
            )
            .await?;
        Ok(())
    }
}

fn new_secret() -> (String, String) {
    let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let hashed = hash(&secret);
    (secret, hashed)
}

/// A plain SHA-256 suffices: the secret is 256 random bits, nothing to guess.
fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn lifetime(ttl: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}
