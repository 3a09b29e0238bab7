//! What the handlers share: built by `app`, used by `http`, depending on neither.

use axum::extract::FromRef;
use common::auth::Sessions;
use common::limits::KeyedLimit;

use crate::live::Hub;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub sessions: Sessions,
    /// Listings per seller per minute.
    pub listings: KeyedLimit,
    /// Ticket changes for the live streams.
    pub live: Hub,
}

impl FromRef<AppState> for Sessions {
    fn from_ref(state: &AppState) -> Self {
        state.sessions.clone()
    }
}
