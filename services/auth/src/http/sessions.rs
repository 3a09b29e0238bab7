//! Sessions: refreshing the access token, signing out here or everywhere, and changing
//! the password (which ends every session but the one it starts).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use common::auth::{CurrentUser, REFRESH_COOKIE, SESSION_COOKIE, SUSPENDED};
use common::error::{ApiError, ApiResult, ErrorItem};
use common::http::{ApiJson, ApiQuery};
use serde::Deserialize;
use serde_json::Value;
use tower_cookies::Cookies;

use crate::domain::password::{INVALID_PASSWORD, Password};
use crate::http::session::{self, clear_cookies, hash_error};
use crate::http::users::{INVALID_CREDENTIALS, UserView};
use crate::state::AppState;
use crate::store::{RefreshError, SessionStore, UserDoc};

/// `POST /api/users/refresh`: a new access token, and the refresh token rotated.
#[utoipa::path(
    post,
    path = "/api/users/refresh",
    tag = "sessions",
    summary = "Renew the access token with the refresh token (rotated)",
    security(("refresh" = [])),
    responses(
        (status = 200, description = "Both cookies renewed", body = UserView,
            headers(("Set-Cookie" = String, description = "`session` and the rotated `refresh`"))),
        (status = 401, description = "No refresh token, or a revoked, expired or reused one (a reuse ends the session), or one of a session started before the password last changed (it ends); the cookies are cleared", body = common::error::ErrorBody),
        (status = 403, description = "Account suspended; the cookies are cleared", body = common::error::ErrorBody),
        common::openapi::Unavailable,
    ),
)]
pub async fn refresh(State(state): State<AppState>, cookies: Cookies) -> Response {
    match continue_session(&state, &cookies).await {
        Ok(user) => Json(user).into_response(),
        Err(err) => {
            clear_cookies(&state, &cookies);
            err.into_response()
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RedirectQuery {
    /// A local path to go back to (`/` otherwise).
    #[serde(default)]
    redirect: Option<String>,
}

/// `GET /api/users/refresh?redirect=/path`: as `POST`, then back to the page (a page
/// that found its access token expired sends the browser here; the refresh cookie is
/// only sent to auth's paths). A failed refresh clears the cookies, so the page shows
/// the visitor signed out instead of sending them here again.
#[utoipa::path(
    get,
    path = "/api/users/refresh",
    tag = "sessions",
    summary = "Renew the session, then go back to a page of this site",
    params(RedirectQuery),
    security((), ("refresh" = [])),
    responses(
        (status = 303, description = "Back to `redirect` (a local path, else `/`); the cookies renewed, or cleared when the refresh failed",
            headers(("Location" = String, description = "Where to go"))),
        (status = 400, description = "A malformed query string (e.g. `redirect` twice)", body = common::error::ErrorBody),
        common::openapi::Unavailable,
    ),
)]
pub async fn refresh_and_return(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RedirectQuery>,
    cookies: Cookies,
) -> Response {
    let to = query
        .redirect
        .filter(|path| is_local_path(path))
        .unwrap_or_else(|| "/".to_owned());
    if let Err(err) = continue_session(&state, &cookies).await {
        tracing::debug!(error = %err, "refresh before a page failed");
        clear_cookies(&state, &cookies);
    }
    Redirect::to(&to).into_response()
}

/// Only a path on this site: never `//host` or `/\host`, which browsers treat as another
/// origin.
fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(char::is_control)
}

async fn continue_session(state: &AppState, cookies: &Cookies) -> ApiResult<UserView> {
    let token = cookies
        .get(REFRESH_COOKIE)
        .map(|cookie| cookie.value().to_owned())
        .ok_or(ApiError::NotAuthenticated)?;
    let issued = state
        .store
        .sessions
        .rotate(&token, state.refresh_ttl)
        .await
        .map_err(|err| match err {
            RefreshError::Invalid => ApiError::NotAuthenticated,
            RefreshError::Reused => {
                tracing::warn!("a refresh token was used twice; its session is revoked");
                ApiError::NotAuthenticated
            }
            RefreshError::Store(err) => err.into(),
        })?;
    let user = state
        .store
        .users
        .find(issued.user_id)
        .await?
        .ok_or(ApiError::NotAuthenticated)?;
    if user.banned {
        state.store.sessions.revoke(&issued.session_id).await?;
        return Err(ApiError::Forbidden(SUSPENDED.into()));
    }
    // A session started under an earlier password (a change or a reset since): refused
    // and ended, even if ending every session with the new password did not happen.
    if issued.credentials_version != user.credentials_version {
        tracing::info!(
            user.id = %user.id,
            "a session from before the password changed tried to refresh; ended"
        );
        state.store.sessions.revoke(&issued.session_id).await?;
        return Err(ApiError::NotAuthenticated);
    }
    session::set_cookies(state, cookies, &user, &issued)?;
    Ok(UserView::from(&user))
}

/// `POST /api/users/signout`: ends this session (the refresh token's, else the one the
/// access token names, even expired) and clears the cookies. Always 204.
#[utoipa::path(
    post,
    path = "/api/users/signout",
    tag = "sessions",
    summary = "Sign out: end this session and clear the cookies",
    security((), ("session" = []), ("refresh" = [])),
    responses(
        (status = 204, description = "Signed out (also without a session)"),
        common::openapi::Unavailable,
    ),
)]
pub async fn signout(State(state): State<AppState>, cookies: Cookies) -> ApiResult<StatusCode> {
    let from_refresh = cookies
        .get(REFRESH_COOKIE)
        .and_then(|cookie| SessionStore::session_of(cookie.value()).map(str::to_owned));
    let from_access = || {
        let token = cookies.get(SESSION_COOKIE)?;
        state
            .sessions
            .jwt
            .verify_ignoring_expiry(token.value())
            .ok()?
            .sid
    };
    if let Some(session_id) = from_refresh.or_else(from_access) {
        state.store.sessions.revoke(&session_id).await?;
    }
    clear_cookies(&state, &cookies);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/users/signout-everywhere`: ends every session of the user.
#[utoipa::path(
    post,
    path = "/api/users/signout-everywhere",
    tag = "sessions",
    summary = "End every session of the signed-in user",
    security(("session" = [])),
    responses(
        (status = 204, description = "Every session ended; the cookies cleared"),
        common::openapi::SessionErrors, common::openapi::Unavailable,
    ),
)]
pub async fn signout_everywhere(
    State(state): State<AppState>,
    CurrentUser(claims): CurrentUser,
    cookies: Cookies,
) -> ApiResult<StatusCode> {
    let id = session::user_id(&claims.id)?;
    state.store.sessions.revoke_all(id).await?;
    clear_cookies(&state, &cookies);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordBody {
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    current_password: Value,
    /// 8 to 128 characters.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    new_password: Value,
}

/// `POST /api/users/password`: with the current password, sets a new one and ends every
/// session (refresh refuses them from the same write on); the caller gets a new one.
#[utoipa::path(
    post,
    path = "/api/users/password",
    tag = "sessions",
    summary = "Change the password; every session ends and this one starts anew",
    request_body = PasswordBody,
    security(("session" = [])),
    responses(
        (status = 204, description = "Changed; new `session` and `refresh` cookies",
            headers(("Set-Cookie" = String, description = "`session` and `refresh` of the new session"))),
        (status = 400, description = "No current password, or an invalid new one (one entry per field), or a malformed body", body = common::error::ErrorBody),
        (status = 401, description = "Not authenticated, or the current password is wrong (\"Invalid credentials\")", body = common::error::ErrorBody),
        (status = 403, description = "Account suspended", body = common::error::ErrorBody),
        (status = 409, description = "The account changed meanwhile; try again", body = common::error::ErrorBody),
        common::openapi::JsonBodyErrors, common::openapi::Unavailable,
    ),
)]
pub async fn change_password(
    State(state): State<AppState>,
    CurrentUser(claims): CurrentUser,
    cookies: Cookies,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    let current = body.current_password.as_str().filter(|p| !p.is_empty());
    let new = body
        .new_password
        .as_str()
        .and_then(|p| Password::parse(p).ok());
    let mut errors = Vec::new();
    if current.is_none() {
        errors.push(ErrorItem::field(
            "currentPassword",
            "You must supply your current password",
        ));
    }
    if new.is_none() {
        errors.push(ErrorItem::field("newPassword", INVALID_PASSWORD));
    }
    let (Some(current), Some(new)) = (current, new) else {
        return Err(ApiError::Validation(errors));
    };
    let id = session::user_id(&claims.id)?;
    let user = state
        .store
        .users
        .find(id)
        .await?
        .ok_or(ApiError::NotAuthenticated)?;
    let valid = state
        .passwords
        .verify(current, Some(&user.password_hash))
        .await
        .map_err(hash_error)?;
    if !valid {
        return Err(ApiError::Unauthorized(INVALID_CREDENTIALS.into()));
    }
    let hash = state.passwords.hash(new).await.map_err(hash_error)?;
    // Conditioned on the user as read: a concurrent change (another new password, a ban)
    // wins, and this one asks to try again.
    if !state.store.users.set_password(&user, hash).await? {
        return Err(ApiError::Conflict(
            "The account changed meanwhile; please try again".into(),
        ));
    }
    // Every earlier session is refused at refresh from now on (the credentials version
    // moved with the password); ending them here as well is eager, not what makes it so.
    if let Err(err) = state.store.sessions.revoke_all(user.id).await {
        tracing::error!(user.id = %user.id, error = %err, "password changed; ending the earlier sessions failed (refresh refuses them)");
    } else {
        tracing::info!(user.id = %user.id, "password changed; every session ended");
    }
    // This session starts under the new password's credentials version.
    let changed = UserDoc {
        credentials_version: user.credentials_version + 1,
        ..user
    };
    session::start(&state, &cookies, &changed).await?;
    Ok(StatusCode::NO_CONTENT)
}
