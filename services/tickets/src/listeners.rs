//! What the tickets service does with other services' events: orders reserve and
//! release tickets. Both handlers are idempotent under redelivery.

use std::time::Duration;

use bson::oid::ObjectId;
use common::bus::Bus;
use common::events::{Envelope, OrderCancelled, OrderCreated};
use common::listener::{self, ListenerOptions, Outcome};
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
    let options = ListenerOptions::default();
    let s = store.clone();
    tasks.push(
        listener::spawn(
            bus,
            SERVICE,
            options,
            move |e: Envelope<OrderCreated>| reserve(s.clone(), e),
            tasks.token(),
        )
        .await?,
    );
    let s = store.clone();
    tasks.push(
        listener::spawn(
            bus,
            SERVICE,
            options,
            move |e: Envelope<OrderCancelled>| release(s.clone(), e),
            tasks.token(),
        )
        .await?,
    );
    Ok(())
}

/// The result of deciding on a change to one ticket.
enum Change {
    /// Save this ticket (with this event, if any).
    Save(Ticket, Option<PendingEvent>),
    /// Nothing to write.
    Done(Outcome),
}

async fn reserve(store: TicketStore, event: Envelope<OrderCreated>) -> Outcome {
    let order_id = event.data.id;
    change(&store, &event.data.ticket.id, |ticket| match ticket.reserve(&order_id) {
        Reserve::Apply(reserved) => {
            let event = PendingEvent::new(reserved.updated_event());
            Change::Save(reserved, Some(event))
        }
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
            Release::Apply(free) => {
                let event = PendingEvent::new(free.updated_event());
                Change::Save(free, Some(event))
            }
            Release::Remember(ticket) => Change::Save(ticket, None),
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
    let Ok(id) = ticket_id.parse::<ObjectId>() else {
        return Outcome::Reject(format!("malformed ticket id {ticket_id:?}"));
    };
    for _ in 0..5 {
        let ticket = match store.find(id).await {
            Ok(Some(ticket)) => ticket,
            Ok(None) => return Outcome::Reject(format!("unknown ticket {ticket_id}")),
            Err(err) => return Outcome::retry_after_error(&err.into()),
        };
        match decide(&ticket) {
            Change::Done(outcome) => return outcome,
            Change::Save(changed, event) => {
                match store.save_if_version(ticket.version, &changed, event).await {
                    Ok(true) => return Outcome::Ack,
                    Ok(false) => continue,
                    Err(err) => return Outcome::retry_after_error(&err.into()),
                }
            }
        }
    }
    Outcome::Retry(Duration::from_millis(200))
}
