//! `GET /api/users/.well-known/jwks.json`: the public keys that verify access tokens.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// A JWK Set.
#[derive(Serialize, ToSchema)]
pub struct Jwks<'a> {
    #[schema(value_type = Vec<Jwk>)]
    keys: &'a [common::auth::keys::Jwk],
}

/// One Ed25519 public key (RFC 8037).
// The schema of the `common::auth::keys::Jwk`s that `Jwks` serves.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only
pub struct Jwk {
    /// `OKP`.
    kty: String,
    /// `Ed25519`.
    crv: String,
    /// `EdDSA`.
    alg: String,
    /// `sig`.
    #[schema(rename = "use")]
    r#use: String,
    /// The RFC 7638 thumbprint.
    kid: String,
    /// The public key (base64url).
    x: String,
}

#[utoipa::path(
    get,
    path = "/api/users/.well-known/jwks.json",
    tag = "keys",
    summary = "The public keys that verify access tokens (JWKS)",
    responses(
        (status = 200, description = "Ed25519 keys; `kid` is the RFC 7638 thumbprint", body = Jwks<'static>),
        common::openapi::Unavailable,
    ),
)]
pub async fn jwks(State(state): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(Jwks { keys: &state.jwks }),
    )
        .into_response()
}
