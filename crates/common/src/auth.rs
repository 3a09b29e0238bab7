//! Sessions: a JWT (HS256) carried in the HttpOnly `session` cookie.
//!
//! Every service verifies the token on its own with the shared `JWT_KEY`; there is no
//! call to the auth service per request. Handlers take [`CurrentUser`] when a session is
//! required (401 otherwise) or [`MaybeUser`] when it is optional.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::JwtConfig;
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "session";

/// What a session token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id (a Mongo ObjectId in hex).
    pub id: String,
    pub email: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token rejected: {0}")]
    Rejected(#[from] jsonwebtoken::errors::Error),
}

/// Signs and verifies session tokens. Cheap to clone.
#[derive(Clone)]
pub struct Jwt(Arc<JwtInner>);

struct JwtInner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl Jwt {
    pub fn new(config: &JwtConfig) -> Self {
        let key = config.key.expose().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iat"]);
        Self(Arc::new(JwtInner {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            ttl: config.ttl,
        }))
    }

    pub fn ttl(&self) -> Duration {
        self.0.ttl
    }

    /// A fresh token for this user, valid for the configured lifetime.
    pub fn issue(&self, id: &str, email: &str) -> Result<(String, Claims), TokenError> {
        let iat = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(self.0.ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            id: id.to_owned(),
            email: email.to_owned(),
            iat,
            exp: iat.saturating_add(ttl),
        };
        self.sign(&claims).map(|token| (token, claims))
    }

    /// Signs arbitrary claims; `issue` is the normal way in, tests use this for expired tokens.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.0.encoding,
        )?)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        Ok(jsonwebtoken::decode::<Claims>(token, &self.0.decoding, &self.0.validation)?.claims)
    }

    /// The claims of the session cookie in this jar, if it holds a valid token.
    pub fn claims_from_jar(&self, jar: &CookieJar) -> Option<Claims> {
        let cookie = jar.get(SESSION_COOKIE)?;
        match self.verify(cookie.value()) {
            Ok(claims) => Some(claims),
            Err(err) => {
                tracing::debug!(error = %err, "ignoring invalid session cookie");
                None
            }
        }
    }
}

/// How the session cookie is written: `Secure` everywhere but local development.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    pub fn session(&self, token: String, ttl: Duration) -> Cookie<'static> {
        let max_age = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        self.base(token).max_age(cookie_duration(max_age)).build()
    }

    pub fn cleared(&self) -> Cookie<'static> {
        self.base(String::new()).max_age(cookie_duration(0)).build()
    }

    fn base(&self, value: String) -> cookie::CookieBuilder<'static> {
        Cookie::build((SESSION_COOKIE, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.secure)
    }
}

fn cookie_duration(seconds: i64) -> cookie::time::Duration {
    cookie::time::Duration::seconds(seconds)
}

/// A signed-in user; rejects with 401 "Not authenticated" otherwise.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Claims);

/// The signed-in user if there is a valid session; never rejects.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<Claims>);

impl<S> FromRequestParts<S> for MaybeUser
where
    Jwt: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        Ok(Self(Jwt::from_ref(state).claims_from_jar(&jar)))
    }
}

impl<S> FromRequestParts<S> for CurrentUser
where
    Jwt: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let MaybeUser(claims) = MaybeUser::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        claims.map(Self).ok_or(ApiError::NotAuthenticated)
    }
}

impl<S> OptionalFromRequestParts<S> for CurrentUser
where
    Jwt: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let MaybeUser(claims) =
            <MaybeUser as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        Ok(claims.map(Self))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Secret;

    fn jwt(key: &str) -> Jwt {
        Jwt::new(&JwtConfig {
            key: Secret::new(key),
            ttl: Duration::from_secs(60),
        })
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_tokens_verify_and_carry_the_user() {
        let jwt = jwt(KEY);
        let (token, claims) = jwt.issue("abc", "a@b.co").unwrap();
        assert_eq!(claims.exp - claims.iat, 60);
        assert_eq!(jwt.verify(&token).unwrap(), claims);
    }

    #[test]
    fn tokens_signed_with_another_key_are_rejected() {
        let (token, _) = jwt("another-key-another-key-another-key")
            .issue("abc", "a@b.co")
            .unwrap();
        assert!(jwt(KEY).verify(&token).is_err());
    }

    #[test]
    fn expired_tokens_are_rejected() {
        let jwt = jwt(KEY);
        let now = chrono::Utc::now().timestamp();
        let token = jwt
            .sign(&Claims {
                id: "abc".into(),
                email: "a@b.co".into(),
                iat: now - 120,
                exp: now - 60,
            })
            .unwrap();
        assert!(jwt.verify(&token).is_err());
    }

    #[test]
    fn tampered_tokens_are_rejected() {
        let jwt = jwt(KEY);
        let (token, _) = jwt.issue("abc", "a@b.co").unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert!(jwt.verify(&parts.join(".")).is_err());
        assert!(jwt.verify("not-a-token").is_err());
    }

    #[test]
    fn session_cookie_has_the_required_attributes() {
        let cookie = CookiePolicy { secure: true }
            .session("tok".into(), Duration::from_secs(86_400))
            .to_string();
        for attr in [
            "session=tok",
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Secure",
            "Max-Age=86400",
        ] {
            assert!(cookie.contains(attr), "{cookie} lacks {attr}");
        }
        let cleared = CookiePolicy { secure: false }.cleared().to_string();
        assert!(
            cleared.contains("Max-Age=0") && !cleared.contains("Secure"),
            "{cleared}"
        );
    }
}
