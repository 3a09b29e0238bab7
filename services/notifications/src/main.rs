use common::{shutdown, telemetry};
use notifications::{App, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("notifications");
    common::metrics::install("notifications");
    let config = Config::from_env(&common::config::Env::from_process())?;
    let shutdown = shutdown::token_on_signal();
    // Start-up waits for its dependencies as long as it takes; a signal ends the wait.
    let app = tokio::select! {
        app = App::build(config) => app?,
        () = shutdown.cancelled() => return Ok(()),
    };
    tracing::info!(
        port = app.port(),
        "notifications running (health on this port)"
    );
    app.run_until_stopped(shutdown).await
}
