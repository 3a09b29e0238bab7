//! Auth's collections: users, sessions (refresh-token families) and failed sign-ins.

mod failures;
mod sessions;
mod users;

pub use failures::FailureStore;
pub use sessions::{Issued, RefreshError, SessionStore};
pub use users::{UserDoc, UserStore};

/// Auth's collections, one store each: they share nothing but the database.
#[derive(Clone)]
pub struct Store {
    pub users: UserStore,
    pub sessions: SessionStore,
    pub failures: FailureStore,
}
