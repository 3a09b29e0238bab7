//! What the orders service does with other services' events. Every handler is
//! idempotent under redelivery; order changes go through `transitions`.

use std::time::Duration;

use common::auth::BanList;
use common::auth::bans::BanStore;
use common::bus::Bus;
use common::events::{
    CancelReason, Envelope, ExpirationComplete, OrderResyncRequested, PaymentCreated,
    PaymentRefunded, TicketCreated, TicketRemoved, TicketSnapshot, TicketUpdated, UserBanned,
};
use common::listener::{Handled, Outcome, Subscriptions, event_id};
use common::shutdown::BackgroundTasks;

use crate::domain::{PaymentReceived, Refund};
use crate::replica::{self, TicketReplica};
use crate::transitions::{Expired, Paid, Transitions};

pub const SERVICE: &str = "orders";

pub async fn spawn_all(
    bus: &Bus,
    orders: &Transitions,
    tasks: &mut BackgroundTasks,
) -> anyhow::Result<()> {
    Subscriptions::new(bus, SERVICE, orders.clone(), tasks)
        .on(ticket_created)
        .await?
        .on(ticket_updated)
        .await?
        .on(ticket_snapshot)
        .await?
        .on(ticket_removed)
        .await?
        .on(expiration_complete)
        .await?
        .on(payment_created)
        .await?
        .on(payment_refunded)
        .await?
        .on(order_resync_requested)
        .await?;
    Ok(())
}

/// Follows auth's bans: a banned buyer's unpaid orders are cancelled (their tickets go
/// back on sale), and `list` refuses their session on every replica.
pub async fn follow_bans(
    bus: &Bus,
    orders: &Transitions,
    bans: &BanStore,
    tasks: &mut BackgroundTasks,
) -> anyhow::Result<BanList> {
    Subscriptions::new(bus, SERVICE, (orders.clone(), bans.clone()), tasks)
        .on(user_banned)
        .await?
        .on(|(_, bans): (Transitions, BanStore), event| bans.user_unbanned(event))
        .await?;
    bans.watch(tasks).await
}

async fn user_banned(
    (orders, bans): (Transitions, BanStore),
    event: Envelope<UserBanned>,
) -> Handled {
    let user_id = event.data.id.clone();
    // Recorded first: a redelivery after a partial cancel finds the rest still unpaid.
    if let outcome @ (Outcome::Retry(_) | Outcome::Reject(_)) = bans.user_banned(event).await {
        return Err(outcome);
    }
    for id in orders.store.unpaid_of_user(&user_id).await? {
        if let Err(err) = orders.cancel(id, &user_id, CancelReason::Banned).await {
            return Err(Outcome::retry_after_error(&anyhow::anyhow!(
                "cancelling order {id}: {err}"
            )));
        }
    }
    Ok(Outcome::Ack)
}

async fn ticket_created(orders: Transitions, event: Envelope<TicketCreated>) -> Handled {
    let id = event_id(&event.data.id, "ticket")?;
    replica::created(&orders.store, TicketReplica::from((id, event.data))).await
}

async fn ticket_updated(orders: Transitions, event: Envelope<TicketUpdated>) -> Handled {
    let id = event_id(&event.data.id, "ticket")?;
    replica::updated(&orders.store, TicketReplica::from((id, event.data))).await
}

async fn ticket_removed(orders: Transitions, event: Envelope<TicketRemoved>) -> Handled {
    let id = event_id(&event.data.id, "ticket")?;
    replica::removed(&orders.store, id, event.data.version).await
}

async fn ticket_snapshot(orders: Transitions, event: Envelope<TicketSnapshot>) -> Handled {
    let id = event_id(&event.data.id, "ticket")?;
    replica::snapshot(&orders.store, TicketReplica::from((id, event.data))).await
}

async fn expiration_complete(orders: Transitions, event: Envelope<ExpirationComplete>) -> Handled {
    let id = event_id(&event.data.order_id, "order")?;
    Ok(match orders.expire(id, None).await {
        Ok(Expired::Cancelled | Expired::AlreadyFinal) => Outcome::Ack,
        // The deadline passed but a charge may still complete it: look again after the grace.
        Ok(Expired::NotYet(wait)) => Outcome::Retry(wait + Duration::from_millis(50)),
        Err(err) => err.into_outcome(Outcome::Reject(format!("unknown order {id}"))),
    })
}

async fn payment_created(orders: Transitions, event: Envelope<PaymentCreated>) -> Handled {
    let data = event.data;
    let id = event_id(&data.order_id, "order")?;
    let payment = PaymentReceived {
        id: data.id,
        amount_cents: data.amount_cents,
        currency: data.currency,
    };
    Ok(match orders.pay(id, &payment).await {
        Ok(Paid::Completed | Paid::AlreadyCompleted) => Outcome::Ack,
        Ok(Paid::Refused(why)) => {
            // Not an error here: payments refunds every charge that did not complete its
            // order once the order is final (docs/ARCHITECTURE.md, "Money").
            tracing::warn!(order.id = %id, payment.id = payment.id, why, "payment does not complete the order; payments will refund it");
            Outcome::Ack
        }
        Err(err) => err.into_outcome(Outcome::Reject(format!("unknown order {id}"))),
    })
}

async fn payment_refunded(orders: Transitions, event: Envelope<PaymentRefunded>) -> Handled {
    let data = event.data;
    let id = event_id(&data.order_id, "order")?;
    let refund = Refund {
        payment_id: data.payment_id,
        amount_cents: data.amount_cents,
        currency: data.currency,
    };
    Ok(if orders.store.record_refund(id, &refund).await? {
        Outcome::Ack
    } else {
        Outcome::Reject(format!("refund for unknown order {id}"))
    })
}

/// A service following orders lost track of one: announce its whole current state.
async fn order_resync_requested(
    orders: Transitions,
    event: Envelope<OrderResyncRequested>,
) -> Handled {
    let id = event_id(&event.data.id, "order")?;
    tracing::info!(order.id = %id, by = event.data.requested_by, known = ?event.data.known_version, "order state requested");
    Ok(match orders.announce(id).await {
        Ok(()) => Outcome::Ack,
        Err(err) => err.into_outcome(Outcome::Reject(format!(
            "state requested for unknown order {id}"
        ))),
    })
}
