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
use common::listener::{Outcome, Subscriptions, event_id};
use common::shutdown::BackgroundTasks;

use crate::domain::{PaymentReceived, Refund, TicketReplica};
use crate::replica;
use crate::transitions::{Expired, Paid, Transitions};

pub const SERVICE: &str = "orders";

pub async fn spawn_all(
    bus: &Bus,
    orders: &Transitions,
    tasks: &mut BackgroundTasks,
) -> anyhow::Result<()> {
    Subscriptions::new(bus, SERVICE, orders.clone(), tasks)
        .on(on_ticket_created)
        .await?
        .on(on_ticket_updated)
        .await?
        .on(on_ticket_snapshot)
        .await?
        .on(on_ticket_removed)
        .await?
        .on(on_expiration_complete)
        .await?
        .on(on_payment_created)
        .await?
        .on(on_payment_refunded)
        .await?
        .on(on_order_resync_requested)
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
        .on(on_user_banned)
        .await?
        .on(|(_, bans): (Transitions, BanStore), event| bans.on_unbanned(event))
        .await?;
    bans.watch(tasks).await
}

async fn on_user_banned(
    (orders, bans): (Transitions, BanStore),
    event: Envelope<UserBanned>,
) -> Outcome {
    let user_id = event.data.id.clone();
    // Recorded first: a redelivery after a partial cancel finds the rest still unpaid.
    if let outcome @ (Outcome::Retry(_) | Outcome::Reject(_)) = bans.on_banned(event).await {
        return outcome;
    }
    let unpaid = match orders.store.unpaid_of_user(&user_id).await {
        Ok(unpaid) => unpaid,
        Err(err) => return Outcome::retry_after_error(&err.into()),
    };
    for id in unpaid {
        if let Err(err) = orders.cancel(id, &user_id, CancelReason::Banned).await {
            return Outcome::retry_after_error(&anyhow::anyhow!("cancelling order {id}: {err}"));
        }
    }
    Outcome::Ack
}

async fn on_ticket_created(orders: Transitions, event: Envelope<TicketCreated>) -> Outcome {
    let data = event.data;
    let id = match event_id(&data.id, "ticket") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    replica::created(&orders.store, TicketReplica::from_created(id, data)).await
}

async fn on_ticket_updated(orders: Transitions, event: Envelope<TicketUpdated>) -> Outcome {
    let data = event.data;
    let id = match event_id(&data.id, "ticket") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    replica::updated(&orders.store, TicketReplica::from_updated(id, data)).await
}

async fn on_ticket_removed(orders: Transitions, event: Envelope<TicketRemoved>) -> Outcome {
    let data = event.data;
    let id = match event_id(&data.id, "ticket") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    replica::removed(&orders.store, id, data.version).await
}

async fn on_ticket_snapshot(orders: Transitions, event: Envelope<TicketSnapshot>) -> Outcome {
    let data = event.data;
    let id = match event_id(&data.id, "ticket") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    replica::snapshot(&orders.store, TicketReplica::from_snapshot(id, data)).await
}

async fn on_expiration_complete(
    orders: Transitions,
    event: Envelope<ExpirationComplete>,
) -> Outcome {
    let id = match event_id(&event.data.order_id, "order") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    match orders.expire(id, None).await {
        Ok(Expired::Cancelled | Expired::AlreadyFinal) => Outcome::Ack,
        // The deadline passed but a charge may still complete it: look again after the grace.
        Ok(Expired::NotYet(wait)) => Outcome::Retry(wait + Duration::from_millis(50)),
        Err(err) => err.into_outcome(Outcome::Reject(format!("unknown order {id}"))),
    }
}

async fn on_payment_created(orders: Transitions, event: Envelope<PaymentCreated>) -> Outcome {
    let data = event.data;
    let id = match event_id(&data.order_id, "order") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    let payment = PaymentReceived {
        id: data.id,
        amount_cents: data.amount_cents,
        currency: data.currency,
    };
    match orders.pay(id, &payment).await {
        Ok(Paid::Completed | Paid::AlreadyCompleted) => Outcome::Ack,
        Ok(Paid::Refused(why)) => {
            // Not an error here: payments refunds every charge that did not complete its
            // order once the order is final (docs/ARCHITECTURE.md, "Money").
            tracing::warn!(order.id = %id, payment.id = payment.id, why, "payment does not complete the order; payments will refund it");
            Outcome::Ack
        }
        Err(err) => err.into_outcome(Outcome::Reject(format!("unknown order {id}"))),
    }
}

async fn on_payment_refunded(orders: Transitions, event: Envelope<PaymentRefunded>) -> Outcome {
    let data = event.data;
    let id = match event_id(&data.order_id, "order") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    let refund = Refund {
        payment_id: data.payment_id,
        amount_cents: data.amount_cents,
        currency: data.currency,
    };
    match orders.store.record_refund(id, &refund).await {
        Ok(true) => Outcome::Ack,
        Ok(false) => Outcome::Reject(format!("refund for unknown order {id}")),
        Err(err) => Outcome::retry_after_error(&err.into()),
    }
}

/// A service following orders lost track of one: announce its whole current state.
async fn on_order_resync_requested(
    orders: Transitions,
    event: Envelope<OrderResyncRequested>,
) -> Outcome {
    let id = match event_id(&event.data.id, "order") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    tracing::info!(order.id = %id, by = event.data.requested_by, known = ?event.data.known_version, "order state requested");
    match orders.announce(id).await {
        Ok(()) => Outcome::Ack,
        Err(err) => err.into_outcome(Outcome::Reject(format!(
            "state requested for unknown order {id}"
        ))),
    }
}
