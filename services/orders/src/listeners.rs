//! What the orders service does with other services' events. Every handler is
//! idempotent under redelivery.

use std::time::Duration;

use bson::doc;
use bson::oid::ObjectId;
use common::bus::Bus;
use common::events::{Envelope, ExpirationComplete, PaymentCreated, TicketCreated, TicketUpdated};
use common::listener::{Outcome, Subscriptions, VersionCheck, event_id};
use common::shutdown::BackgroundTasks;

use crate::domain::{Order, TicketReplica, Transition};
use crate::store::OrderStore;

pub const SERVICE: &str = "orders";

pub async fn spawn_all(
    bus: &Bus,
    store: &OrderStore,
    tasks: &mut BackgroundTasks,
) -> anyhow::Result<()> {
    Subscriptions::new(bus, SERVICE, store.clone(), tasks)
        .on(ticket_created)
        .await?
        .on(ticket_updated)
        .await?
        .on(expiration_complete)
        .await?
        .on(payment_created)
        .await?;
    Ok(())
}

async fn ticket_created(store: OrderStore, event: Envelope<TicketCreated>) -> Outcome {
    let data = event.data;
    let id = match event_id(&data.id, "ticket") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    let replica = TicketReplica {
        id,
        title: data.title,
        price_cents: data.price_cents,
        user_id: data.user_id,
        version: data.version,
    };
    // Inserted, or there already (a redelivery): either way done.
    match store.insert_ticket(&replica).await {
        Ok(_) => Outcome::Ack,
        Err(err) => Outcome::retry_after_error(&err.into()),
    }
}

async fn ticket_updated(store: OrderStore, event: Envelope<TicketUpdated>) -> Outcome {
    let data = event.data;
    let id = match event_id(&data.id, "ticket") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    let replica = TicketReplica {
        id,
        title: data.title,
        price_cents: data.price_cents,
        user_id: data.user_id,
        version: data.version,
    };
    match store.update_ticket(&replica).await {
        Ok(true) => Outcome::Ack,
        Ok(false) => match store.find_ticket(id).await {
            Ok(local) => VersionCheck::of(local.map(|t| t.version), replica.version)
                .outcome_when_not_applied(),
            Err(err) => Outcome::retry_after_error(&err.into()),
        },
        Err(err) => Outcome::retry_after_error(&err.into()),
    }
}

async fn expiration_complete(store: OrderStore, event: Envelope<ExpirationComplete>) -> Outcome {
    let id = match event_id(&event.data.order_id, "order") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    transition(&store, id, |order| Ok(order.expire())).await
}

async fn payment_created(store: OrderStore, event: Envelope<PaymentCreated>) -> Outcome {
    let payment = event.data;
    let id = match event_id(&payment.order_id, "order") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    let conflict = doc! {
        "_id": format!("payment-{}", payment.id),
        "orderId": &payment.order_id,
        "paymentId": &payment.id,
        "stripeId": &payment.stripe_id,
        "amountCents": payment.amount_cents,
        "currency": &payment.currency,
        "detectedAt": bson::DateTime::now(),
        "resolution": "refund",
    };
    transition(&store, id, |order| match order.complete() {
        Some(transition) => Ok(transition),
        None => Err(conflict.clone()),
    })
    .await
}

/// Applies a transition to an order with its event, re-reading on a concurrent change.
/// `decide` returns `Err(conflict)` for a payment that arrived after a cancellation,
/// which is recorded for a refund.
pub async fn transition(
    store: &OrderStore,
    id: ObjectId,
    decide: impl Fn(&Order) -> Result<Transition, bson::Document>,
) -> Outcome {
    transition_from(store, id, None, decide).await
}

/// As [`transition`], starting from an order already read (re-read only on a conflict).
pub async fn transition_from(
    store: &OrderStore,
    id: ObjectId,
    mut loaded: Option<Order>,
    decide: impl Fn(&Order) -> Result<Transition, bson::Document>,
) -> Outcome {
    for _ in 0..5 {
        let order = match loaded.take() {
            Some(order) => order,
            None => match store.find(id).await {
                Ok(Some(order)) => order,
                // Orders owns orders: an id it does not know is not one of its orders.
                Ok(None) => return Outcome::Reject(format!("unknown order {id}")),
                Err(err) => return Outcome::retry_after_error(&err.into()),
            },
        };
        let changed = match decide(&order) {
            Ok(Transition::Apply(changed)) => changed,
            Ok(Transition::Unchanged) => return Outcome::Ack,
            Err(conflict) => {
                tracing::error!(order.id = %order.id, ?conflict, "payment received for a cancelled order; recorded for refund");
                return match store.record_payment_conflict(conflict).await {
                    Ok(()) => Outcome::Ack,
                    Err(err) => Outcome::retry_after_error(&err.into()),
                };
            }
        };
        match store
            .save_transition(order.version, &changed, changed.status_event())
            .await
        {
            Ok(true) => return Outcome::Ack,
            Ok(false) => continue,
            Err(err) => return Outcome::retry_after_error(&err.into()),
        }
    }
    Outcome::Retry(Duration::from_millis(200))
}
