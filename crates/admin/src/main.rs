//! `gittix`: operator commands against a running deployment's event stream.
//!
//! ```text
//! gittix redrive [--service NAME] [--dry-run]
//! gittix stream
//! gittix keygen DIR
//! ```
//! `redrive` reads `NATS_URL`, `EVENTS_STREAM` and `EVENTS_SUBJECT_PREFIX` like the
//! services, and connects as the NATS `admin` user (`NATS_USER`, `NATS_PASSWORD` or
//! `NATS_PASSWORD_FILE`), as does `stream`, which creates the stream or applies the
//! deployment's settings to it (`NATS_STREAM_REPLICAS`: services may not update it). `keygen` writes a new Ed25519 session key pair, `DIR/jwt-private.pem` (mode
//! 0600: auth's `JWT_PRIVATE_KEY`) and `DIR/jwt-public.pem` (every service's
//! `JWT_PUBLIC_KEYS`), in the formats `openssl genpkey -algorithm ed25519` writes.
#![allow(clippy::print_stdout)] // a command line tool: its report is its output

use anyhow::{Context, bail};
use common::bus::{Bus, BusConfig};
use common::config::Env;

const USAGE: &str =
    "usage: gittix redrive [--service NAME] [--dry-run] | gittix stream | gittix keygen DIR";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, options) = args
        .split_first()
        .map_or(("", &[][..]), |(c, o)| (c.as_str(), o));
    match command {
        "redrive" => redrive(options).await,
        "stream" if options.is_empty() => stream().await,
        "keygen" => match options {
            [dir] => keygen(std::path::Path::new(dir)),
            _ => bail!("{USAGE}"),
        },
        _ => bail!("{USAGE}"),
    }
}

fn keygen(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = common::auth::keys::PrivateKey::generate();
    std::fs::create_dir_all(dir)?;
    let private = dir.join("jwt-private.pem");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private)
        .and_then(|mut file| file.write_all(key.to_pem().as_bytes()))
        .with_context(|| format!("writing {}", private.display()))?;
    let public = dir.join("jwt-public.pem");
    std::fs::write(&public, key.public().to_pem())?;
    println!("{} (kid {})", public.display(), key.public().kid());
    Ok(())
}

/// Connecting as the operator applies the stream's settings (`Bus::connect`).
async fn stream() -> anyhow::Result<()> {
    let config = BusConfig::from_env(&Env::from_process())?;
    let bus = Bus::connect(&config, common::bus_permissions::ADMIN).await?;
    let info = bus
        .jetstream()
        .get_stream(bus.stream_name())
        .await?
        .cached_info()
        .clone();
    println!(
        "stream {}: subjects {:?}, {} replica(s), {} message(s)",
        info.config.name, info.config.subjects, info.config.num_replicas, info.state.messages
    );
    Ok(())
}

async fn redrive(options: &[String]) -> anyhow::Result<()> {
    let mut service = None;
    let mut dry_run = false;
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match option.as_str() {
            "--service" => service = options.next().cloned(),
            "--dry-run" => dry_run = true,
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    let config = BusConfig::from_env(&Env::from_process())?;
    let bus = Bus::connect(&config, common::bus_permissions::ADMIN).await?;
    let report = common::redrive::redrive(&bus, service.as_deref(), dry_run).await?;
    let verb = if dry_run { "would redrive" } else { "redriven" };
    for (what, count) in &report.redriven {
        println!("{verb} {count:>5}  {what}");
    }
    if report.skipped > 0 {
        println!(
            "skipped {:>5}  dead letters without an original subject",
            report.skipped
        );
    }
    println!(
        "{verb} {} dead letter(s) in stream {}",
        report.total(),
        bus.stream_name()
    );
    Ok(())
}
