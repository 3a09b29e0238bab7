//! Who is asking: the browser's session cookie, and the user it belongs to.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::auth::SESSION_COOKIE;
use tower_cookies::Cookies;

use crate::backend::{Backend, Session, User};
use crate::http::PageError;
use crate::state::AppState;

impl FromRef<AppState> for Backend {
    fn from_ref(state: &AppState) -> Self {
        state.backend.clone()
    }
}

/// The browser's session cookie, to forward to the services. Never rejects.
pub struct BrowserSession(pub Session);

impl<S: Send + Sync> FromRequestParts<S> for BrowserSession {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            session_token(parts)
                .map(|token| Session::from_token(&token))
                .unwrap_or_default(),
        ))
    }
}

/// The `session` cookie's value, read through the router's `CookieManagerLayer`.
fn session_token(parts: &Parts) -> Option<String> {
    let cookies = parts.extensions.get::<Cookies>()?;
    cookies
        .get(SESSION_COOKIE)
        .map(|cookie| cookie.value().to_owned())
}

/// The visitor: their session and, when it is valid, who they are (asked of the auth
/// service). Rejects with the 503 page only when there is a session and auth is down.
pub struct Visitor {
    pub session: Session,
    pub user: Option<User>,
}

impl Visitor {
    /// The signed-in user, or a redirect to sign in that comes back to `here`.
    pub fn require(&self, here: &str) -> Result<User, PageError> {
        self.user.clone().ok_or_else(|| PageError::sign_in(here))
    }
}

impl<S> FromRequestParts<S> for Visitor
where
    Backend: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let BrowserSession(session) = BrowserSession::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        let user = Backend::from_ref(state).current_user(&session).await?;
        if user.is_none() && session_token(parts).is_some_and(|token| lapsed(&token)) {
            let back = parts
                .uri
                .path_and_query()
                .map_or("/", |path| path.as_str())
                .to_owned();
            return Err(PageError::Refresh { back });
        }
        Ok(Self { session, user })
    }
}

/// True when this access token is past its expiry. Read without checking
/// the signature: it only decides whether to ask auth for a new one, which checks
/// everything (and clears the cookies when it cannot renew, so this asks once).
fn lapsed(token: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Expiry {
        exp: i64,
    }
    let payload = token.split('.').nth(1).unwrap_or_default();
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice::<Expiry>(&json).ok())
        .is_some_and(|claims| claims.exp <= chrono::Utc::now().timestamp())
}
