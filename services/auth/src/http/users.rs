use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum_extra::extract::cookie::CookieJar;
use common::auth::MaybeUser;
use common::error::{ApiError, ApiResult, ErrorItem};
use common::http::ApiJson;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::AppState;
use crate::domain::email::{Email, INVALID_EMAIL};
use crate::domain::password::{INVALID_PASSWORD, Password};
use crate::store::{StoreError, UserDoc};

const INVALID_CREDENTIALS: &str = "Invalid credentials";

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
    jar: CookieJar,
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

    let hash = state
        .passwords
        .hash(password)
        .await
        .map_err(ApiError::internal)?;
    let user = state
        .users
        .insert(&email, hash)
        .await
        .map_err(|err| match err {
            StoreError::EmailTaken => ApiError::Conflict("Email is already in use".into()),
            other => ApiError::internal(other),
        })?;
    tracing::info!(user.id = %user.id, "user signed up");
    let jar = start_session(&state, jar, &user)?;
    Ok((StatusCode::CREATED, jar, Json(UserResponse::from(&user))))
}

/// `POST /api/users/signin`
pub async fn signin(
    State(state): State<AppState>,
    jar: CookieJar,
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
        .map_err(ApiError::internal)?;
    match user {
        Some(user) if valid => {
            let jar = start_session(&state, jar, &user)?;
            Ok((jar, Json(UserResponse::from(&user))))
        }
        _ => Err(ApiError::Unauthorized(INVALID_CREDENTIALS.into())),
    }
}

/// `POST /api/users/signout`
pub async fn signout(State(state): State<AppState>, jar: CookieJar) -> impl IntoResponse {
    (StatusCode::NO_CONTENT, jar.add(state.cookies.cleared()))
}

/// `GET /api/users/currentuser`: never an error; an invalid session is simply no user.
pub async fn current_user(MaybeUser(claims): MaybeUser) -> impl IntoResponse {
    Json(serde_json::json!({ "currentUser": claims }))
}

fn start_session(state: &AppState, jar: CookieJar, user: &UserDoc) -> ApiResult<CookieJar> {
    let (token, _) = state
        .jwt
        .issue(&user.id.to_hex(), &user.email)
        .map_err(ApiError::internal)?;
    Ok(jar.add(state.cookies.session(token, state.jwt.ttl())))
}
