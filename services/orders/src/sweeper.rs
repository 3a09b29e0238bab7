//! A safety net under the expiration service: unpaid orders well past their window are
//! cancelled here too, so a ticket is never held forever if an expiry is lost (the
//! expiration service's Redis wiped, a dead-lettered message). Normally the expiration
//! service has cancelled them long before.

use std::time::Duration;

use common::listener::Outcome;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::listeners::transition_from;
use crate::store::OrderStore;

/// How long past `expiresAt` before the sweeper steps in.
pub const GRACE: Duration = Duration::from_secs(30);

pub fn spawn(
    store: OrderStore,
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
            if let Err(err) = sweep(&store, grace).await {
                tracing::warn!(error = ?err, "expiry sweep failed");
            }
        }
    })
}

async fn sweep(store: &OrderStore, grace: Duration) -> anyhow::Result<()> {
    let before = chrono::Utc::now() - chrono::Duration::from_std(grace)?;
    for order in store.expired_unpaid(before, 100).await? {
        tracing::warn!(order.id = %order.id, expires_at = %order.expires_at, "cancelling an order whose expiry never arrived");
        if let Outcome::Retry(_) =
            transition_from(store, order.id, Some(order.clone()), |o| Ok(o.expire())).await
        {
            anyhow::bail!("could not cancel order {}", order.id);
        }
    }
    Ok(())
}
