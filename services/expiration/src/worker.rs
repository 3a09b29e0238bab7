//! Fires due jobs: publishes `expiration.complete` for each, waits for the stream's ack,
//! then deletes the job.

use std::sync::Arc;
use std::time::Duration;

use common::bus::Bus;
use common::events::{Envelope, ExpirationComplete};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::schedule::{Claimed, Schedule, now_ms};

/// The longest the worker sleeps without looking: bounds lateness if a wake-up is missed.
const MAX_IDLE: Duration = Duration::from_millis(50);
const BATCH: usize = 200;

pub fn spawn(
    schedule: Schedule,
    bus: Bus,
    lease: Duration,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let pause = match fire_due(&schedule, &bus, lease).await {
                Ok(fired) if fired == BATCH => Duration::ZERO,
                Ok(_) => until_next(&schedule).await,
                Err(err) => {
                    tracing::warn!(error = ?err, "expiry worker failed; retrying");
                    Duration::from_millis(500)
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = wake.notified() => {},
                () = tokio::time::sleep(pause) => {},
            }
        }
    })
}

async fn until_next(schedule: &Schedule) -> Duration {
    match schedule.next_due_ms().await {
        Ok(Some(due)) => {
            Duration::from_millis((due - now_ms()).clamp(0, MAX_IDLE.as_millis() as i64) as u64)
        }
        _ => MAX_IDLE,
    }
}

/// Claims what is due and fires it; returns how many jobs were claimed.
async fn fire_due(schedule: &Schedule, bus: &Bus, lease: Duration) -> anyhow::Result<usize> {
    let jobs = schedule.claim_due(now_ms(), lease, BATCH).await?;
    let fired = futures::future::join_all(jobs.iter().map(|job| fire(schedule, bus, job))).await;
    for (job, result) in jobs.iter().zip(&fired) {
        if let Err(err) = result {
            // Left leased: it is retried when the lease runs out.
            tracing::warn!(order.id = job.order_id, error = ?err, "could not fire expiry; will retry");
        }
    }
    Ok(jobs.len())
}

async fn fire(schedule: &Schedule, bus: &Bus, job: &Claimed) -> anyhow::Result<()> {
    let event = Envelope::with_key(
        &job.order_id,
        ExpirationComplete {
            order_id: job.order_id.clone(),
        },
    );
    bus.publish(&event).await?;
    schedule.complete(job).await?;
    let late_ms = now_ms() - job.due_ms;
    metrics::histogram!("expiration_lateness_seconds").record(late_ms as f64 / 1000.0);
    tracing::info!(
        order.id = job.order_id,
        late_ms = now_ms() - job.due_ms,
        "order expired"
    );
    Ok(())
}
