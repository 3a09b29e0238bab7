//! Sessions, as every service sees them.
//!
//! An access token (an EdDSA JWT, [`tokens`]) in the HttpOnly `session` cookie, verified
//! by each service on its own with auth's public keys ([`keys`]): no call to auth per
//! request, and no service but auth can mint a session. The user's ban state comes from
//! each service's own copy of auth's ban events ([`bans`]). Handlers take
//! [`CurrentUser`] when a session is required (401 without one, 403 for a suspended
//! account) or [`MaybeUser`] when it is optional.

pub mod bans;
pub mod keys;
mod tokens;
mod verified;

use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use tower_cookies::Cookie;
use tower_cookies::cookie::{CookieBuilder, SameSite};

use crate::error::ApiError;
pub use bans::BanList;
pub use tokens::{Claims, Jwt, TokenError, TokenSigner};

pub const SESSION_COOKIE: &str = "session";
/// The refresh token's cookie, sent only to auth's paths.
pub const REFRESH_COOKIE: &str = "refresh";
pub const REFRESH_COOKIE_PATH: &str = "/api/users";
pub const SUSPENDED: &str = "Account suspended";

/// What a service needs to recognise a user: the public keys and the bans. Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    pub jwt: Jwt,
    pub bans: BanList,
}

impl Sessions {
    pub fn new(jwt: Jwt, bans: BanList) -> Self {
        Self { jwt, bans }
    }

    /// The claims of a valid session token, banned or not.
    pub fn claims(&self, token: &str) -> Option<Claims> {
        match self.jwt.verify(token) {
            Ok(claims) => Some(claims),
            Err(err) => {
                tracing::debug!(error = %err, "ignoring invalid session cookie");
                None
            }
        }
    }
}

/// How the session cookies are written: `Secure` everywhere but local development.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    /// The access token. The cookie outlives the token (it lasts as long as the refresh
    /// token), so a page can tell "your session needs refreshing" from "signed out".
    pub fn session(&self, token: String, lasts: Duration) -> Cookie<'static> {
        self.base(SESSION_COOKIE, token, "/")
            .max_age(cookie_duration(lasts))
            .build()
    }

    /// The refresh token: only auth's paths ever see it.
    pub fn refresh(&self, token: String, lasts: Duration) -> Cookie<'static> {
        self.base(REFRESH_COOKIE, token, REFRESH_COOKIE_PATH)
            .max_age(cookie_duration(lasts))
            .build()
    }

    pub fn cleared(&self) -> Cookie<'static> {
        self.base(SESSION_COOKIE, String::new(), "/")
            .max_age(cookie_duration(Duration::ZERO))
            .build()
    }

    pub fn refresh_cleared(&self) -> Cookie<'static> {
        self.base(REFRESH_COOKIE, String::new(), REFRESH_COOKIE_PATH)
            .max_age(cookie_duration(Duration::ZERO))
            .build()
    }

    fn base(
        &self,
        name: &'static str,
        value: String,
        path: &'static str,
    ) -> CookieBuilder<'static> {
        Cookie::build((name, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path(path)
            .secure(self.secure)
    }
}

fn cookie_duration(lasts: Duration) -> tower_cookies::cookie::time::Duration {
    tower_cookies::cookie::time::Duration::seconds(
        i64::try_from(lasts.as_secs()).unwrap_or(i64::MAX),
    )
}

/// The claims of the request's session cookie.
fn session_claims(parts: &Parts, sessions: &Sessions) -> Option<Claims> {
    sessions.claims(cookie_value(&parts.headers, SESSION_COOKIE)?)
}

/// The value of the cookie `name` in the request's `Cookie` headers (the last one, as a
/// cookie jar would keep it). Read straight from the header: every authenticated request
/// needs this one cookie, and building the request's cookie jar for it costs more than
/// the rest of a `currentuser` request (`make bench`).
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
        .next_back()
}

/// A signed-in user; rejects with 401 "Not authenticated" without a valid session and
/// 403 "Account suspended" for a banned user.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Claims);

/// The signed-in user if there is a valid session of a user in good standing; never rejects.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<Claims>);

impl<S> FromRequestParts<S> for MaybeUser
where
    Sessions: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let sessions = Sessions::from_ref(state);
        let claims =
            session_claims(parts, &sessions).filter(|claims| !sessions.bans.contains(&claims.id));
        Ok(Self(claims))
    }
}

impl<S> FromRequestParts<S> for CurrentUser
where
    Sessions: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let sessions = Sessions::from_ref(state);
        let claims = session_claims(parts, &sessions).ok_or(ApiError::NotAuthenticated)?;
        if sessions.bans.contains(&claims.id) {
            return Err(ApiError::Forbidden(SUSPENDED.into()));
        }
        Ok(Self(claims))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), None);
        headers.append(header::COOKIE, "a=1; sessionx=no".parse().unwrap());
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), None);
        headers.append(
            header::COOKIE,
            "b=2;session=tok.en.sig ; c=3".parse().unwrap(),
        );
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), Some("tok.en.sig"));
        headers.append(header::COOKIE, "session=\"later\"".parse().unwrap());
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), Some("later"));
    }

    #[test]
    fn session_cookies_have_the_required_attributes() {
        let policy = CookiePolicy { secure: true };
        let session = policy
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
            assert!(session.contains(attr), "{session} lacks {attr}");
        }
        let refresh = policy
            .refresh("r".into(), Duration::from_secs(60))
            .to_string();
        for attr in [
            "refresh=r",
            "HttpOnly",
            "Path=/api/users",
            "Secure",
            "Max-Age=60",
        ] {
            assert!(refresh.contains(attr), "{refresh} lacks {attr}");
        }
        let cleared = CookiePolicy { secure: false }.cleared().to_string();
        assert!(
            cleared.contains("Max-Age=0") && !cleared.contains("Secure"),
            "{cleared}"
        );
    }
}
