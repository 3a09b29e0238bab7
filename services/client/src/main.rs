use client::{App, Config};
use common::{shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("client");
    common::metrics::install("client");
    let config = Config::from_env(&common::config::Env::from_process())?;
    let app = App::build(config).await?;
    tracing::info!(
        port = app.port(),
        metrics_port = app.metrics_port(),
        "client listening"
    );
    app.run_until_stopped(shutdown::token_on_signal()).await
}
