use common::{shutdown, telemetry};
use payments::{App, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("payments");
    let config = Config::from_env(&common::config::Env::from_process())?;
    let app = App::build(config).await?;
    tracing::info!(port = app.port(), "payments listening");
    app.run_until_stopped(shutdown::token_on_signal()).await
}
