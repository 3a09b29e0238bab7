//! Keeps the order replica from order events (version rules of the backbone).

use common::bus::Bus;
use common::events::{Envelope, OrderCancelled, OrderCompleted, OrderCreated};
use common::listener::{Outcome, Subscriptions, VersionCheck, event_id};
use common::shutdown::BackgroundTasks;

use crate::store::{OrderReplica, PaymentStore};

pub const SERVICE: &str = "payments";

pub async fn spawn_all(
    bus: &Bus,
    store: &PaymentStore,
    tasks: &mut BackgroundTasks,
) -> anyhow::Result<()> {
    Subscriptions::new(bus, SERVICE, store.clone(), tasks)
        .on(created)
        .await?
        .on(cancelled)
        .await?
        .on(completed)
        .await?;
    Ok(())
}

async fn cancelled(store: PaymentStore, event: Envelope<OrderCancelled>) -> Outcome {
    status(&store, &event.data.id, event.data.version, "cancelled").await
}

async fn completed(store: PaymentStore, event: Envelope<OrderCompleted>) -> Outcome {
    status(&store, &event.data.id, event.data.version, "complete").await
}

async fn created(store: PaymentStore, event: Envelope<OrderCreated>) -> Outcome {
    let data = event.data;
    let id = match event_id(&data.id, "order") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    let order = OrderReplica {
        id,
        user_id: data.user_id,
        status: "created".into(),
        price_cents: data.ticket.price_cents,
        expires_at: data.expires_at,
        version: data.version,
    };
    match store.insert_order(&order).await {
        Ok(_) => Outcome::Ack,
        Err(err) => Outcome::retry_after_error(&err.into()),
    }
}

async fn status(store: &PaymentStore, order_id: &str, version: i64, status: &str) -> Outcome {
    let id = match event_id(order_id, "order") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    match store.update_order_status(id, version, status).await {
        Ok(true) => Outcome::Ack,
        Ok(false) => match store.find_order(id).await {
            Ok(local) => {
                VersionCheck::of(local.map(|o| o.version), version).outcome_when_not_applied()
            }
            Err(err) => Outcome::retry_after_error(&err.into()),
        },
        Err(err) => Outcome::retry_after_error(&err.into()),
    }
}
