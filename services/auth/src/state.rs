//! What the handlers share: built by `app`, used by `http`, depending on neither.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use common::auth::keys::Jwk;
use common::auth::{CookiePolicy, Sessions, TokenSigner};

use crate::domain::password::Passwords;
use crate::limits::AddressLimits;
use crate::store::Store;

/// What the handlers share. axum clones the state for every request: one reference count
/// here instead of one per store and key (measurable on `currentuser`, `make bench`).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub store: Store,
    /// Verifies access tokens and knows the bans, like every service.
    pub sessions: Sessions,
    pub signer: TokenSigner,
    /// The public keys, as `/.well-known/jwks.json` serves them.
    pub jwks: Arc<Vec<Jwk>>,
    pub refresh_ttl: Duration,
    /// How long a password-reset token stays valid (`PASSWORD_RESET_TTL_MINUTES`).
    pub reset_ttl: Duration,
    pub cookies: CookiePolicy,
    pub passwords: Passwords,
    pub limits: AddressLimits,
    /// Lower-cased emails of the admins (`ADMIN_EMAILS`).
    pub admins: Arc<Vec<String>>,
}

impl FromRef<AppState> for Sessions {
    fn from_ref(state: &AppState) -> Self {
        state.sessions.clone()
    }
}
