//! Resetting a forgotten password: a request answered the same whatever the email, and a
//! confirm that spends the emailed token once.
//!
//! The request is answered (202) before the account is even looked up: the lookup and the
//! write happen afterwards, in a task of their own, so neither the answer nor its timing
//! tells whether an account has that email. For an account, the write stores the hash of
//! a new token (replacing any earlier one) together with the `user.password_reset_requested`
//! event that carries the token in clear to notifications (docs/ARCHITECTURE.md,
//! "Password reset"). The token is never logged.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use common::auth::SUSPENDED;
use common::change::{ChangeError, Decision, change};
use common::error::{ApiError, ApiResult, ErrorItem};
use common::http::ApiJson;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;
use utoipa::ToSchema;

use crate::domain::email::{Email, INVALID_EMAIL};
use crate::domain::password::{INVALID_PASSWORD, Password};
use crate::domain::reset::{self, INVALID_TOKEN, ResetToken};
use crate::http::session::{ClientAddress, hash_error};
use crate::state::AppState;

/// What `password-reset` answers, whatever the email.
pub const RESET_REQUESTED: &str =
    "If an account exists for that address, we sent it a link to reset the password";

#[derive(Deserialize, ToSchema)]
pub struct ResetRequestBody {
    #[serde(default)]
    #[schema(value_type = String, format = Email, required = true, example = "buyer@example.com")]
    email: Value,
}

/// The answer to a reset request: the same for every email.
#[derive(Serialize, ToSchema)]
pub struct ResetRequested {
    #[schema(
        example = "If an account exists for that address, we sent it a link to reset the password"
    )]
    message: &'static str,
}

/// `POST /api/users/password-reset`
#[utoipa::path(
    post,
    path = "/api/users/password-reset",
    tag = "users",
    summary = "Ask for a link to reset a forgotten password",
    description = "Answered 202 with the same body for every well-formed email, whether or \
        not an account has it. For an account, a single-use token valid \
        `PASSWORD_RESET_TTL_MINUTES` replaces any earlier one, and the `user.password_reset_requested` \
        event asks notifications to email the link.",
    request_body = ResetRequestBody,
    responses(
        (status = 202, description = "Accepted (whether or not an account has the email)", body = ResetRequested),
        (status = 400, description = "No valid email, or a malformed body", body = common::error::ErrorBody),
        (status = 429, description = "Over `PASSWORD_RESET_PER_HOUR` for this address or `PASSWORD_RESET_PER_EMAIL_PER_HOUR` for this email (with `Retry-After`)", body = common::error::ErrorBody),
        common::openapi::JsonBodyErrors, common::openapi::Unavailable,
    ),
)]
pub async fn request_reset(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    ApiJson(body): ApiJson<ResetRequestBody>,
) -> ApiResult<impl IntoResponse> {
    let email = body
        .email
        .as_str()
        .and_then(|e| Email::parse(e).ok())
        .ok_or_else(|| ApiError::field("email", INVALID_EMAIL))?;
    state.limits.reset.check(&client)?;
    // Counted per email whether or not an account has it: the 429 tells nothing either.
    state.limits.reset_email.check(email.as_str())?;
    let work = issue(state.clone(), email).instrument(tracing::Span::current());
    tokio::spawn(common::request_id::scope(
        common::request_id::current(),
        work,
    ));
    Ok((
        StatusCode::ACCEPTED,
        Json(ResetRequested {
            message: RESET_REQUESTED,
        }),
    ))
}

/// Stores a new reset token for the account with `email`, if there is one in good
/// standing, with its event; logs the outcome (never the token).
async fn issue(state: AppState, email: Email) {
    let token = ResetToken::generate();
    let ttl = chrono::Duration::from_std(state.reset_ttl).unwrap_or(chrono::Duration::MAX);
    let now = Utc::now();
    let expires_at = bson::DateTime::from_chrono(now.checked_add_signed(ttl).unwrap_or(now));
    let users = &state.store.users;
    let token = &token;
    let outcome = change(
        || users.find_by_email(&email),
        |user| {
            if user.banned {
                Decision::Keep(None)
            } else {
                Decision::Write((), Some(user.id))
            }
        },
        |read, ()| async move { users.request_password_reset(&read, token, expires_at).await },
    )
    .await;
    match outcome {
        Ok(Some(id)) => tracing::info!(user.id = %id, "password reset requested"),
        Ok(None) => tracing::info!("password reset asked for a suspended account: none issued"),
        Err(ChangeError::NotFound) => {
            tracing::debug!("password reset asked for an email without an account");
        }
        Err(err) => tracing::error!(error = %err, "a password reset could not be stored"),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct ResetConfirmBody {
    /// The token of the emailed link (43 URL-safe characters).
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    token: Value,
    /// The new password: 8 to 128 characters.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    password: Value,
}

/// `POST /api/users/password-reset/confirm`
#[utoipa::path(
    post,
    path = "/api/users/password-reset/confirm",
    tag = "users",
    summary = "Set a new password with the token of a reset link",
    description = "Spends the token (once: of two uses, even at the same moment, one \
        succeeds), sets the password, ends every session of the user (refresh refuses them \
        from the same write on; access tokens already issued last until they expire) and \
        lifts a sign-in lock. Signs nobody in. Refused for a suspended account.",
    request_body = ResetConfirmBody,
    responses(
        (status = 204, description = "The password is set; every session of the user ended"),
        (status = 400, description = "A token that is unknown, expired or already used (field `token`), an invalid password (field `password`), or a malformed body", body = common::error::ErrorBody),
        (status = 403, description = "Account suspended: the password is not set", body = common::error::ErrorBody),
        common::openapi::JsonBodyErrors, common::openapi::Unavailable,
    ),
)]
pub async fn confirm_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetConfirmBody>,
) -> ApiResult<StatusCode> {
    let token = body.token.as_str().filter(|t| reset::plausible(t));
    let password = body.password.as_str().and_then(|p| Password::parse(p).ok());
    let mut errors = Vec::new();
    if token.is_none() {
        errors.push(ErrorItem::field("token", INVALID_TOKEN));
    }
    if password.is_none() {
        errors.push(ErrorItem::field("password", INVALID_PASSWORD));
    }
    let (Some(token), Some(password)) = (token, password) else {
        return Err(ApiError::Validation(errors));
    };
    let invalid = || ApiError::field("token", INVALID_TOKEN);
    let token_hash = reset::hash(token);
    let user = state
        .store
        .users
        .find_by_reset_token(&token_hash)
        .await?
        .ok_or_else(invalid)?;
    let unexpired = user
        .password_reset
        .as_ref()
        .is_some_and(|pending| pending.expires_at > bson::DateTime::now());
    if !unexpired {
        return Err(invalid());
    }
    // A token issued before a ban sets nothing: refused as a sign-in is.
    if user.banned {
        return Err(ApiError::Forbidden(SUSPENDED.into()));
    }
    let hash = state.passwords.hash(password).await.map_err(hash_error)?;
    // Conditioned on the token still being there and unexpired (a second use, even at the
    // same moment, matches nothing) and on the user not being banned (a ban meanwhile).
    // The same write moves the credentials version: from then on, refresh refuses every
    // session started before.
    if !state
        .store
        .users
        .reset_password(user.id, &token_hash, hash, bson::DateTime::now())
        .await?
    {
        let banned = state
            .store
            .users
            .find(user.id)
            .await?
            .is_some_and(|now| now.banned);
        return Err(if banned {
            ApiError::Forbidden(SUSPENDED.into())
        } else {
            invalid()
        });
    }
    // The password is set and the token spent: what follows is eager, and failing at it
    // must not answer an error that a retry (with the spent token) cannot mend. Sessions
    // from before are refused at refresh anyway; a lock ends on its own.
    match state.store.sessions.revoke_all(user.id).await {
        Ok(()) => tracing::info!(user.id = %user.id, "password reset; every session ended"),
        Err(err) => tracing::error!(
            user.id = %user.id,
            error = %err,
            "password reset; ending the sessions failed (refresh refuses them)"
        ),
    }
    if let Err(err) = state.store.failures.unlock(&user.email).await {
        tracing::error!(user.id = %user.id, error = %err, "password reset; lifting a sign-in lock failed");
    }
    Ok(StatusCode::NO_CONTENT)
}
