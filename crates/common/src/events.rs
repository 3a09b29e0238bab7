//! The events GitTix services exchange: one Rust type per event, bound to its subject.
//!
//! On the wire every event is an [`Envelope`]:
//! `{"id": uuid, "type": subject, "occurredAt": RFC 3339, "data": {…}}`.
//! Data about a record carries that record's `version`, so replicas apply changes in
//! order. Money is always integer cents. JSON Schemas of every envelope are generated
//! into `docs/events/` (see [`schemas`]), so a service in another language can join.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An event type: its payload, and the subject it travels on (without the deployment's
/// prefix, which [`crate::bus::Bus`] adds).
pub trait Event: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static {
    const SUBJECT: &'static str;
}

/// What is published: the payload with an id (the dedupe key), its type and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    /// Unique per event; also the `Nats-Msg-Id`, so a re-publish is stored once.
    pub id: Uuid,
    /// The event's subject, e.g. `ticket.created`.
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub data: T,
}

impl<T: Event> Envelope<T> {
    pub fn new(data: T) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind: T::SUBJECT.to_owned(),
            occurred_at: Utc::now(),
            data,
        }
    }

    /// An envelope whose id is derived from `key`, for events that must be published at
    /// most once per key even across retries and replicas (e.g. one expiry per order).
    pub fn with_key(key: &str, data: T) -> Self {
        Self {
            id: Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("{}:{key}", T::SUBJECT).as_bytes(),
            ),
            ..Self::new(data)
        }
    }
}

macro_rules! events {
    ($($(#[$doc:meta])* $name:ident = $subject:literal;)*) => {
        $(impl Event for $name { const SUBJECT: &'static str = $subject; })*

        /// Every subject, for stream set-up and documentation.
        pub const ALL_SUBJECTS: &[&str] = &[$($subject),*];

        /// JSON Schemas of every event envelope, named by subject.
        pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
            vec![$(($subject, serde_json::to_value(schemars::schema_for!(Envelope<$name>))
                .unwrap_or_default())),*]
        }
    };
}

events! {
    UserCreated = "user.created";
    UserBanned = "user.banned";
    UserUnbanned = "user.unbanned";
    UserPasswordResetRequested = "user.password_reset_requested";
    TicketCreated = "ticket.created";
    TicketUpdated = "ticket.updated";
    TicketRemoved = "ticket.removed";
    OrderCreated = "order.created";
    OrderCancelled = "order.cancelled";
    OrderCompleted = "order.completed";
    ExpirationComplete = "expiration.complete";
    PaymentCreated = "payment.created";
    PaymentRefunded = "payment.refunded";
    TicketResyncRequested = "ticket.resync_requested";
    TicketSnapshot = "ticket.snapshot";
    OrderResyncRequested = "order.resync_requested";
    OrderSnapshot = "order.snapshot";
}

/// A user signed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCreated {
    pub id: String,
    pub email: String,
    pub version: i64,
}

/// An admin suspended a user: every service refuses their session at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserBanned {
    /// The user's id.
    pub id: String,
    /// The user's version after the ban: bans and unbans apply in this order.
    pub version: i64,
}

/// An admin lifted a user's suspension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserUnbanned {
    /// The user's id.
    pub id: String,
    /// The user's version after the unban.
    pub version: i64,
}

/// A user asked to reset a forgotten password. Carries the single-use token in clear so
/// that notifications can email the link: this subject travels only on the internal bus,
/// only notifications subscribes to it, and auth keeps only the token's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserPasswordResetRequested {
    /// The user's id.
    pub user_id: String,
    /// The reset token (URL-safe), valid once until `expiresAt`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// The user's email, where the link goes: so that notifications can send it to a user
    /// it has no replica of (e.g. one who signed up before notifications was deployed).
    /// Absent in events published before auth filled it in.
    #[serde(default)]
    pub email: Option<String>,
}

/// What a ticket is for: the event, where, when and which seat. Every field is optional
/// (a ticket listed with only a title and a price has none) and absent in events published
/// before tickets carried them. Flattened into the ticket events' `data`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketDetails {
    /// Where the event takes place (at most 120 characters).
    #[serde(default)]
    pub venue: Option<String>,
    /// The venue's city (at most 80 characters).
    #[serde(default)]
    pub city: Option<String>,
    /// When the event starts.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// At most 20 characters.
    #[serde(default)]
    pub section: Option<String>,
    /// At most 20 characters.
    #[serde(default)]
    pub row: Option<String>,
    /// At most 20 characters.
    #[serde(default)]
    pub seat: Option<String>,
    /// Free text from the seller (at most 2,000 characters).
    #[serde(default)]
    pub description: Option<String>,
}

/// A ticket was listed for sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketCreated {
    pub id: String,
    pub title: String,
    /// Price in integer cents.
    pub price_cents: i64,
    pub user_id: String,
    pub version: i64,
    #[serde(flatten)]
    pub details: TicketDetails,
}

/// A ticket changed: edited by its seller, reserved by an order, or released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketUpdated {
    pub id: String,
    pub title: String,
    /// Price in integer cents.
    pub price_cents: i64,
    pub user_id: String,
    /// The order holding the ticket, if any.
    pub order_id: Option<String>,
    pub version: i64,
    #[serde(flatten)]
    pub details: TicketDetails,
    /// Sold: the holding order (`orderId`) was paid. Absent in older events.
    #[serde(default)]
    pub sold: bool,
}

/// Its seller took a ticket off sale: it leaves the listing and can no longer be ordered.
/// Comes in the ticket's version order like `ticket.updated`. An order placed before the
/// removal was known wins: the ticket is then reserved by it (a `ticket.updated` at the next
/// version), so a removed ticket never has an active order; when that order is cancelled,
/// the ticket goes off sale again (another `ticket.removed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketRemoved {
    pub id: String,
    /// The seller.
    pub user_id: String,
    pub version: i64,
}

/// The ticket an order is for, as the order saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderTicket {
    pub id: String,
    /// Price in integer cents.
    pub price_cents: i64,
}

/// A buyer reserved a ticket; the reservation lapses at `expiresAt` unless paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    pub id: String,
    pub user_id: String,
    pub expires_at: DateTime<Utc>,
    pub ticket: OrderTicket,
    pub version: i64,
}

/// A reference to an order and its ticket, for status changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderTicketRef {
    pub id: String,
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// Its buyer cancelled it.
    Buyer,
    /// Its payment window (and the grace after it) passed unpaid.
    Expired,
    /// Its buyer was banned while it was unpaid.
    Banned,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buyer => "buyer",
            Self::Expired => "expired",
            Self::Banned => "banned",
        }
    }
}

/// An order was cancelled (by its buyer, by expiry, or by its buyer's ban); its ticket is
/// free again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    pub id: String,
    pub ticket: OrderTicketRef,
    pub version: i64,
    /// Why; absent in events published before reasons were recorded.
    #[serde(default)]
    pub reason: Option<CancelReason>,
}

/// An order was paid; its ticket is sold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCompleted {
    pub id: String,
    pub ticket: OrderTicketRef,
    pub version: i64,
    /// The payment (`payment.created`'s `id`) that completed the order; every other
    /// successful charge of the order is refunded.
    #[serde(default)]
    pub payment_id: Option<String>,
}

/// An order's payment window has passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpirationComplete {
    pub order_id: String,
}

/// A payment for an order succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCreated {
    pub id: String,
    pub order_id: String,
    pub stripe_id: String,
    /// Amount charged in integer cents (of `currency`).
    pub amount_cents: i64,
    pub currency: String,
    pub version: i64,
}

/// A charge was refunded, as Stripe confirmed: it could not complete its order
/// (cancelled meanwhile, paid by another charge, or for another amount).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRefunded {
    /// The refund record's id.
    pub id: String,
    pub payment_id: String,
    pub order_id: String,
    /// The PaymentIntent refunded.
    pub stripe_id: String,
    /// Stripe's refund id (`re_…`).
    pub refund_id: String,
    /// Amount refunded in integer cents (of `currency`).
    pub amount_cents: i64,
    pub currency: String,
    pub reason: String,
}

/// A replica of tickets (orders) lost track of a ticket: its owner, the tickets service,
/// answers with a [`TicketSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketResyncRequested {
    pub id: String,
    /// The version the replica has, if any.
    pub known_version: Option<i64>,
    /// The service asking, for the logs.
    pub requested_by: String,
}

/// The whole current state of a ticket at `version`: a replica applies it when it is
/// newer than what it has (state transfer), whatever events it missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketSnapshot {
    pub id: String,
    pub title: String,
    /// Price in integer cents.
    pub price_cents: i64,
    pub user_id: String,
    pub order_id: Option<String>,
    pub version: i64,
    #[serde(flatten)]
    pub details: TicketDetails,
    /// Taken off sale by its seller (`ticket.removed`); absent in older snapshots.
    #[serde(default)]
    pub removed: bool,
    /// Sold: the holding order (`orderId`) was paid. Absent in older snapshots.
    #[serde(default)]
    pub sold: bool,
}

/// A service that follows orders (tickets, payments) lost track of one: orders answers
/// with an [`OrderSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderResyncRequested {
    pub id: String,
    /// The version the replica has, if any.
    pub known_version: Option<i64>,
    /// The service asking, for the logs.
    pub requested_by: String,
}

/// The whole current state of an order at `version` (state transfer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderSnapshot {
    pub id: String,
    pub user_id: String,
    /// `created`, `cancelled` or `complete`.
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub ticket: OrderTicket,
    pub payment_id: Option<String>,
    pub version: i64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::Path;

    #[test]
    fn envelopes_have_the_documented_shape() {
        let envelope = Envelope::new(ExpirationComplete {
            order_id: "abc".into(),
        });
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["type"], "expiration.complete");
        assert_eq!(json["data"]["orderId"], "abc");
        assert!(json["occurredAt"].as_str().unwrap().contains('T'));
        assert_eq!(json["id"].as_str().unwrap().len(), 36);
        let back: Envelope<ExpirationComplete> = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope);
    }

    #[test]
    fn cancel_reasons_are_snake_case_and_optional_on_the_wire() {
        let event = OrderCancelled {
            id: "o".into(),
            ticket: OrderTicketRef { id: "t".into() },
            version: 1,
            reason: Some(CancelReason::Expired),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["reason"], "expired");
        for reason in [
            CancelReason::Buyer,
            CancelReason::Expired,
            CancelReason::Banned,
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
        let old: OrderCancelled =
            serde_json::from_str(r#"{"id":"o","ticket":{"id":"t"},"version":1}"#).unwrap();
        assert_eq!(old.reason, None);
    }

    #[test]
    fn ticket_details_are_flat_optional_and_absent_from_old_events() {
        let old: TicketUpdated = serde_json::from_str(
            r#"{"id":"t","title":"Gig","priceCents":1000,"userId":"u","orderId":null,"version":2}"#,
        )
        .unwrap();
        assert_eq!(old.details, TicketDetails::default());
        let event = TicketCreated {
            id: "t".into(),
            title: "Gig".into(),
            price_cents: 1000,
            user_id: "u".into(),
            version: 0,
            details: TicketDetails {
                venue: Some("Arena".into()),
                starts_at: Some("2030-05-01T20:00:00Z".parse().unwrap()),
                ..TicketDetails::default()
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["venue"], "Arena");
        assert_eq!(json["startsAt"], "2030-05-01T20:00:00Z");
        assert!(json["city"].is_null());
        assert_eq!(
            serde_json::from_value::<TicketCreated>(json).unwrap(),
            event
        );
    }

    #[test]
    fn keyed_envelopes_share_their_id() {
        let a = Envelope::with_key(
            "order-1",
            ExpirationComplete {
                order_id: "1".into(),
            },
        );
        let b = Envelope::with_key(
            "order-1",
            ExpirationComplete {
                order_id: "1".into(),
            },
        );
        let c = Envelope::with_key(
            "order-2",
            ExpirationComplete {
                order_id: "2".into(),
            },
        );
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
    }

    /// `GITTIX_WRITE_SCHEMAS=1 cargo test -p common checked_in` rewrites them.
    #[test]
    fn checked_in_event_schemas_are_up_to_date() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events");
        let write = std::env::var("GITTIX_WRITE_SCHEMAS").is_ok_and(|v| v == "1");
        let mut stale = Vec::new();
        for (subject, schema) in schemas() {
            let path = dir.join(format!("{subject}.json"));
            let expected = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            if write {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &expected).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(expected.as_str()) {
                stale.push(path.display().to_string());
            }
        }
        assert!(
            stale.is_empty(),
            "stale event schemas (run `GITTIX_WRITE_SCHEMAS=1 cargo test -p common checked_in`): {stale:?}"
        );
    }
}
