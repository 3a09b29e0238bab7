//! A safety net under the expiration service: unpaid orders well past their window (and
//! its payment grace) are cancelled here too, so a ticket is never held forever if an expiry is lost (the
//! expiration service's Redis wiped, a dead-lettered message). Normally the expiration
//! service has cancelled them long before.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::transitions::{Expired, Transitions};

/// How long past the moment an order may be cancelled (`expiresAt` plus the payment
/// grace) before the sweeper steps in.
pub const GRACE: Duration = Duration::from_secs(30);

/// The longest one sweep may take.
const SWEEP_TIMEOUT: Duration = Duration::from_secs(30);

pub fn spawn(
    orders: Transitions,
    every: Duration,
    grace: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {},
            }
            // Bounded: a store that stopped answering must not stop the sweeps for good.
            match tokio::time::timeout(SWEEP_TIMEOUT, sweep(&orders, grace)).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(error = ?err, "expiry sweep failed"),
                Err(_) => {
                    tracing::warn!("expiry sweep took longer than {SWEEP_TIMEOUT:?}; starting over")
                }
            }
        }
    })
}

async fn sweep(orders: &Transitions, grace: Duration) -> anyhow::Result<()> {
    let overdue = grace + orders.rules.payment_grace;
    let before = chrono::Utc::now() - chrono::Duration::from_std(overdue)?;
    for order in orders.store.expired_unpaid(before, 100).await? {
        let id = order.id;
        tracing::warn!(order.id = %id, expires_at = %order.expires_at, "cancelling an order whose expiry never arrived");
        match orders.expire(id, Some(order)).await {
            Ok(Expired::Cancelled | Expired::AlreadyFinal) => {}
            Ok(Expired::NotYet(_)) => anyhow::bail!("order {id} is not cancellable yet"),
            Err(err) => anyhow::bail!("could not cancel order {id}: {err}"),
        }
    }
    Ok(())
}
