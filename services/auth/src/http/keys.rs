//! `GET /api/users/.well-known/jwks.json`: the public keys that verify access tokens.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/api/users/.well-known/jwks.json",
    tag = "keys",
    summary = "The public keys that verify access tokens (JWKS)",
    responses(
        (status = 200, description = "Ed25519 keys; `kid` is the RFC 7638 thumbprint", body = crate::http::openapi::Jwks),
        common::openapi::Unavailable,
    ),
)]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(serde_json::json!({ "keys": *state.jwks })),
    )
}
