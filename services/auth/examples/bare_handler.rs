//! The yardstick of `make bench`'s request-path figures: a bare axum handler answering a
//! constant, on the same runtime and allocator as auth, with nothing around it. The
//! bench runs it beside auth's `GET /api/users/currentuser` and prints the ratio.
//!
//! `cargo run --release -p auth --example bare_handler -- PORT`

use axum::Router;
use axum::routing::get;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .map(|port| port.parse())
        .transpose()?
        .unwrap_or(0);
    let router = Router::new().route(
        "/api/users/currentuser",
        get(|| async { axum::Json(serde_json::json!({ "currentUser": null })) }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("bare handler on {}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}
