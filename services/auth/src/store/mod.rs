//! Auth's collections: users, sessions (refresh-token families) and failed sign-ins.

mod failures;
mod sessions;
mod users;

pub use failures::FailureStore;
pub use sessions::{Issued, RefreshError, SessionStore};
pub use users::{StoreError, UserDoc, UserStore};
