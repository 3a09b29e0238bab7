//! The auth service's OpenAPI document, `GET /api/users/openapi.json`: its routes are
//! registered here once, with their `#[utoipa::path]` descriptions, so the router and the
//! document come from the same list. Also the schemas of the answers built elsewhere
//! (`currentuser`'s and the JWKS), described here.

use axum::Router;
use tower_cookies::CookieManagerLayer;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{admin, keys, reset, sessions, users};
use crate::state::AppState;

pub const DOCUMENT_PATH: &str = "/api/users/openapi.json";

/// The routes and the document that describes them.
pub fn routes() -> (Router<AppState>, OpenApi) {
    let mut frame = common::openapi::frame(
        "GitTix auth",
        "Accounts and sessions: sign up, sign in, refresh, sign out, change the password, \
         reset a forgotten one, \
         bans (admins), and the public keys that verify the `session` cookie's access token. \
         Errors are `{\"errors\":[{\"message\":…,\"field\":…}]}`.",
    );
    if let Some(components) = frame.components.as_mut() {
        components.add_security_scheme(
            "refresh",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                common::auth::REFRESH_COOKIE,
                "The refresh token (opaque, rotated on every use), sent only to /api/users",
            ))),
        );
    }
    let routes = OpenApiRouter::with_openapi(frame)
        .routes(routes!(users::signup))
        .routes(routes!(users::signin))
        .routes(routes!(sessions::signout))
        .routes(routes!(sessions::refresh, sessions::refresh_and_return))
        .routes(routes!(sessions::signout_everywhere))
        .routes(routes!(sessions::change_password))
        // The routes above set or clear cookies, with the cookie jar they take
        // (`Cookies`). Those below, the hot `currentuser` among them, read the session
        // cookie straight from the header and go without a jar built per request (`make
        // bench`).
        .route_layer(CookieManagerLayer::new())
        .routes(routes!(users::current_user))
        .routes(routes!(reset::request_reset))
        .routes(routes!(reset::confirm_reset))
        .routes(routes!(admin::ban, admin::unban))
        .routes(routes!(keys::jwks));
    common::openapi::split_and_serve(routes, DOCUMENT_PATH)
}
