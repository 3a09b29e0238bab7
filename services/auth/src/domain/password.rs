//! Password rules and argon2id hashing.
//!
//! Hashing is deliberately slow (tens of milliseconds) and takes 19 MiB, so it runs on
//! `concurrency` threads of its own, never on the async workers, with at most `queue`
//! more requests waiting: beyond that a request is shed at once ([`HashError::Busy`])
//! rather than piling up memory and latency. A fixed set of threads also bounds what the
//! allocator keeps: each thread's arena holds on to its last 19 MiB, so memory grows with
//! the number of threads that ever hashed, and tokio's blocking pool would grow with load.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{Semaphore, oneshot};

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
    workers: Arc<Workers>,
}

impl Passwords {
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            dummy: Arc::default(),
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
            workers: Arc::new(Workers::start(concurrency)),
        }
    }

    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.bounded(move || hash_blocking(&password.0)).await?
    }

    /// Runs `work` on a hashing thread once one is free; `Busy` at once when the queue is
    /// full. The place is held until the work is done, even if the caller gives up.
    async fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let place = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| HashError::Busy)?;
        metrics::gauge!("auth_hashes_in_progress").increment(1.0);
        let counted = DecrementOnDrop("auth_hashes_in_progress");
        let (done, result) = oneshot::channel();
        self.workers.run(Box::new(move || {
            let (_place, _counted) = (place, counted);
            // The caller may have gone: nothing to tell then.
            let _ = done.send(work());
        }))?;
        result.await.map_err(failed)
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

/// Takes one off a gauge when dropped: however the job ends, or if it never runs.
struct DecrementOnDrop(&'static str);

impl Drop for DecrementOnDrop {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed number of threads taking jobs from one queue; they stop when it closes.
struct Workers {
    jobs: mpsc::Sender<Job>,
}

impl Workers {
    fn start(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let next = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = next else { return };
                        // A panicking job fails its request (its sender is dropped), not the thread.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                });
            if let Err(err) = spawned {
                tracing::error!(error = %err, "could not start a hashing thread");
            }
        }
        Self { jobs }
    }

    fn run(&self, job: Job) -> Result<(), HashError> {
        self.jobs.send(job).map_err(failed)
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
