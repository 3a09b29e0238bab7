//! Read, decide, write if unchanged, retry: the one way a service changes a record that
//! someone else may be changing at the same moment (another replica, another listener of
//! the same record, a request).
//!
//! [`change`] loads the record, lets a pure domain function decide, and writes the
//! decision conditioned on the exact state it was decided from (the store's write takes
//! the record as read and filters on its version, or on the fields the decision read).
//! When the write finds the record changed, it loads again and decides again. The result
//! is neutral: HTTP handlers map it to an `ApiError`, listeners to an `Outcome`.

use std::future::Future;
use std::time::Duration;

use crate::error::ApiError;
use crate::listener::Outcome;

/// How many times a change is decided again after losing a race, before giving up.
pub const ATTEMPTS: usize = 5;

/// What a domain decision says about one record as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<W, R> {
    /// Write `W`, conditioned on the record as read; once written, the answer is `R`.
    Write(W, R),
    /// Nothing to write; the answer is `R`.
    Keep(R),
}

/// Why a change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError<E> {
    /// There is no such record.
    #[error("no such record")]
    NotFound,
    /// The record changed under every attempt.
    #[error("the record kept changing ({ATTEMPTS} attempts)")]
    Contended,
    /// The store failed.
    #[error(transparent)]
    Store(E),
}

/// Loads with `load`, decides with `decide`, and writes with `write(as_read, decision)`,
/// which must return false (without writing) when the record is no longer as read.
pub async fn change<T, W, R, E, L, LF, WR, WF>(
    load: L,
    decide: impl Fn(&T) -> Decision<W, R>,
    write: WR,
) -> Result<R, ChangeError<E>>
where
    L: FnMut() -> LF,
    LF: Future<Output = Result<Option<T>, E>>,
    WR: FnMut(T, W) -> WF,
    WF: Future<Output = Result<bool, E>>,
{
    change_from(None, load, decide, write).await
}

/// As [`change`], starting from a record already read (loaded again only after a lost race).
pub async fn change_from<T, W, R, E, L, LF, WR, WF>(
    mut read: Option<T>,
    mut load: L,
    decide: impl Fn(&T) -> Decision<W, R>,
    mut write: WR,
) -> Result<R, ChangeError<E>>
where
    L: FnMut() -> LF,
    LF: Future<Output = Result<Option<T>, E>>,
    WR: FnMut(T, W) -> WF,
    WF: Future<Output = Result<bool, E>>,
{
    for _ in 0..ATTEMPTS {
        let record = match read.take() {
            Some(record) => record,
            None => load()
                .await
                .map_err(ChangeError::Store)?
                .ok_or(ChangeError::NotFound)?,
        };
        match decide(&record) {
            Decision::Keep(answer) => return Ok(answer),
            Decision::Write(decision, answer) => {
                if write(record, decision).await.map_err(ChangeError::Store)? {
                    return Ok(answer);
                }
            }
        }
    }
    Err(ChangeError::Contended)
}

impl<E: Into<anyhow::Error>> ChangeError<E> {
    /// The listener's answer: `not_found` for a missing record (a replica waits for it, an
    /// owner rejects an id it never had); contention and store failures are retried.
    pub fn into_outcome(self, not_found: Outcome) -> Outcome {
        match self {
            Self::NotFound => not_found,
            Self::Contended => Outcome::Retry(Duration::from_millis(200)),
            Self::Store(err) => Outcome::retry_after_error(&err.into()),
        }
    }

    /// The HTTP answer: 404 "`what` not found", 409 while the record keeps changing, 500.
    pub fn into_api_error(self, what: &str) -> ApiError {
        match self {
            Self::NotFound => ApiError::NotFound(format!("{what} not found")),
            Self::Contended => ApiError::Conflict(format!(
                "The {} is changing; try again",
                what.to_lowercase()
            )),
            Self::Store(err) => ApiError::Internal(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::cell::Cell;

    /// A record in memory whose writes are conditioned on its version, with a rival that
    /// bumps it right after the first `rival_writes` loads.
    struct Stored {
        version: Cell<i64>,
        rival_writes: Cell<u32>,
        loads: Cell<u32>,
    }

    impl Stored {
        fn new(rival_writes: u32) -> Self {
            Self {
                version: Cell::new(1),
                rival_writes: Cell::new(rival_writes),
                loads: Cell::new(0),
            }
        }

        async fn load(&self) -> Result<Option<i64>, std::io::Error> {
            self.loads.set(self.loads.get() + 1);
            let read = self.version.get();
            if self.rival_writes.get() > 0 {
                self.rival_writes.set(self.rival_writes.get() - 1);
                self.version.set(read + 1);
            }
            Ok(Some(read))
        }

        async fn write_if(&self, read: i64) -> Result<bool, std::io::Error> {
            if self.version.get() != read {
                return Ok(false);
            }
            self.version.set(read + 1);
            Ok(true)
        }
    }

    #[tokio::test]
    async fn a_lost_race_is_decided_again_on_the_new_state() {
        let stored = Stored::new(2);
        let decided_on = std::cell::RefCell::new(Vec::new());
        let answer = change(
            || stored.load(),
            |version| {
                decided_on.borrow_mut().push(*version);
                Decision::Write((), "written")
            },
            |read, ()| stored.write_if(read),
        )
        .await
        .unwrap();
        assert_eq!(answer, "written");
        assert_eq!(*decided_on.borrow(), vec![1, 2, 3]);
        assert_eq!(stored.version.get(), 4);
    }

    #[tokio::test]
    async fn endless_contention_gives_up_without_writing() {
        let stored = Stored::new(u32::MAX);
        let result = change(
            || stored.load(),
            |_| Decision::Write((), ()),
            |read, ()| stored.write_if(read),
        )
        .await;
        assert!(matches!(result, Err(ChangeError::Contended)));
        assert_eq!(stored.loads.get(), ATTEMPTS as u32);
    }

    #[tokio::test]
    async fn keep_writes_nothing_and_missing_records_are_not_found() {
        let stored = Stored::new(0);
        let kept = change(
            || stored.load(),
            |_| Decision::<(), _>::Keep(7),
            |_, ()| async { panic!("nothing to write") },
        )
        .await
        .unwrap();
        assert_eq!(kept, 7);
        let missing = change(
            || async { Ok::<Option<i64>, std::io::Error>(None) },
            |_| Decision::<(), ()>::Keep(()),
            |_, ()| async { Ok(true) },
        )
        .await;
        assert!(matches!(missing, Err(ChangeError::NotFound)));
        assert_eq!(
            ChangeError::<std::io::Error>::NotFound.into_outcome(Outcome::Ack),
            Outcome::Ack
        );
        assert!(matches!(
            ChangeError::<std::io::Error>::Contended.into_api_error("Order"),
            ApiError::Conflict(_)
        ));
    }
}
