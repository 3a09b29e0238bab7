//! The orders service's replica of tickets, kept from the tickets service's events: a
//! ticket must be known here before it can be ordered, at its latest title and price.
//! Updates apply in version order; a gap that does not close asks tickets for the ticket's
//! whole state (`ticket.resync_requested`, answered by `ticket.snapshot`).

use bson::oid::ObjectId;
use common::events::TicketResyncRequested;
use common::listener::{Outcome, VersionCheck};
use common::outbox::PendingEvent;

use crate::domain::TicketReplica;
use crate::listeners::SERVICE;
use crate::store::OrderStore;

/// A ticket seen for the first time (or again: a redelivery changes nothing).
pub async fn created(store: &OrderStore, ticket: TicketReplica) -> Outcome {
    match store.insert_ticket(&ticket).await {
        Ok(_) => Outcome::Ack,
        Err(err) => Outcome::retry_after_error(&err.into()),
    }
}

/// The next version of a ticket, applied only on top of the one before it.
pub async fn updated(store: &OrderStore, ticket: TicketReplica) -> Outcome {
    match store.update_ticket(&ticket).await {
        Ok(true) => Outcome::Ack,
        Ok(false) => match store.find_ticket(ticket.id).await {
            Ok(local) => {
                let known_version = local.map(|t| t.version);
                VersionCheck::of(known_version, ticket.version)
                    .outcome_when_behind(|| resync_request(ticket.id, known_version))
            }
            Err(err) => Outcome::retry_after_error(&err.into()),
        },
        Err(err) => Outcome::retry_after_error(&err.into()),
    }
}

/// The ticket was taken off sale, at `version`: applied only on top of the version before.
pub async fn removed(store: &OrderStore, id: ObjectId, version: i64) -> Outcome {
    match store.remove_ticket(id, version).await {
        Ok(true) => Outcome::Ack,
        Ok(false) => match store.find_ticket(id).await {
            Ok(local) => {
                let known_version = local.map(|t| t.version);
                VersionCheck::of(known_version, version)
                    .outcome_when_behind(|| resync_request(id, known_version))
            }
            Err(err) => Outcome::retry_after_error(&err.into()),
        },
        Err(err) => Outcome::retry_after_error(&err.into()),
    }
}

/// The ticket's whole state: applied when newer than the replica's, whatever was missed.
pub async fn snapshot(store: &OrderStore, ticket: TicketReplica) -> Outcome {
    match store.apply_ticket_snapshot(&ticket).await {
        Ok(()) => Outcome::Ack,
        Err(err) => Outcome::retry_after_error(&err.into()),
    }
}

fn resync_request(id: ObjectId, known_version: Option<i64>) -> PendingEvent {
    PendingEvent::keyed(
        &format!("{SERVICE}:{id}:{known_version:?}"),
        TicketResyncRequested {
            id: id.to_hex(),
            known_version,
            requested_by: SERVICE.to_owned(),
        },
    )
}
