//! The one error every service's store returns, and what it becomes on either side: a 500
//! (503 while the database is unreachable) with its cause hidden for an HTTP handler, a
//! retry for a listener.
//!
//! Outcomes a caller decides on (a duplicate key, a version that moved) are not errors:
//! stores return them as values ([`crate::mongo::Inserted`], `bool`).

use crate::error::ApiError;
use crate::listener::Outcome;

/// Why a store call failed: nothing was decided, and trying again may work.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or could not be reached. The driver's error is the source, so
    /// [`ApiError`] can tell an unreachable database (503) from a failure (500).
    #[error("database error")]
    Mongo(#[from] mongodb::error::Error),
    /// A record could not be written as BSON (a bug).
    #[error("cannot encode a record")]
    Encode(#[from] bson::ser::Error),
    /// The database holds what the store's own writes rule out (a bug, or data changed by
    /// hand).
    #[error("inconsistent data: {0}")]
    Inconsistent(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// 500 "Something went wrong" (503 while the database is unreachable); the cause is
/// logged, never sent.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::Internal(err.into())
    }
}

/// A listener retries shortly (logged as a warning).
impl From<StoreError> for Outcome {
    fn from(err: StoreError) -> Self {
        Self::retry_after_error(&err.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn an_unreachable_database_stays_a_503_through_the_store_error() {
        let lost = mongodb::error::Error::from(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "unexpected end of file",
        ));
        assert_eq!(
            ApiError::from(StoreError::from(lost)).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let bug = StoreError::Inconsistent("duplicate payment not found".into());
        assert_eq!(
            ApiError::from(bug).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn listeners_retry_store_failures() {
        let outcome = Outcome::from(StoreError::Inconsistent("x".into()));
        assert!(matches!(outcome, Outcome::Retry(_)));
    }
}
