//! Ticket rules, with no I/O: who may edit, when a ticket can be reserved or released.

use bson::oid::ObjectId;
use common::events::{TicketCreated, TicketSnapshot, TicketUpdated};
use common::money::Cents;
use common::outbox::PendingEvent;
use serde::{Deserialize, Serialize};

pub const MAX_TITLE_CHARS: usize = 120;

/// A trimmed, non-empty title of at most 120 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let title = raw.trim();
        if title.is_empty() {
            Err("Title is required")
        } else if title.chars().count() > MAX_TITLE_CHARS {
            Err("Title must be at most 120 characters")
        } else {
            Ok(Self(title.to_owned()))
        }
    }
}

/// A ticket as stored (without its outbox, which the store handles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub title: String,
    pub price_cents: i64,
    pub user_id: String,
    /// The order holding the ticket; always present, null when the ticket is free.
    pub order_id: Option<String>,
    pub version: i64,
    /// Orders whose cancellation was seen here, so a late `order.created` of a cancelled
    /// order (events of different subjects may arrive out of order) does not reserve.
    #[serde(default)]
    pub released_order_ids: Vec<String>,
    pub created_at: bson::DateTime,
}

#[derive(Debug, PartialEq, Eq)]
pub enum EditError {
    NotOwner,
    Reserved,
}

/// What an `order.created` does to the ticket.
#[derive(Debug, PartialEq, Eq)]
pub enum Reserve {
    /// Reserve it: the changed ticket.
    Apply(Ticket),
    /// This order holds it already (a redelivery).
    AlreadyHeld,
    /// Another order holds it: its cancellation has not arrived yet, wait for it.
    HeldByOther,
    /// The order was cancelled before its creation reached us: nothing to do.
    OrderReleased,
}

/// What an `order.cancelled` does to the ticket.
#[derive(Debug, PartialEq, Eq)]
pub enum Release {
    /// Free it: the changed ticket.
    Apply(Ticket),
    /// The order does not hold it (yet): remember the cancellation, publish nothing.
    Remember(Ticket),
    /// Already remembered.
    AlreadyReleased,
}

impl Ticket {
    pub fn new(title: Title, price: Cents, user_id: &str) -> Self {
        Self {
            id: ObjectId::new(),
            title: title.0,
            price_cents: price.get(),
            user_id: user_id.to_owned(),
            order_id: None,
            version: 0,
            released_order_ids: Vec::new(),
            created_at: bson::DateTime::now(),
        }
    }

    pub fn edit(&self, user_id: &str, title: Title, price: Cents) -> Result<Self, EditError> {
        if self.user_id != user_id {
            return Err(EditError::NotOwner);
        }
        if self.order_id.is_some() {
            return Err(EditError::Reserved);
        }
        Ok(Self {
            title: title.0,
            price_cents: price.get(),
            version: self.version + 1,
            ..self.clone()
        })
    }

    pub fn reserve(&self, order_id: &str) -> Reserve {
        // A cancelled order never holds the ticket, whoever holds it now (a holder is never
        // among the released: releasing frees the ticket in the same write).
        if self.released_order_ids.iter().any(|id| id == order_id) {
            return Reserve::OrderReleased;
        }
        match &self.order_id {
            Some(holder) if holder == order_id => Reserve::AlreadyHeld,
            Some(_) => Reserve::HeldByOther,
            None => Reserve::Apply(Self {
                order_id: Some(order_id.to_owned()),
                version: self.version + 1,
                ..self.clone()
            }),
        }
    }

    pub fn release(&self, order_id: &str) -> Release {
        let mut released = self.released_order_ids.clone();
        if !released.iter().any(|id| id == order_id) {
            released.push(order_id.to_owned());
        }
        if self.order_id.as_deref() == Some(order_id) {
            return Release::Apply(Self {
                order_id: None,
                version: self.version + 1,
                released_order_ids: released,
                ..self.clone()
            });
        }
        if released.len() == self.released_order_ids.len() {
            return Release::AlreadyReleased;
        }
        Release::Remember(Self {
            released_order_ids: released,
            ..self.clone()
        })
    }

    pub fn price(&self) -> Option<Cents> {
        Cents::new(self.price_cents)
    }

    pub fn created_event(&self) -> TicketCreated {
        TicketCreated {
            id: self.id.to_hex(),
            title: self.title.clone(),
            price_cents: self.price_cents,
            user_id: self.user_id.clone(),
            version: self.version,
        }
    }

    /// The ticket's whole state, for a replica that lost track of it.
    pub fn snapshot_event(&self) -> PendingEvent {
        PendingEvent::new(TicketSnapshot {
            id: self.id.to_hex(),
            title: self.title.clone(),
            price_cents: self.price_cents,
            user_id: self.user_id.clone(),
            order_id: self.order_id.clone(),
            version: self.version,
        })
    }

    pub fn updated_event(&self) -> TicketUpdated {
        TicketUpdated {
            id: self.id.to_hex(),
            title: self.title.clone(),
            price_cents: self.price_cents,
            user_id: self.user_id.clone(),
            order_id: self.order_id.clone(),
            version: self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ticket() -> Ticket {
        Ticket::new(
            Title::parse("Concert").unwrap(),
            Cents::new(1000).unwrap(),
            "seller",
        )
    }

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(Title::parse("  Gig ").unwrap(), Title("Gig".into()));
        assert!(Title::parse("   ").is_err());
        assert!(Title::parse(&"é".repeat(120)).is_ok());
        assert!(Title::parse(&"é".repeat(121)).is_err());
    }

    #[test]
    fn only_the_owner_edits_and_only_while_free() {
        let t = ticket();
        let title = || Title::parse("New").unwrap();
        let price = Cents::new(500).unwrap();
        assert_eq!(t.edit("buyer", title(), price), Err(EditError::NotOwner));
        let edited = t.edit("seller", title(), price).unwrap();
        assert_eq!(
            (edited.version, edited.title.as_str(), edited.price_cents),
            (1, "New", 500)
        );
        let Reserve::Apply(reserved) = t.reserve("o1") else {
            panic!()
        };
        assert_eq!(
            reserved.edit("seller", title(), price),
            Err(EditError::Reserved)
        );
    }

    #[test]
    fn reservations_follow_the_holding_order() {
        let Reserve::Apply(held) = ticket().reserve("o1") else {
            panic!()
        };
        assert_eq!(held.version, 1);
        assert_eq!(held.reserve("o1"), Reserve::AlreadyHeld);
        assert_eq!(held.reserve("o2"), Reserve::HeldByOther);
        // A cancellation of another order must not free it.
        let Release::Remember(still_held) = held.release("o2") else {
            panic!()
        };
        assert_eq!(still_held.order_id.as_deref(), Some("o1"));
        assert_eq!(still_held.version, 1);
        let Release::Apply(free) = held.release("o1") else {
            panic!()
        };
        assert_eq!((free.order_id.clone(), free.version), (None, 2));
        assert_eq!(free.reserve("o1"), Reserve::OrderReleased);
    }

    /// Found by a 10-minute fault run: `o2`'s cancellation was recorded while `o1` held
    /// the ticket; `o2`'s late creation then waited for good for `o1` to let go.
    #[test]
    fn a_late_creation_of_a_cancelled_order_is_done_whoever_holds_the_ticket() {
        let Reserve::Apply(held) = ticket().reserve("o1") else {
            panic!()
        };
        let Release::Remember(remembered) = held.release("o2") else {
            panic!()
        };
        assert_eq!(remembered.reserve("o2"), Reserve::OrderReleased);
        assert_eq!(remembered.reserve("o3"), Reserve::HeldByOther);
    }

    #[test]
    fn a_cancellation_arriving_before_the_creation_wins() {
        let Release::Remember(t) = ticket().release("o1") else {
            panic!()
        };
        assert_eq!(t.release("o1"), Release::AlreadyReleased);
        assert_eq!(t.reserve("o1"), Reserve::OrderReleased);
        assert!(matches!(t.reserve("o2"), Reserve::Apply(_)));
    }
}
