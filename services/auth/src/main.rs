use auth::{App, Config};
use common::{shutdown, telemetry};

/// mimalloc gives freed memory back to the system: each password hash takes 19 MiB, and
/// glibc's malloc keeps such blocks in per-thread arenas, so auth's resident memory
/// would stay at its high-water mark (measured by `make bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("auth");
    common::metrics::install("auth");
    let config = Config::from_env(&common::config::Env::from_process())?;
    let shutdown = shutdown::token_on_signal();
    // Start-up waits for its dependencies as long as it takes; a signal ends the wait.
    let app = tokio::select! {
        app = App::build(config) => app?,
        () = shutdown.cancelled() => return Ok(()),
    };
    tracing::info!(port = app.port(), "auth listening");
    app.run_until_stopped(shutdown).await
}
