//! Accounts: sign-up, sign-in, who is signed in.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::auth::{MaybeUser, SUSPENDED};
use common::error::{ApiError, ApiResult, ErrorItem};
use common::http::ApiJson;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_cookies::Cookies;

use crate::app::AppState;
use crate::domain::email::{Email, INVALID_EMAIL};
use crate::domain::password::{INVALID_PASSWORD, Password};
use crate::http::session::{self, ClientAddress, hash_error};
use crate::store::{StoreError, UserDoc};

pub const INVALID_CREDENTIALS: &str = "Invalid credentials";
const LOCKED: &str = "Too many failed sign-ins for this email; please wait before trying again";

/// Fields are loose JSON values so that a wrong type is reported against its field,
/// together with every other failing field.
#[derive(Deserialize)]
pub struct CredentialsBody {
    #[serde(default)]
    email: Value,
    #[serde(default)]
    password: Value,
}

#[derive(Serialize)]
pub struct UserResponse {
    id: String,
    email: String,
}

impl From<&UserDoc> for UserResponse {
    fn from(user: &UserDoc) -> Self {
        Self {
            id: user.id.to_hex(),
            email: user.email.clone(),
        }
    }
}

/// `POST /api/users/signup`
pub async fn signup(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    cookies: Cookies,
    ApiJson(body): ApiJson<CredentialsBody>,
) -> ApiResult<impl IntoResponse> {
    let email = body.email.as_str().and_then(|e| Email::parse(e).ok());
    let password = body.password.as_str().and_then(|p| Password::parse(p).ok());
    let mut errors = Vec::new();
    if email.is_none() {
        errors.push(ErrorItem::field("email", INVALID_EMAIL));
    }
    if password.is_none() {
        errors.push(ErrorItem::field("password", INVALID_PASSWORD));
    }
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::Validation(errors));
    };
    state.limits.signup.check(&client)?;

    let hash = state.passwords.hash(password).await.map_err(hash_error)?;
    let user = state
        .users
        .insert(&email, hash)
        .await
        .map_err(|err| match err {
            StoreError::EmailTaken => ApiError::Conflict("Email is already in use".into()),
            other => ApiError::internal(other),
        })?;
    tracing::info!(user.id = %user.id, "user signed up");
    session::start(&state, &cookies, &user).await?;
    Ok((StatusCode::CREATED, Json(UserResponse::from(&user))))
}

/// `POST /api/users/signin`
pub async fn signin(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    cookies: Cookies,
    ApiJson(body): ApiJson<CredentialsBody>,
) -> ApiResult<impl IntoResponse> {
    let mut errors = Vec::new();
    let email = body.email.as_str().and_then(|e| Email::parse(e).ok());
    if email.is_none() {
        errors.push(ErrorItem::field("email", INVALID_EMAIL));
    }
    let password = body.password.as_str().filter(|p| !p.is_empty());
    if password.is_none() {
        errors.push(ErrorItem::field("password", "You must supply a password"));
    }
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::Validation(errors));
    };
    state.limits.signin.check(&client)?;
    // The same answer for every email, account or not: nothing to enumerate.
    if let Some(wait) = state
        .failures
        .locked_for(email.as_str())
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::TooManyRequests(LOCKED.into(), wait));
    }

    let user = state
        .users
        .find_by_email(&email)
        .await
        .map_err(ApiError::internal)?;
    let hash = user.as_ref().map(|u| u.password_hash.as_str());
    let valid = state
        .passwords
        .verify(password, hash)
        .await
        .map_err(hash_error)?;
    match user {
        Some(user) if valid => {
            state
                .failures
                .clear(email.as_str())
                .await
                .map_err(ApiError::internal)?;
            if user.banned {
                return Err(ApiError::Forbidden(SUSPENDED.into()));
            }
            session::start(&state, &cookies, &user).await?;
            Ok(Json(UserResponse::from(&user)))
        }
        _ => {
            state
                .failures
                .record_failure(email.as_str())
                .await
                .map_err(ApiError::internal)?;
            Err(ApiError::Unauthorized(INVALID_CREDENTIALS.into()))
        }
    }
}

/// The signed-in user, as `currentuser` has always described them.
#[derive(Serialize)]
pub struct CurrentUserBody {
    id: String,
    email: String,
    iat: i64,
    exp: i64,
}

/// `GET /api/users/currentuser`: never an error; an invalid session is simply no user.
pub async fn current_user(MaybeUser(claims): MaybeUser) -> impl IntoResponse {
    let user = claims.map(|claims| CurrentUserBody {
        id: claims.id,
        email: claims.email,
        iat: claims.iat,
        exp: claims.exp,
    });
    Json(serde_json::json!({ "currentUser": user }))
}
