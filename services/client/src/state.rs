//! What the handlers share: built by `app`, used by `http`, depending on neither.

use std::sync::Arc;

use crate::backend::Backend;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub backend: Backend,
    /// Stripe Elements on the order page when set; the test-mode button otherwise.
    pub stripe_key: Option<Arc<str>>,
}
