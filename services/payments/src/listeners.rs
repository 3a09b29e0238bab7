//! Keeps the order replica from order events (version rules of the backbone).

use bson::oid::ObjectId;
use common::bus::Bus;
use common::events::{Envelope, OrderCancelled, OrderCompleted, OrderCreated};
use common::listener::{self, ListenerOptions, Outcome, VersionCheck};
use common::shutdown::BackgroundTasks;

use crate::store::{OrderReplica, PaymentStore};

pub const SERVICE: &str = "payments";

pub async fn spawn_all(
    bus: &Bus,
    store: &PaymentStore,
    tasks: &mut BackgroundTasks,
) -> anyhow::Result<()> {
    let options = ListenerOptions::default();
    let token = tasks.token();
    let s = store.clone();
    tasks.push(
        listener::spawn(
            bus,
            SERVICE,
            options,
            move |e: Envelope<OrderCreated>| created(s.clone(), e),
            token.clone(),
        )
        .await?,
    );
    let s = store.clone();
    tasks.push(
        listener::spawn(
            bus,
            SERVICE,
            options,
            move |e: Envelope<OrderCancelled>| {
                let s = s.clone();
                async move { status(&s, &e.data.id, e.data.version, "cancelled").await }
            },
            token.clone(),
        )
        .await?,
    );
    let s = store.clone();
    tasks.push(
        listener::spawn(
            bus,
            SERVICE,
            options,
            move |e: Envelope<OrderCompleted>| {
                let s = s.clone();
                async move { status(&s, &e.data.id, e.data.version, "complete").await }
            },
            token,
        )
        .await?,
    );
    Ok(())
}

async fn created(store: PaymentStore, event: Envelope<OrderCreated>) -> Outcome {
    let data = event.data;
    let Ok(id) = data.id.parse::<ObjectId>() else {
        return Outcome::Reject(format!("malformed order id {:?}", data.id));
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
    let Ok(id) = order_id.parse::<ObjectId>() else {
        return Outcome::Reject(format!("malformed order id {order_id:?}"));
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
