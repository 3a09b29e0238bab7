use common::{shutdown, telemetry};
use orders::{App, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("orders");
    let config = Config::from_env(&common::config::Env::from_process())?;
    let app = App::build(config).await?;
    tracing::info!(port = app.port(), "orders listening");
    app.run_until_stopped(shutdown::token_on_signal()).await
}
