//! Who is asking: the browser's session cookie, and the user it belongs to.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::auth::SESSION_COOKIE;

use crate::app::AppState;
use crate::backend::{Backend, Session, User};
use crate::http::PageError;

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
        let jar = CookieJar::from_headers(&parts.headers);
        Ok(Self(
            jar.get(SESSION_COOKIE)
                .map(|cookie| Session::from_token(cookie.value()))
                .unwrap_or_default(),
        ))
    }
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
        if user.is_none() && session_lapsed(&parts.headers) {
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

/// True when the browser holds an access token past its expiry. Read without checking
/// the signature: it only decides whether to ask auth for a new one, which checks
/// everything (and clears the cookies when it cannot renew, so this asks once).
fn session_lapsed(headers: &axum::http::HeaderMap) -> bool {
    #[derive(serde::Deserialize)]
    struct Expiry {
        exp: i64,
    }
    let jar = CookieJar::from_headers(headers);
    let Some(cookie) = jar.get(SESSION_COOKIE) else {
        return false;
    };
    let payload = cookie.value().split('.').nth(1).unwrap_or_default();
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice::<Expiry>(&json).ok())
        .is_some_and(|claims| claims.exp <= chrono::Utc::now().timestamp())
}
