//! What the handlers share: built by `app`, used by `http`, depending on neither.

use axum::extract::FromRef;
use common::auth::Sessions;
use common::config::Secret;

use crate::settlement::Settlement;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The gateway and the currency, with the rules that settle or refund.
    pub settlement: Settlement,
    pub sessions: Sessions,
    /// Set with the Stripe gateway; without it the webhook is not served.
    pub webhook_secret: Option<Secret>,
}

impl FromRef<AppState> for Sessions {
    fn from_ref(state: &AppState) -> Self {
        state.sessions.clone()
    }
}
