//! What the handlers share: built by `app`, used by `http`, depending on neither.

use std::time::Duration;

use axum::extract::FromRef;
use common::auth::Sessions;

use crate::quota::Quota;
use crate::store::Store;
use crate::transitions::Transitions;

#[derive(Clone)]
pub struct AppState {
    /// Reads; every change of an order goes through `transitions`.
    pub store: Store,
    pub transitions: Transitions,
    pub sessions: Sessions,
    pub expiration_window: Duration,
    pub quota: Quota,
}

impl FromRef<AppState> for Sessions {
    fn from_ref(state: &AppState) -> Self {
        state.sessions.clone()
    }
}
