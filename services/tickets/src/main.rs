use common::{shutdown, telemetry};
use tickets::{App, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("tickets");
    let config = Config::from_env(&common::config::Env::from_process())?;
    let app = App::build(config).await?;
    tracing::info!(port = app.port(), "tickets listening");
    app.run_until_stopped(shutdown::token_on_signal()).await
}
