//! Suspending users: admins only (`ADMIN_EMAILS`).

use axum::extract::State;
use axum::http::StatusCode;
use bson::oid::ObjectId;
use common::auth::{Claims, CurrentUser};
use common::change::{Decision, change};
use common::error::{ApiError, ApiResult};
use common::http::ApiPath;

use crate::state::AppState;

/// `POST /api/users/{id}/ban`
#[utoipa::path(
    post,
    path = "/api/users/{id}/ban",
    tag = "admin",
    summary = "Suspend a user (admins only): every service refuses them within a second",
    params(("id" = String, Path, description = "The user's id")),
    security(("session" = [])),
    responses(
        (status = 204, description = "Suspended (or already was); their sessions ended"),
        (status = 400, description = "The id cannot be read (not UTF-8)", body = common::error::ErrorBody),
        (status = 404, description = "No such user", body = common::error::ErrorBody),
        (status = 409, description = "The user is changing meanwhile; try again", body = common::error::ErrorBody),
        common::openapi::SessionErrors, common::openapi::Unavailable,
    ),
)]
pub async fn ban(
    State(state): State<AppState>,
    CurrentUser(admin): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    set_banned(&state, &admin, &id, true).await
}

/// `DELETE /api/users/{id}/ban`
#[utoipa::path(
    delete,
    path = "/api/users/{id}/ban",
    tag = "admin",
    summary = "Lift a user's suspension (admins only)",
    params(("id" = String, Path, description = "The user's id")),
    security(("session" = [])),
    responses(
        (status = 204, description = "No longer suspended (or was not)"),
        (status = 400, description = "The id cannot be read (not UTF-8)", body = common::error::ErrorBody),
        (status = 404, description = "No such user", body = common::error::ErrorBody),
        (status = 409, description = "The user is changing meanwhile; try again", body = common::error::ErrorBody),
        common::openapi::SessionErrors, common::openapi::Unavailable,
    ),
)]
pub async fn unban(
    State(state): State<AppState>,
    CurrentUser(admin): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    set_banned(&state, &admin, &id, false).await
}

async fn set_banned(
    state: &AppState,
    admin: &Claims,
    id: &str,
    banned: bool,
) -> ApiResult<StatusCode> {
    if !state.admins.contains(&admin.email.to_lowercase()) {
        return Err(ApiError::Forbidden("Only admins may do this".into()));
    }
    let id = ObjectId::parse_str(id).map_err(|_| ApiError::NotFound("User not found".into()))?;
    let users = &state.store.users;
    change(
        || users.find(id),
        |user| {
            if user.banned == banned {
                Decision::Keep(())
            } else {
                Decision::Write((), ())
            }
        },
        |read, ()| async move { users.set_banned(&read, banned).await },
    )
    .await
    .map_err(|err| err.into_api_error("User"))?;
    if banned {
        // No new access tokens either; the ones out there are refused by the ban list.
        state.store.sessions.revoke_all(id).await?;
    }
    tracing::info!(user.id = %id, banned, by = %admin.id, "ban changed");
    Ok(StatusCode::NO_CONTENT)
}
