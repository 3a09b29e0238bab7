//! Keeps the order replica from order events (version rules of the backbone; a gap that
//! does not close asks orders for the order's state), then settles or refunds the
//! order's payments by what the event says.

use bson::oid::ObjectId;
use common::bus::Bus;
use common::events::{
    Envelope, OrderCancelled, OrderCompleted, OrderCreated, OrderResyncRequested, OrderSnapshot,
};
use common::listener::{Outcome, Subscriptions, VersionCheck, event_id};
use common::outbox::PendingEvent;
use common::shutdown::BackgroundTasks;

use crate::domain::OrderStatus;
use crate::replica::OrderReplica;
use crate::settlement::Settlement;

pub const SERVICE: &str = "payments";

pub async fn spawn_all(
    bus: &Bus,
    settlement: &Settlement,
    tasks: &mut BackgroundTasks,
) -> anyhow::Result<()> {
    Subscriptions::new(bus, SERVICE, settlement.clone(), tasks)
        .on(created)
        .await?
        .on(cancelled)
        .await?
        .on(completed)
        .await?
        .on(snapshot)
        .await?;
    Ok(())
}

/// An order's whole state, asked for after a gap that did not close.
async fn snapshot(settlement: Settlement, event: Envelope<OrderSnapshot>) -> Outcome {
    let data = event.data;
    let id = match event_id(&data.id, "order") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    let order = OrderReplica {
        id,
        user_id: data.user_id,
        status: OrderStatus::from_event(&data.status),
        price_cents: data.ticket.price_cents,
        expires_at: data.expires_at,
        version: data.version,
        payment_id: data.payment_id,
    };
    if let Err(err) = settlement.store.apply_order_snapshot(&order).await {
        return Outcome::retry_after_error(&err.into());
    }
    reconciled(&settlement, id).await
}

async fn cancelled(settlement: Settlement, event: Envelope<OrderCancelled>) -> Outcome {
    let data = event.data;
    status(
        &settlement,
        &data.id,
        data.version,
        OrderStatus::Cancelled,
        None,
    )
    .await
}

async fn completed(settlement: Settlement, event: Envelope<OrderCompleted>) -> Outcome {
    let data = event.data;
    status(
        &settlement,
        &data.id,
        data.version,
        OrderStatus::Complete,
        data.payment_id.as_deref(),
    )
    .await
}

async fn created(settlement: Settlement, event: Envelope<OrderCreated>) -> Outcome {
    let data = event.data;
    let id = match event_id(&data.id, "order") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    let order = OrderReplica {
        id,
        user_id: data.user_id,
        status: OrderStatus::Created,
        price_cents: data.ticket.price_cents,
        expires_at: data.expires_at,
        version: data.version,
        payment_id: None,
    };
    if let Err(err) = settlement.store.insert_order(&order).await {
        return Outcome::retry_after_error(&err.into());
    }
    // A payment that arrived before its order is checked against the price now.
    reconciled(&settlement, id).await
}

async fn status(
    settlement: &Settlement,
    order_id: &str,
    version: i64,
    status: OrderStatus,
    payment_id: Option<&str>,
) -> Outcome {
    let id = match event_id(order_id, "order") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    let store = &settlement.store;
    match store
        .update_order_status(id, version, status, payment_id)
        .await
    {
        Ok(true) => reconciled(settlement, id).await,
        Ok(false) => match store.find_order(id).await {
            Ok(local) => {
                let known_version = local.map(|o| o.version);
                match VersionCheck::of(known_version, version) {
                    // Applied before, perhaps by a delivery that stopped before deciding
                    // the payments: decide them (again; it changes nothing twice).
                    VersionCheck::AlreadyApplied => reconciled(settlement, id).await,
                    other => other.outcome_when_behind(|| {
                        PendingEvent::keyed(
                            &format!("{SERVICE}:{id}:{known_version:?}"),
                            OrderResyncRequested {
                                id: id.to_hex(),
                                known_version,
                                requested_by: SERVICE.to_owned(),
                            },
                        )
                    }),
                }
            }
            Err(err) => Outcome::retry_after_error(&err.into()),
        },
        Err(err) => Outcome::retry_after_error(&err.into()),
    }
}

async fn reconciled(settlement: &Settlement, id: ObjectId) -> Outcome {
    match settlement.reconcile(id).await {
        Ok(()) => Outcome::Ack,
        Err(err) => Outcome::retry_after_error(&err),
    }
}
