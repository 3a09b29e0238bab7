//! Sessions: refreshing the access token, signing out here or everywhere, and changing
//! the password (which ends every session but the one it starts).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use common::auth::{CurrentUser, REFRESH_COOKIE, SESSION_COOKIE, SUSPENDED};
use common::error::{ApiError, ApiResult, ErrorItem};
use common::http::ApiJson;
use serde::Deserialize;
use serde_json::Value;
use tower_cookies::Cookies;

use crate::app::AppState;
use crate::domain::password::{INVALID_PASSWORD, Password};
use crate::http::session::{self, clear_cookies, hash_error};
use crate::http::users::{INVALID_CREDENTIALS, UserResponse};
use crate::store::{RefreshError, SessionStore};

/// `POST /api/users/refresh`: a new access token, and the refresh token rotated.
pub async fn refresh(State(state): State<AppState>, cookies: Cookies) -> Response {
    match continue_session(&state, &cookies).await {
        Ok(user) => Json(user).into_response(),
        Err(err) => {
            clear_cookies(&state, &cookies);
            err.into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct RedirectQuery {
    #[serde(default)]
    redirect: Option<String>,
}

/// `GET /api/users/refresh?redirect=/path`: as `POST`, then back to the page (a page
/// that found its access token expired sends the browser here; the refresh cookie is
/// only sent to auth's paths). A failed refresh clears the cookies, so the page shows
/// the visitor signed out instead of sending them here again.
pub async fn refresh_and_return(
    State(state): State<AppState>,
    Query(query): Query<RedirectQuery>,
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

async fn continue_session(state: &AppState, cookies: &Cookies) -> ApiResult<UserResponse> {
    let token = cookies
        .get(REFRESH_COOKIE)
        .map(|cookie| cookie.value().to_owned())
        .ok_or(ApiError::NotAuthenticated)?;
    let issued = state
        .session_store
        .rotate(&token, state.refresh_ttl)
        .await
        .map_err(|err| match err {
            RefreshError::Invalid => ApiError::NotAuthenticated,
            RefreshError::Reused => {
                tracing::warn!("a refresh token was used twice; its session is revoked");
                ApiError::NotAuthenticated
            }
            RefreshError::Store(err) => ApiError::internal(err),
        })?;
    let user = state
        .users
        .find(issued.user_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::NotAuthenticated)?;
    if user.banned {
        state
            .session_store
            .revoke(&issued.session_id)
            .await
            .map_err(ApiError::internal)?;
        return Err(ApiError::Forbidden(SUSPENDED.into()));
    }
    session::set_cookies(state, cookies, &user, &issued)?;
    Ok(UserResponse::from(&user))
}

/// `POST /api/users/signout`: ends this session (the refresh token's, else the one the
/// access token names, even expired) and clears the cookies. Always 204.
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
        state
            .session_store
            .revoke(&session_id)
            .await
            .map_err(ApiError::internal)?;
    }
    clear_cookies(&state, &cookies);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/users/signout-everywhere`: ends every session of the user.
pub async fn signout_everywhere(
    State(state): State<AppState>,
    CurrentUser(claims): CurrentUser,
    cookies: Cookies,
) -> ApiResult<StatusCode> {
    let id = session::user_id(&claims.id)?;
    state
        .session_store
        .revoke_all(id)
        .await
        .map_err(ApiError::internal)?;
    clear_cookies(&state, &cookies);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordBody {
    #[serde(default)]
    current_password: Value,
    #[serde(default)]
    new_password: Value,
}

/// `POST /api/users/password`: with the current password, sets a new one and ends every
/// session; the caller gets a new one.
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
        .users
        .find(id)
        .await
        .map_err(ApiError::internal)?
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
    if !state
        .users
        .set_password(&user, hash)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::Conflict(
            "The account changed meanwhile; please try again".into(),
        ));
    }
    state
        .session_store
        .revoke_all(user.id)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(user.id = %user.id, "password changed; every session ended");
    session::start(&state, &cookies, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
