//! Password rules and argon2id hashing.
//!
//! Hashing is deliberately slow (tens of milliseconds) and takes 19 MiB, so it runs on
//! the blocking pool, never on the async workers, at most `concurrency` at once, with at
//! most `queue` more waiting: beyond that a request is shed at once ([`HashError::Busy`])
//! rather than piling up memory and latency.

use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

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
pub enum HashError {
    /// Every hashing slot and queue place is taken: try again shortly.
    #[error("password hashing is at capacity")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

fn failed(err: impl ToString) -> HashError {
    HashError::Failed(err.to_string())
}

/// Hashes and verifies passwords with argon2id and the crate's default parameters.
#[derive(Clone)]
pub struct Passwords {
    /// A hash of a random password, verified against when the user does not exist, so
    /// "no such user" and "wrong password" take the same time.
    dummy: Arc<OnceLock<String>>,
    /// Places for requests that hash: running or waiting.
    admitted: Arc<Semaphore>,
    /// Slots for hashes running now.
    running: Arc<Semaphore>,
}

impl Passwords {
    pub fn new(concurrency: usize, queue: usize) -> Self {
        Self {
            dummy: Arc::default(),
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
            running: Arc::new(Semaphore::new(concurrency)),
        }
    }

    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.bounded(move || hash_blocking(&password.0)).await?
    }

    /// Runs `work` on the blocking pool once a slot is free; `Busy` at once when the
    /// queue is full.
    async fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _admitted = self.admitted.try_acquire().map_err(|_| HashError::Busy)?;
        let _running = self.running.acquire().await.map_err(failed)?;
        tokio::task::spawn_blocking(work).await.map_err(failed)
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
        let matches = self
            .bounded(move || {
                Argon2::default()
                    .verify_password(password.as_bytes(), hash.as_str())
                    .is_ok()
            })
            .await?;
        Ok(known_user && matches)
    }

    async fn dummy_hash(&self) -> Result<String, HashError> {
        if let Some(hash) = self.dummy.get() {
            return Ok(hash.clone());
        }
        let random = uuid::Uuid::new_v4().to_string();
        let hash = self.bounded(move || hash_blocking(&random)).await??;
        Ok(self.dummy.get_or_init(|| hash).clone())
    }
}

fn hash_blocking(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(failed)
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
    async fn beyond_the_running_and_waiting_places_a_hash_is_refused_at_once() {
        let passwords = Passwords::new(1, 1);
        let hashes: Vec<_> = (0..3)
            .map(|_| {
                let passwords = passwords.clone();
                tokio::spawn(async move {
                    passwords
                        .hash(Password::parse("correct horse").unwrap())
                        .await
                })
            })
            .collect();
        let mut busy = 0;
        for hash in hashes {
            match hash.await.unwrap() {
                Ok(hash) => assert!(hash.starts_with("$argon2id$")),
                Err(HashError::Busy) => busy += 1,
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!(busy, 1, "one runs, one waits, the third is shed");
        // Places come back once the work is done.
        assert!(
            passwords
                .hash(Password::parse("correct horse").unwrap())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let passwords = Passwords::new(2, 2);
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
