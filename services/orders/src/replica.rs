//! The orders service's replica of tickets, kept from the tickets service's events: a
//! ticket must be known here before it can be ordered, at its latest title and price.
//! Updates apply in version order; a gap that does not close asks tickets for the ticket's
//! whole state (`ticket.resync_requested`, answered by `ticket.snapshot`).

use bson::oid::ObjectId;
use common::events::{
    TicketCreated, TicketDetails, TicketResyncRequested, TicketSnapshot, TicketUpdated,
};
use common::listener::{Handled, Outcome, apply_in_order};
use common::outbox::PendingEvent;
use common::store::StoreResult;
use serde::{Deserialize, Serialize};

use crate::listeners::SERVICE;
use crate::store::Store;

/// The orders service's copy of a ticket, kept from `ticket.*` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketReplica {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub title: String,
    pub price_cents: i64,
    pub user_id: String,
    pub version: i64,
    /// Venue, date and seat, as the latest event said.
    #[serde(default)]
    pub details: TicketDetails,
    /// Taken off sale by its seller (`ticket.removed`): it cannot be ordered.
    #[serde(default)]
    pub removed: bool,
}

impl TicketReplica {
    fn new(
        id: ObjectId,
        title: String,
        price_cents: i64,
        user_id: String,
        version: i64,
        details: TicketDetails,
    ) -> Self {
        Self {
            id,
            title,
            price_cents,
            user_id,
            version,
            details,
            removed: false,
        }
    }
}

/// A ticket seen for the first time (`ticket.created`), by the id the event carries.
impl From<(ObjectId, TicketCreated)> for TicketReplica {
    fn from((id, e): (ObjectId, TicketCreated)) -> Self {
        Self::new(id, e.title, e.price_cents, e.user_id, e.version, e.details)
    }
}

/// A ticket's next version (`ticket.updated`).
impl From<(ObjectId, TicketUpdated)> for TicketReplica {
    fn from((id, e): (ObjectId, TicketUpdated)) -> Self {
        Self::new(id, e.title, e.price_cents, e.user_id, e.version, e.details)
    }
}

/// A ticket's whole state (`ticket.snapshot`), which says whether it is off sale.
impl From<(ObjectId, TicketSnapshot)> for TicketReplica {
    fn from((id, e): (ObjectId, TicketSnapshot)) -> Self {
        Self {
            removed: e.removed,
            ..Self::new(id, e.title, e.price_cents, e.user_id, e.version, e.details)
        }
    }
}

/// A ticket seen for the first time (or again: a redelivery changes nothing).
pub async fn created(store: &Store, ticket: TicketReplica) -> Handled {
    store.insert_ticket(&ticket).await?;
    Ok(Outcome::Ack)
}

/// The next version of a ticket, applied only on top of the one before it.
pub async fn updated(store: &Store, ticket: TicketReplica) -> Handled {
    let id = ticket.id;
    let applied = apply_in_order(
        ticket.version,
        store.update_ticket(&ticket),
        known_version(store, id),
    )
    .await?;
    Ok(applied.outcome_when_behind(|known| resync_request(id, known)))
}

/// The ticket was taken off sale, at `version`: applied only on top of the version before.
pub async fn removed(store: &Store, id: ObjectId, version: i64) -> Handled {
    let applied = apply_in_order(
        version,
        store.remove_ticket(id, version),
        known_version(store, id),
    )
    .await?;
    Ok(applied.outcome_when_behind(|known| resync_request(id, known)))
}

/// The ticket's whole state: applied when newer than the replica's, whatever was missed.
pub async fn snapshot(store: &Store, ticket: TicketReplica) -> Handled {
    store.apply_ticket_snapshot(&ticket).await?;
    Ok(Outcome::Ack)
}

async fn known_version(store: &Store, id: ObjectId) -> StoreResult<Option<i64>> {
    Ok(store.find_ticket(id).await?.map(|ticket| ticket.version))
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
