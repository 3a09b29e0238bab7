//! What the tickets service does with other services' events: orders reserve and
//! release tickets; replicas ask for a ticket's state. Every handler is idempotent under
//! redelivery, and every write is conditioned on the ticket as read (`common::change`).

use common::bus::Bus;
use common::change::{Decision, change};
use common::events::{
    Envelope, OrderCancelled, OrderCompleted, OrderCreated, OrderResyncRequested, OrderSnapshot,
    TicketResyncRequested,
};
use common::listener::{Handled, Outcome, Subscriptions, event_id};
use common::outbox::PendingEvent;
use common::shutdown::BackgroundTasks;

use crate::domain::{Release, Reserve, Sell, Ticket};
use crate::store::Store;

pub const SERVICE: &str = "tickets";

pub async fn spawn_all(
    bus: &Bus,
    store: &Store,
    tasks: &mut BackgroundTasks,
) -> anyhow::Result<()> {
    Subscriptions::new(bus, SERVICE, store.clone(), tasks)
        .on(order_created)
        .await?
        .on(order_cancelled)
        .await?
        .on(order_completed)
        .await?
        .on(order_snapshot)
        .await?
        .on(ticket_resync_requested)
        .await?;
    Ok(())
}

/// What to write to a ticket, as decided from the ticket read.
#[allow(clippy::large_enum_variant)] // one short-lived value per decision
enum Write {
    /// This ticket version with its event; `released` names the order it frees the ticket
    /// from.
    Save {
        ticket: Ticket,
        released: Option<String>,
    },
    /// Record a cancellation of an order that does not hold the ticket.
    Remember(String),
    /// Publish this event about the ticket as read (its state, for a replica).
    Announce(PendingEvent),
}

async fn order_created(store: Store, event: Envelope<OrderCreated>) -> Handled {
    let order = event.data;
    reserve(&store, order.id, &order.ticket.id, order.ticket.price_cents).await
}

/// The holding order was paid: the ticket is sold, for the price it was reserved at.
async fn order_completed(store: Store, event: Envelope<OrderCompleted>) -> Handled {
    sell(&store, event.data.id, &event.data.ticket.id).await
}

async fn order_cancelled(store: Store, event: Envelope<OrderCancelled>) -> Handled {
    release(&store, event.data.id, &event.data.ticket.id).await
}

/// An order's whole state, asked for when this service lost track of it: a live order
/// holds its ticket, a cancelled one releases it, as their events would have.
async fn order_snapshot(store: Store, event: Envelope<OrderSnapshot>) -> Handled {
    let order = event.data;
    let (ticket_id, price_cents) = (&order.ticket.id, order.ticket.price_cents);
    match order.status.as_str() {
        "cancelled" => release(&store, order.id, ticket_id).await,
        "complete" => match reserve(&store, order.id.clone(), ticket_id, price_cents).await? {
            Outcome::Ack => sell(&store, order.id, ticket_id).await,
            outcome => Ok(outcome),
        },
        _ => reserve(&store, order.id, ticket_id, price_cents).await,
    }
}

/// A replica lost track of a ticket: announce its whole current state.
async fn ticket_resync_requested(store: Store, event: Envelope<TicketResyncRequested>) -> Handled {
    let request = event.data;
    tracing::info!(ticket.id = request.id, by = request.requested_by, known = ?request.known_version, "ticket state requested");
    apply(&store, &request.id, |ticket| {
        Decision::Write(Write::Announce(ticket.snapshot_event()), Outcome::Ack)
    })
    .await
}

async fn reserve(store: &Store, order_id: String, ticket_id: &str, price_cents: i64) -> Handled {
    apply(store, ticket_id, |ticket| {
        match ticket.reserve(&order_id, price_cents) {
            Reserve::Apply(reserved) => Decision::Write(
                Write::Save {
                    ticket: reserved,
                    released: None,
                },
                Outcome::Ack,
            ),
            Reserve::AlreadyHeld | Reserve::OrderReleased => Decision::Keep(Outcome::Ack),
            Reserve::HeldByOther => {
                tracing::info!(order.id = order_id, ticket.id = %ticket.id, "ticket held by another order; waiting for its cancellation");
                // Either cancellation may be the one lost: the holder's or this order's.
                let holder = ticket.order_id.as_deref().unwrap_or_default();
                Decision::Keep(Outcome::Behind {
                    resync: vec![
                        order_state_request(holder, ticket),
                        order_state_request(&order_id, ticket),
                    ],
                })
            }
        }
    })
    .await
}

/// Asks orders for the state of an order involved with `ticket`: if its cancellation was
/// lost, the answer releases it.
fn order_state_request(order_id: &str, ticket: &Ticket) -> PendingEvent {
    PendingEvent::keyed(
        &format!("{SERVICE}:{order_id}:{}", ticket.version),
        OrderResyncRequested {
            id: order_id.to_owned(),
            known_version: None,
            requested_by: SERVICE.to_owned(),
        },
    )
}

async fn sell(store: &Store, order_id: String, ticket_id: &str) -> Handled {
    apply(store, ticket_id, |ticket| match ticket.sell(&order_id) {
        Sell::Apply(sold) => Decision::Write(
            Write::Save {
                ticket: sold,
                released: None,
            },
            Outcome::Ack,
        ),
        Sell::AlreadySold => Decision::Keep(Outcome::Ack),
        Sell::OrderReleased => {
            tracing::warn!(order.id = order_id, ticket.id = %ticket.id, "completion of an order cancelled here; ignored");
            Decision::Keep(Outcome::Ack)
        }
        // Its creation has not arrived (or was lost): wait, then ask for the order's state,
        // whose snapshot reserves and sells at once.
        Sell::NotHeld => Decision::Keep(Outcome::Behind {
            resync: vec![order_state_request(&order_id, ticket)],
        }),
    })
    .await
}

async fn release(store: &Store, order_id: String, ticket_id: &str) -> Handled {
    apply(store, ticket_id, |ticket| match ticket.release(&order_id) {
        Release::Apply(free) => Decision::Write(
            Write::Save {
                ticket: free,
                released: Some(order_id.clone()),
            },
            Outcome::Ack,
        ),
        Release::Remember(_) => Decision::Write(Write::Remember(order_id.clone()), Outcome::Ack),
        Release::AlreadyReleased => Decision::Keep(Outcome::Ack),
    })
    .await
}

/// Decides on the ticket as read and writes the decision only if the ticket is still as
/// read (`common::change`).
async fn apply(
    store: &Store,
    ticket_id: &str,
    decide: impl Fn(&Ticket) -> Decision<Write, Outcome>,
) -> Handled {
    let id = event_id(ticket_id, "ticket")?;
    let written = change(
        || store.find(id),
        decide,
        |read, write| async move {
            match write {
                Write::Save { ticket, released } => {
                    let event = ticket.change_event();
                    store
                        .save_if_version(read.version, &ticket, event, released.as_deref())
                        .await
                }
                Write::Remember(order_id) => store.remember_release(&read, &order_id).await,
                Write::Announce(event) => store.push_event_if_version(&read, event).await,
            }
        },
    )
    .await;
    Ok(written.unwrap_or_else(|err| {
        err.into_outcome(Outcome::Reject(format!("unknown ticket {ticket_id}")))
    }))
}
