//! Keeps the order replica from order events (version rules of the backbone; a gap that
//! does not close asks orders for the order's state), then settles or refunds the
//! order's payments by what the event says.

use bson::oid::ObjectId;
use common::bus::Bus;
use common::events::{
    Envelope, OrderCancelled, OrderCompleted, OrderCreated, OrderResyncRequested, OrderSnapshot,
};
use common::listener::{
    Applied, Handled, Outcome, Subscriptions, VersionCheck, apply_in_order, event_id,
};
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
        .on(order_created)
        .await?
        .on(order_cancelled)
        .await?
        .on(order_completed)
        .await?
        .on(order_snapshot)
        .await?;
    Ok(())
}

async fn order_created(settlement: Settlement, event: Envelope<OrderCreated>) -> Handled {
    let data = event.data;
    let id = event_id(&data.id, "order")?;
    let order = OrderReplica {
        id,
        user_id: data.user_id,
        status: OrderStatus::Created,
        price_cents: data.ticket.price_cents,
        expires_at: data.expires_at,
        version: data.version,
        payment_id: None,
    };
    settlement.store.insert_order(&order).await?;
    // A payment that arrived before its order is checked against the price now.
    reconciled(&settlement, id).await
}

async fn order_cancelled(settlement: Settlement, event: Envelope<OrderCancelled>) -> Handled {
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

async fn order_completed(settlement: Settlement, event: Envelope<OrderCompleted>) -> Handled {
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

/// An order's whole state, asked for after a gap that did not close.
async fn order_snapshot(settlement: Settlement, event: Envelope<OrderSnapshot>) -> Handled {
    let data = event.data;
    let id = event_id(&data.id, "order")?;
    let status = OrderStatus::from_event(&data.status)
        .ok_or_else(|| Outcome::Reject(format!("unknown order status {:?}", data.status)))?;
    let order = OrderReplica {
        id,
        user_id: data.user_id,
        status,
        price_cents: data.ticket.price_cents,
        expires_at: data.expires_at,
        version: data.version,
        payment_id: data.payment_id,
    };
    settlement.store.apply_order_snapshot(&order).await?;
    reconciled(&settlement, id).await
}

/// The order's next status, applied in version order; then its payments are decided.
async fn status(
    settlement: &Settlement,
    order_id: &str,
    version: i64,
    status: OrderStatus,
    payment_id: Option<&str>,
) -> Handled {
    let id = event_id(order_id, "order")?;
    let store = &settlement.store;
    let applied = apply_in_order(
        version,
        store.update_order_status(id, version, status, payment_id),
        async { Ok(store.find_order(id).await?.map(|order| order.version)) },
    )
    .await?;
    match applied {
        // Applied before, perhaps by a delivery that stopped before deciding the
        // payments: decide them (again; it changes nothing twice).
        Applied::Written
        | Applied::NotWritten {
            check: VersionCheck::AlreadyApplied,
            ..
        } => reconciled(settlement, id).await,
        behind => Ok(behind.outcome_when_behind(|known_version| {
            PendingEvent::keyed(
                &format!("{SERVICE}:{id}:{known_version:?}"),
                OrderResyncRequested {
                    id: id.to_hex(),
                    known_version,
                    requested_by: SERVICE.to_owned(),
                },
            )
        })),
    }
}

async fn reconciled(settlement: &Settlement, id: ObjectId) -> Handled {
    match settlement.reconcile(id).await {
        Ok(()) => Ok(Outcome::Ack),
        Err(err) => Err(Outcome::retry_after_error(&err)),
    }
}
