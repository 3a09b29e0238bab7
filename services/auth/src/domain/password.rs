//! Password rules and argon2id hashing.
//!
//! Hashing is deliberately slow (tens of milliseconds), so it runs on the blocking pool,
//! never on the async workers.

use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;
pub const INVALID_PASSWORD: &str = "Password must be between 8 and 128 characters";

/// A password that satisfies the length rule; not printable.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let len = raw.chars().count();
        if (MIN_LEN..=MAX_LEN).contains(&len) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(INVALID_PASSWORD)
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes and verifies passwords with argon2id and the crate's default parameters.
#[derive(Clone, Default)]
pub struct Passwords {
    /// A hash of a random password, verified against when the user does not exist, so
    /// "no such user" and "wrong password" take the same time.
    dummy: Arc<OnceLock<String>>,
}

impl Passwords {
    pub fn new() -> Self {
        Self::default()
    }

    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        tokio::task::spawn_blocking(move || hash_blocking(&password.0))
            .await
            .map_err(|e| HashError(e.to_string()))?
    }

    /// Verifies against `hash`, or against the dummy hash when there is no user.
    /// Returns false for a missing user whatever the password.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, HashError> {
        let known_user = hash.is_some();
        let hash = match hash {
            Some(h) => h.to_owned(),
            None => self.dummy_hash().await?,
        };
        let password = password.to_owned();
        // A malformed stored hash verifies as false rather than failing the request.
        let matches = tokio::task::spawn_blocking(move || {
            Argon2::default()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
        .map_err(|e| HashError(e.to_string()))?;
        Ok(known_user && matches)
    }

    async fn dummy_hash(&self) -> Result<String, HashError> {
        if let Some(hash) = self.dummy.get() {
            return Ok(hash.clone());
        }
        let random = uuid::Uuid::new_v4().to_string();
        let hash = tokio::task::spawn_blocking(move || hash_blocking(&random))
            .await
            .map_err(|e| HashError(e.to_string()))??;
        Ok(self.dummy.get_or_init(|| hash).clone())
    }
}

fn hash_blocking(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn length_is_counted_in_characters() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("ééééééé").is_err());
        assert!(Password::parse("éééééééé").is_ok());
        assert!(Password::parse(&"x".repeat(128)).is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let passwords = Passwords::new();
        let hash = passwords
            .hash(Password::parse("correct horse").unwrap())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(
            passwords
                .verify("correct horse", Some(&hash))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("wrong horse!", Some(&hash)).await.unwrap());
        assert!(!passwords.verify("correct horse", None).await.unwrap());
    }
}
