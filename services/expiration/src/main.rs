use common::{shutdown, telemetry};
use expiration::{App, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("expiration");
    let config = Config::from_env(&common::config::Env::from_process())?;
    let app = App::build(config).await?;
    tracing::info!(
        port = app.port(),
        "expiration running (health on this port)"
    );
    app.run_until_stopped(shutdown::token_on_signal()).await
}
