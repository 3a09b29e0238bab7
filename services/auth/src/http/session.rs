//! Starting a session, and what the handlers share about one: the cookies, the client's
//! address, and how hashing at capacity is answered.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use bson::oid::ObjectId;
use common::auth::SUSPENDED;
use common::error::{ApiError, ApiResult};
use tower_cookies::Cookies;

use crate::domain::password::HashError;
use crate::http::users::INVALID_CREDENTIALS;
use crate::state::AppState;
use crate::store::{Issued, UserDoc};

/// Signs the user in: a new session (refresh token) and an access token in it.
///
/// `user` is the user as the caller checked the password against: the session records
/// that credentials version. A new password written since (a reset, a change elsewhere)
/// would otherwise let a sign-in with the old one that was checked just before it start
/// a session just after the sessions were ended. So the user is read again once the
/// session is stored: a credentials version changed by then (or a ban) ends the session
/// and refuses the sign-in; one changed later finds the session already stored, with the
/// old version, which refresh refuses.
pub async fn start(state: &AppState, cookies: &Cookies, user: &UserDoc) -> ApiResult<()> {
    let issued = state
        .store
        .sessions
        .start(user.id, user.credentials_version, state.refresh_ttl)
        .await?;
    let now = state.store.users.find(user.id).await?;
    let refusal = match &now {
        None => Some(ApiError::NotAuthenticated),
        Some(now) if now.banned => Some(ApiError::Forbidden(SUSPENDED.into())),
        Some(now) if now.credentials_version != user.credentials_version => {
            Some(ApiError::Unauthorized(INVALID_CREDENTIALS.into()))
        }
        Some(_) => None,
    };
    if let Some(refusal) = refusal {
        tracing::info!(user.id = %user.id, "the account changed while a session started: refused");
        // Eager: its credentials version is refused at refresh anyway.
        if let Err(err) = state.store.sessions.revoke(&issued.session_id).await {
            tracing::warn!(error = %err, "ending a refused session failed");
        }
        return Err(refusal);
    }
    set_cookies(state, cookies, user, &issued)
}

/// The cookies of a started or continued session.
pub fn set_cookies(
    state: &AppState,
    cookies: &Cookies,
    user: &UserDoc,
    issued: &Issued,
) -> ApiResult<()> {
    let access = state
        .signer
        .issue(&user.id.to_hex(), &user.email, Some(&issued.session_id))
        .map_err(ApiError::internal)?;
    cookies.add(state.cookies.session(access, state.refresh_ttl));
    cookies.add(
        state
            .cookies
            .refresh(issued.token.expose().to_owned(), state.refresh_ttl),
    );
    Ok(())
}

/// Both cookies removed.
pub fn clear_cookies(state: &AppState, cookies: &Cookies) {
    cookies.add(state.cookies.cleared());
    cookies.add(state.cookies.refresh_cleared());
}

/// The user id of a session (always an ObjectId, as auth issued it).
pub fn user_id(raw: &str) -> ApiResult<ObjectId> {
    ObjectId::parse_str(raw).map_err(|_| ApiError::NotAuthenticated)
}

/// Hashing at capacity is a 503 to retry shortly, not an error.
pub fn hash_error(err: HashError) -> ApiError {
    match err {
        HashError::Busy => ApiError::Overloaded(
            "Too many sign-ins at once; please try again in a moment".into(),
            std::time::Duration::from_secs(1),
        ),
        HashError::Failed(_) => ApiError::internal(err),
    }
}

/// The client's address, as the trusted proxies in front of auth report it.
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(common::limits::client_address(
            parts,
            state.limits.trusted_hops,
        )))
    }
}
