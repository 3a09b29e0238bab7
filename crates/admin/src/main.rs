//! `gittix`: operator commands against a running deployment's event stream.
//!
//! ```text
//! gittix redrive [--service NAME] [--dry-run]
//! ```
//! Reads `NATS_URL`, `EVENTS_STREAM` and `EVENTS_SUBJECT_PREFIX` like the services.
#![allow(clippy::print_stdout)] // a command line tool: its report is its output

use anyhow::bail;
use common::bus::{Bus, BusConfig};
use common::config::Env;

const USAGE: &str = "usage: gittix redrive [--service NAME] [--dry-run]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, options) = args
        .split_first()
        .map_or(("", &[][..]), |(c, o)| (c.as_str(), o));
    if command != "redrive" {
        bail!("{USAGE}");
    }
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
    let bus = Bus::connect(&config, "gittix-admin").await?;
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
