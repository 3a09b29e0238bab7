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
use utoipa::ToSchema;

use crate::domain::email::{Email, INVALID_EMAIL};
use crate::domain::password::{INVALID_PASSWORD, Password};
use crate::http::session::{self, ClientAddress, hash_error};
use crate::state::AppState;
use crate::store::UserDoc;

pub const INVALID_CREDENTIALS: &str = "Invalid credentials";
const LOCKED: &str = "Too many failed sign-ins for this email; please wait before trying again";

/// Fields are loose JSON values so that a wrong type is reported against its field,
/// together with every other failing field.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CredentialsBody {
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "buyer@example.com")]
    email: Value,
    /// 8 to 128 characters to sign up; any non-empty one to sign in.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    password: Value,
}

/// A signed-in user.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserView {
    id: String,
    email: String,
}

impl From<&UserDoc> for UserView {
    fn from(user: &UserDoc) -> Self {
        Self {
            id: user.id.to_hex(),
            email: user.email.clone(),
        }
    }
}

/// `POST /api/users/signup`
#[utoipa::path(
    post,
    path = "/api/users/signup",
    tag = "users",
    summary = "Create an account and sign in",
    request_body = CredentialsBody,
    responses(
        (status = 201, description = "Signed up and in: the `session` and `refresh` cookies are set", body = UserView,
            headers(("Set-Cookie" = String, description = "`session` (the access token) and `refresh`"))),
        (status = 400, description = "Invalid email or password (one entry per field), or a malformed body", body = common::error::ErrorBody),
        (status = 409, description = "The email is already in use", body = common::error::ErrorBody),
        (status = 429, description = "Over `SIGNUP_PER_MINUTE` for this address (with `Retry-After`)", body = common::error::ErrorBody),
        common::openapi::JsonBodyErrors, common::openapi::Unavailable,
    ),
)]
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
        .store
        .users
        .insert(&email, hash)
        .await?
        .ok_or_else(|| ApiError::Conflict("Email is already in use".into()))?;
    tracing::info!(user.id = %user.id, "user signed up");
    session::start(&state, &cookies, &user).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

/// `POST /api/users/signin`
#[utoipa::path(
    post,
    path = "/api/users/signin",
    tag = "users",
    summary = "Sign in",
    request_body = CredentialsBody,
    responses(
        (status = 200, description = "Signed in: the `session` and `refresh` cookies are set", body = UserView,
            headers(("Set-Cookie" = String, description = "`session` (the access token) and `refresh`"))),
        (status = 400, description = "No valid email or no password, or a malformed body", body = common::error::ErrorBody),
        (status = 401, description = "Invalid credentials", body = common::error::ErrorBody),
        (status = 403, description = "Account suspended", body = common::error::ErrorBody),
        (status = 429, description = "Over `SIGNIN_PER_MINUTE` for this address, or sign-in of this email locked after failures (with `Retry-After`)", body = common::error::ErrorBody),
        common::openapi::JsonBodyErrors, common::openapi::Unavailable,
    ),
)]
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
    if let Some(wait) = state.store.failures.locked_for(email.as_str()).await? {
        return Err(ApiError::TooManyRequests(LOCKED.into(), wait));
    }

    let user = state.store.users.find_by_email(&email).await?;
    let hash = user.as_ref().map(|u| u.password_hash.as_str());
    let valid = state
        .passwords
        .verify(password, hash)
        .await
        .map_err(hash_error)?;
    match user {
        Some(user) if valid => {
            state.store.failures.clear(email.as_str()).await?;
            if user.banned {
                return Err(ApiError::Forbidden(SUSPENDED.into()));
            }
            session::start(&state, &cookies, &user).await?;
            Ok(Json(UserView::from(&user)))
        }
        _ => {
            state.store.failures.record_failure(email.as_str()).await?;
            Err(ApiError::Unauthorized(INVALID_CREDENTIALS.into()))
        }
    }
}

/// `GET /api/users/currentuser`'s answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentUserResponse {
    /// Null without a valid session of a user in good standing.
    current_user: Option<CurrentUserView>,
}

/// The signed-in user, as `currentuser` has always described them: the claims of the
/// session's access token.
#[derive(Serialize, ToSchema)]
#[schema(as = CurrentUser)]
pub struct CurrentUserView {
    id: String,
    email: String,
    /// Issued at (seconds since the epoch).
    iat: i64,
    /// Expires at (seconds since the epoch).
    exp: i64,
}

/// `GET /api/users/currentuser`: never an error; an invalid session is simply no user.
#[utoipa::path(
    get,
    path = "/api/users/currentuser",
    tag = "users",
    summary = "Who is signed in",
    security((), ("session" = [])),
    responses(
        (status = 200, description = "The signed-in user, or null", body = CurrentUserResponse),
        common::openapi::Unavailable,
    ),
)]
pub async fn current_user(MaybeUser(claims): MaybeUser) -> Json<CurrentUserResponse> {
    let current_user = claims.map(|claims| CurrentUserView {
        id: claims.id,
        email: claims.email,
        iat: claims.iat,
        exp: claims.exp,
    });
    Json(CurrentUserResponse { current_user })
}
