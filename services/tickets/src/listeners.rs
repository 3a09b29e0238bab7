//! What the tickets service does with other services' events: orders reserve and
//! release tickets. Both handlers are idempotent under redelivery.

use std::time::Duration;

use common::bus::Bus;
use common::events::{Envelope, OrderCancelled, OrderCreated};
use common::listener::{Outcome, Subscriptions, event_id};
use common::outbox::PendingEvent;
use common::shutdown::BackgroundTasks;

use crate::domain::{Release, Reserve, Ticket};
use crate::store::TicketStore;

pub const SERVICE: &str = "tickets";

pub async fn spawn_all(
    bus: &Bus,
    store: &TicketStore,
    tasks: &mut BackgroundTasks,
) -> anyhow::Result<()> {
    Subscriptions::new(bus, SERVICE, store.clone(), tasks)
        .on(reserve)
        .await?
        .on(release)
        .await?;
    Ok(())
}

/// The result of deciding on a change to one ticket.
enum Change {
    /// Save this ticket version with its event; `released` names the order it frees the
    /// ticket from.
    Save {
        ticket: Ticket,
        released: Option<String>,
    },
    /// Record a cancellation of an order that does not hold the ticket.
    Remember(String),
    /// Nothing to write.
    Done(Outcome),
}

async fn reserve(store: TicketStore, event: Envelope<OrderCreated>) -> Outcome {
    let order_id = event.data.id;
    change(&store, &event.data.ticket.id, |ticket| match ticket.reserve(&order_id) {
        Reserve::Apply(reserved) => Change::Save {
            ticket: reserved,
            released: None,
        },
        Reserve::AlreadyHeld | Reserve::OrderReleased => Change::Done(Outcome::Ack),
        Reserve::HeldByOther => {
            tracing::info!(order.id = order_id, ticket.id = %ticket.id, "ticket held by another order; waiting for its cancellation");
            Change::Done(Outcome::Retry(Duration::from_secs(1)))
        }
    })
    .await
}

async fn release(store: TicketStore, event: Envelope<OrderCancelled>) -> Outcome {
    let order_id = event.data.id;
    change(&store, &event.data.ticket.id, |ticket| {
        match ticket.release(&order_id) {
            Release::Apply(free) => Change::Save {
                ticket: free,
                released: Some(order_id.clone()),
            },
            Release::Remember(_) => Change::Remember(order_id.clone()),
            Release::AlreadyReleased => Change::Done(Outcome::Ack),
        }
    })
    .await
}

/// Reads the ticket, decides, and saves if nobody changed it meanwhile; re-reads and
/// decides again when someone did.
async fn change(
    store: &TicketStore,
    ticket_id: &str,
    decide: impl Fn(&Ticket) -> Change,
) -> Outcome {
    let id = match event_id(ticket_id, "ticket") {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    for _ in 0..5 {
        let ticket = match store.find(id).await {
            Ok(Some(ticket)) => ticket,
            Ok(None) => return Outcome::Reject(format!("unknown ticket {ticket_id}")),
            Err(err) => return Outcome::retry_after_error(&err.into()),
        };
        let saved = match decide(&ticket) {
            Change::Done(outcome) => return outcome,
            Change::Remember(order_id) => {
                store.remember_release(id, &order_id).await.map(|()| true)
            }
            Change::Save {
                ticket: changed,
                released,
            } => {
                let event = PendingEvent::new(changed.updated_event());
                store
                    .save_if_version(ticket.version, &changed, event, released.as_deref())
                    .await
            }
        };
        match saved {
            Ok(true) => return Outcome::Ack,
            Ok(false) => continue,
            Err(err) => return Outcome::retry_after_error(&err.into()),
        }
    }
    Outcome::Retry(Duration::from_millis(200))
}
