//! Ticket rules, with no I/O: who may edit, when a ticket can be reserved or released.

use bson::oid::ObjectId;
use chrono::{DateTime, Utc};
use common::events::{TicketCreated, TicketDetails, TicketRemoved, TicketSnapshot, TicketUpdated};
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

/// The most characters of each optional field, by its JSON name.
pub const DETAIL_LIMITS: [(&str, usize); 6] = [
    ("venue", 120),
    ("city", 80),
    ("section", 20),
    ("row", 20),
    ("seat", 20),
    ("description", 2000),
];

/// An optional text field: trimmed, empty means absent, at most `max` characters.
pub fn parse_text(field: &str, raw: &str, max: usize) -> Result<Option<String>, String> {
    let text = raw.trim();
    if text.is_empty() {
        Ok(None)
    } else if text.chars().count() > max {
        Err(format!(
            "{} must be at most {max} characters",
            capitalized(field)
        ))
    } else {
        Ok(Some(text.to_owned()))
    }
}

/// When the event starts: RFC 3339, in the future.
pub fn parse_starts_at(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let at = DateTime::parse_from_rfc3339(raw.trim())
        .map_err(|_| "StartsAt must be a date and time (RFC 3339, e.g. 2030-05-01T20:00:00Z)")?
        .with_timezone(&Utc);
    // Millisecond precision, as stored.
    let at = DateTime::<Utc>::from_timestamp_millis(at.timestamp_millis())
        .ok_or("StartsAt is out of range")?;
    if at <= now {
        return Err("StartsAt must be in the future".to_owned());
    }
    if at >= far_future() {
        return Err("StartsAt is out of range".to_owned());
    }
    Ok(at)
}

/// The longest word prefix searched: longer words match on their first 20 characters.
pub const MAX_WORD_CHARS: usize = 20;

/// The words of `text` for search: lower-case runs of letters and digits, each cut to
/// [`MAX_WORD_CHARS`].
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| word.to_lowercase().chars().take(MAX_WORD_CHARS).collect())
        .collect()
}

/// What a search matches a ticket on: every prefix of every word of its title, venue and
/// city, so that `$all` of the query's words (exact elements, served by a multikey index on
/// MongoDB and FerretDB alike) finds "Concert" by "conc".
pub fn search_words(ticket: &Ticket) -> Vec<String> {
    let texts = [
        Some(ticket.title.as_str()),
        ticket.venue.as_deref(),
        ticket.city.as_deref(),
    ];
    let mut prefixes: Vec<String> = texts
        .into_iter()
        .flatten()
        .flat_map(words)
        .flat_map(|word| {
            let chars: Vec<char> = word.chars().collect();
            (1..=chars.len())
                .map(|n| chars[..n].iter().collect::<String>())
                .collect::<Vec<_>>()
        })
        .collect();
    prefixes.sort_unstable();
    prefixes.dedup();
    prefixes
}

/// The city as searched: trimmed and lower-cased.
pub fn city_key(city: &str) -> String {
    city.trim().to_lowercase()
}

/// Later than any event: the sort key of a ticket without a date (they sort last).
pub fn far_future() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(253_402_300_799_999).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub fn capitalized(field: &str) -> String {
    let mut chars = field.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
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
    /// What the ticket is for (absent on tickets listed before these existed).
    #[serde(default)]
    pub venue: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub starts_at: Option<bson::DateTime>,
    #[serde(default)]
    pub section: Option<String>,
    #[serde(default)]
    pub row: Option<String>,
    #[serde(default)]
    pub seat: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// When its seller took it off sale; null (or absent) while listed.
    #[serde(default)]
    pub removed_at: Option<bson::DateTime>,
    /// The price of the order holding it (`order.created`'s `ticket.priceCents`), while held.
    #[serde(default)]
    pub reserved_price_cents: Option<i64>,
    /// Sold (`order.completed` of the holding order) for this much; null until then.
    #[serde(default)]
    pub sold_for_cents: Option<i64>,
    /// Its seller removed it, but an order placed before that was known holds it: once that
    /// order lets it go, it is off sale again rather than back on sale.
    #[serde(default)]
    pub remove_on_release: bool,
}

/// Changes to a ticket's details: `None` keeps a field, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetailsEdit {
    pub venue: Option<Option<String>>,
    pub city: Option<Option<String>>,
    pub starts_at: Option<Option<DateTime<Utc>>>,
    pub section: Option<Option<String>>,
    pub row: Option<Option<String>>,
    pub seat: Option<Option<String>>,
    pub description: Option<Option<String>>,
}

impl DetailsEdit {
    pub fn apply(&self, current: TicketDetails) -> TicketDetails {
        fn pick<T: Clone>(change: &Option<Option<T>>, current: Option<T>) -> Option<T> {
            match change {
                Some(new) => new.clone(),
                None => current,
            }
        }
        TicketDetails {
            venue: pick(&self.venue, current.venue),
            city: pick(&self.city, current.city),
            starts_at: pick(&self.starts_at, current.starts_at),
            section: pick(&self.section, current.section),
            row: pick(&self.row, current.row),
            seat: pick(&self.seat, current.seat),
            description: pick(&self.description, current.description),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum EditError {
    NotOwner,
    Reserved,
    Sold,
    Removed,
}

/// Why a ticket cannot be taken off sale.
#[derive(Debug, PartialEq, Eq)]
pub enum RemoveError {
    NotOwner,
    Reserved,
    Sold,
}

/// The state a seller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Available,
    Reserved,
    Sold,
    Removed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Reserved => "reserved",
            Self::Sold => "sold",
            Self::Removed => "removed",
        }
    }
}

/// What an `order.created` does to the ticket.
#[derive(Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one short-lived value per decision
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

/// What an `order.completed` does to the ticket.
#[derive(Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one short-lived value per decision
pub enum Sell {
    /// Sold: the changed ticket.
    Apply(Ticket),
    /// Sold to this order already (a redelivery).
    AlreadySold,
    /// The order does not hold the ticket (yet): its creation has not arrived.
    NotHeld,
    /// The order was cancelled here: it cannot have been paid (never happens).
    OrderReleased,
}

/// What an `order.cancelled` does to the ticket.
#[derive(Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one short-lived value per decision
pub enum Release {
    /// Free it: the changed ticket.
    Apply(Ticket),
    /// The order does not hold it (yet): remember the cancellation, publish nothing.
    Remember(Ticket),
    /// Already remembered.
    AlreadyReleased,
}

impl Ticket {
    pub fn new(title: Title, price: Cents, user_id: &str, details: TicketDetails) -> Self {
        Self {
            venue: None,
            city: None,
            starts_at: None,
            section: None,
            row: None,
            seat: None,
            description: None,
            removed_at: None,
            reserved_price_cents: None,
            sold_for_cents: None,
            remove_on_release: false,
            id: ObjectId::new(),
            title: title.0,
            price_cents: price.get(),
            user_id: user_id.to_owned(),
            order_id: None,
            version: 0,
            released_order_ids: Vec::new(),
            created_at: bson::DateTime::now(),
        }
        .with_details(details)
    }

    /// The ticket with these details (all of them replaced).
    pub fn with_details(self, d: TicketDetails) -> Self {
        Self {
            venue: d.venue,
            city: d.city,
            starts_at: d.starts_at.map(bson::DateTime::from_chrono),
            section: d.section,
            row: d.row,
            seat: d.seat,
            description: d.description,
            ..self
        }
    }

    /// What the ticket is for, as events carry it.
    pub fn details(&self) -> TicketDetails {
        TicketDetails {
            venue: self.venue.clone(),
            city: self.city.clone(),
            starts_at: self.starts_at.map(bson::DateTime::to_chrono),
            section: self.section.clone(),
            row: self.row.clone(),
            seat: self.seat.clone(),
            description: self.description.clone(),
        }
    }

    /// The seller edits: title and price, and the details as `details` says (fields it
    /// leaves out keep their value).
    pub fn edit(
        &self,
        user_id: &str,
        title: Title,
        price: Cents,
        details: &DetailsEdit,
    ) -> Result<Self, EditError> {
        if self.user_id != user_id {
            return Err(EditError::NotOwner);
        }
        match self.state() {
            State::Available => {}
            State::Reserved => return Err(EditError::Reserved),
            State::Sold => return Err(EditError::Sold),
            State::Removed => return Err(EditError::Removed),
        }
        Ok(Self {
            title: title.0,
            price_cents: price.get(),
            version: self.version + 1,
            ..self.clone()
        }
        .with_details(details.apply(self.details())))
    }

    pub fn state(&self) -> State {
        if self.removed_at.is_some() {
            State::Removed
        } else if self.sold_for_cents.is_some() {
            State::Sold
        } else if self.order_id.is_some() {
            State::Reserved
        } else {
            State::Available
        }
    }

    /// The seller takes it off sale: only while nobody holds it. `None` when it is off
    /// sale already.
    pub fn remove(&self, user_id: &str) -> Result<Option<Self>, RemoveError> {
        if self.user_id != user_id {
            return Err(RemoveError::NotOwner);
        }
        match self.state() {
            State::Removed => Ok(None),
            State::Sold => Err(RemoveError::Sold),
            State::Reserved => Err(RemoveError::Reserved),
            State::Available => Ok(Some(Self {
                removed_at: Some(bson::DateTime::now()),
                version: self.version + 1,
                ..self.clone()
            })),
        }
    }

    /// The event announcing this version: `ticket.removed` when it went off sale,
    /// `ticket.updated` otherwise.
    pub fn change_event(&self) -> PendingEvent {
        if self.removed_at.is_some() {
            PendingEvent::new(self.removed_event())
        } else {
            PendingEvent::new(self.updated_event())
        }
    }

    pub fn removed_event(&self) -> TicketRemoved {
        TicketRemoved {
            id: self.id.to_hex(),
            user_id: self.user_id.clone(),
            version: self.version,
        }
    }

    /// An order reserves the ticket. An order placed before orders knew of a removal wins
    /// over it: the ticket is reserved (and listed again), so that a removed ticket never
    /// has an active order.
    pub fn reserve(&self, order_id: &str, price_cents: i64) -> Reserve {
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
                reserved_price_cents: Some(price_cents),
                version: self.version + 1,
                removed_at: None,
                remove_on_release: self.removed_at.is_some(),
                ..self.clone()
            }),
        }
    }

    /// The holding order was paid: the ticket is sold, for the price that order reserved it
    /// at.
    pub fn sell(&self, order_id: &str) -> Sell {
        if self.released_order_ids.iter().any(|id| id == order_id) {
            return Sell::OrderReleased;
        }
        if self.order_id.as_deref() != Some(order_id) {
            return Sell::NotHeld;
        }
        if self.sold_for_cents.is_some() {
            return Sell::AlreadySold;
        }
        Sell::Apply(Self {
            sold_for_cents: Some(self.reserved_price_cents.unwrap_or(self.price_cents)),
            version: self.version + 1,
            ..self.clone()
        })
    }

    pub fn release(&self, order_id: &str) -> Release {
        let mut released = self.released_order_ids.clone();
        if !released.iter().any(|id| id == order_id) {
            released.push(order_id.to_owned());
        }
        if self.order_id.as_deref() == Some(order_id) && self.sold_for_cents.is_some() {
            // orders never cancels a paid order: nothing to undo.
            return Release::AlreadyReleased;
        }
        if self.order_id.as_deref() == Some(order_id) {
            return Release::Apply(Self {
                order_id: None,
                reserved_price_cents: None,
                version: self.version + 1,
                released_order_ids: released,
                removed_at: self
                    .remove_on_release
                    .then(bson::DateTime::now)
                    .or(self.removed_at),
                remove_on_release: false,
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
            details: self.details(),
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
            details: self.details(),
            removed: self.removed_at.is_some(),
            sold: self.sold_for_cents.is_some(),
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
            details: self.details(),
            sold: self.sold_for_cents.is_some(),
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
            TicketDetails::default(),
        )
    }

    #[test]
    fn a_ticket_is_found_by_every_prefix_of_its_words() {
        let t = ticket().with_details(TicketDetails {
            venue: Some("Olympia-Hall".into()),
            city: Some("Saint-Étienne".into()),
            ..TicketDetails::default()
        });
        let found = search_words(&t);
        for word in [
            "c", "conc", "concert", "olympia", "hall", "saint", "étienne", "éti",
        ] {
            assert!(found.contains(&word.to_owned()), "{word}: {found:?}");
        }
        assert!(!found.contains(&"oncert".to_owned()));
        assert_eq!(words("  Rock & ROLL!! 2030 "), ["rock", "roll", "2030"]);
        assert_eq!(words(&"x".repeat(30)), ["x".repeat(20)]);
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
        let keep = DetailsEdit::default();
        assert_eq!(
            t.edit("buyer", title(), price, &keep),
            Err(EditError::NotOwner)
        );
        let edited = t.edit("seller", title(), price, &keep).unwrap();
        assert_eq!(
            (edited.version, edited.title.as_str(), edited.price_cents),
            (1, "New", 500)
        );
        let Reserve::Apply(reserved) = t.reserve("o1", 900) else {
            panic!()
        };
        assert_eq!(
            reserved.edit("seller", title(), price, &keep),
            Err(EditError::Reserved)
        );
    }

    #[test]
    fn only_the_owner_removes_and_only_a_free_ticket() {
        let t = ticket();
        assert_eq!(t.remove("buyer"), Err(RemoveError::NotOwner));
        let removed = t.remove("seller").unwrap().unwrap();
        assert_eq!((removed.state(), removed.version), (State::Removed, 1));
        assert_eq!(removed.remove("seller"), Ok(None), "twice is a no-op");
        assert_eq!(
            removed.edit(
                "seller",
                Title::parse("X").unwrap(),
                Cents::new(100).unwrap(),
                &DetailsEdit::default()
            ),
            Err(EditError::Removed)
        );
        let Reserve::Apply(reserved) = t.reserve("o1", 900) else {
            panic!()
        };
        assert_eq!(reserved.remove("seller"), Err(RemoveError::Reserved));
        // An order placed before the removal was known wins over it.
        let Reserve::Apply(back) = removed.reserve("o1", 900) else {
            panic!()
        };
        assert_eq!((back.state(), back.version), (State::Reserved, 2));
        // When that order lets it go, it is off sale again, not back on sale.
        let Release::Apply(off) = back.release("o1") else {
            panic!()
        };
        assert_eq!((off.state(), off.version), (State::Removed, 3));
        assert!(!off.remove_on_release);
        let Release::Apply(free) = reserved.release("o1") else {
            panic!()
        };
        assert_eq!(free.state(), State::Available);
    }

    #[test]
    fn the_holding_orders_payment_sells_it_for_the_reserved_price() {
        let t = ticket();
        assert_eq!(t.sell("o1"), Sell::NotHeld);
        let Reserve::Apply(held) = t.reserve("o1", 900) else {
            panic!()
        };
        assert_eq!(held.sell("o2"), Sell::NotHeld);
        let Sell::Apply(sold) = held.sell("o1") else {
            panic!()
        };
        assert_eq!(
            (sold.state(), sold.sold_for_cents, sold.version),
            (State::Sold, Some(900), 2)
        );
        assert_eq!(sold.sell("o1"), Sell::AlreadySold);
        assert_eq!(sold.release("o1"), Release::AlreadyReleased);
        assert_eq!(sold.remove("seller"), Err(RemoveError::Sold));
        let price = Cents::new(100).unwrap();
        assert_eq!(
            sold.edit(
                "seller",
                Title::parse("X").unwrap(),
                price,
                &DetailsEdit::default()
            ),
            Err(EditError::Sold)
        );
        let Release::Remember(remembered) = t.release("o3") else {
            panic!()
        };
        assert_eq!(remembered.sell("o3"), Sell::OrderReleased);
    }

    #[test]
    fn reservations_follow_the_holding_order() {
        let Reserve::Apply(held) = ticket().reserve("o1", 900) else {
            panic!()
        };
        assert_eq!(held.version, 1);
        assert_eq!(held.reserve("o1", 900), Reserve::AlreadyHeld);
        assert_eq!(held.reserve("o2", 900), Reserve::HeldByOther);
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
        assert_eq!(free.reserve("o1", 900), Reserve::OrderReleased);
    }

    /// Found by a 10-minute fault run: `o2`'s cancellation was recorded while `o1` held
    /// the ticket; `o2`'s late creation then waited for good for `o1` to let go.
    #[test]
    fn a_late_creation_of_a_cancelled_order_is_done_whoever_holds_the_ticket() {
        let Reserve::Apply(held) = ticket().reserve("o1", 900) else {
            panic!()
        };
        let Release::Remember(remembered) = held.release("o2") else {
            panic!()
        };
        assert_eq!(remembered.reserve("o2", 900), Reserve::OrderReleased);
        assert_eq!(remembered.reserve("o3", 900), Reserve::HeldByOther);
    }

    #[test]
    fn a_cancellation_arriving_before_the_creation_wins() {
        let Release::Remember(t) = ticket().release("o1") else {
            panic!()
        };
        assert_eq!(t.release("o1"), Release::AlreadyReleased);
        assert_eq!(t.reserve("o1", 900), Reserve::OrderReleased);
        assert!(matches!(t.reserve("o2", 900), Reserve::Apply(_)));
    }
}
