//! What each email says: its variables, from the event and the replicas. No I/O.

use chrono::{DateTime, Utc};
use common::events::CancelReason;
use minijinja::{Value, context};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::replica::{OrderReplica, PaymentReplica, TicketReplica};

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Links in emails point at the public site (`PUBLIC_URL`, no trailing slash).
#[derive(Debug, Clone)]
pub struct Links {
    pub public_url: String,
}

impl Links {
    pub fn order(&self, order_id: &str) -> String {
        format!(
            "{}/orders/{}",
            self.public_url,
            utf8_percent_encode(order_id, COMPONENT)
        )
    }

    pub fn tickets(&self) -> String {
        format!("{}/", self.public_url)
    }

    /// The reset page with the token as its query (encoded: it is the user's secret, and
    /// nothing in it may change the URL).
    pub fn reset_password(&self, token: &str) -> String {
        format!(
            "{}/reset-password?token={}",
            self.public_url,
            utf8_percent_encode(token, COMPONENT)
        )
    }
}

/// A link as it goes into HTML: not escaped. Safe because every link is `PUBLIC_URL`
/// (checked at start-up to hold no quote, `<`, `>` or `&`) followed by percent-encoded
/// components; escaping would turn its slashes into `&#x2f;`, which link rewriters (click
/// tracking) may not decode.
fn link(url: String) -> Value {
    Value::from_safe_string(url)
}

/// Cents in their currency: `$12.50` for dollars, `12.50 EUR` otherwise.
pub fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let units = format!("{}.{:02}", cents.abs() / 100, cents.abs() % 100);
    if currency.eq_ignore_ascii_case("usd") {
        format!("{sign}${units}")
    } else {
        format!("{sign}{units} {}", currency.to_ascii_uppercase())
    }
}

/// `Fri, 27 Nov 2026 14:05 UTC`.
pub fn when(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M UTC").to_string()
}

pub fn welcome(email: &str, links: &Links) -> Value {
    context! { email, tickets_url => link(links.tickets()) }
}

/// Ticket prices are in the deployment's currency, dollars (as the site shows them).
pub fn reservation(order: &OrderReplica, ticket: &TicketReplica, links: &Links) -> Value {
    context! {
        ticket_title => ticket.title.as_str(),
        price => money(order.price_cents, "usd"),
        pay_by => when(order.expires_at),
        order_url => link(links.order(&order.id)),
    }
}

pub fn receipt(
    order: &OrderReplica,
    ticket: &TicketReplica,
    payment: &PaymentReplica,
    completed_at: DateTime<Utc>,
    links: &Links,
) -> Value {
    context! {
        ticket_title => ticket.title.as_str(),
        amount => money(payment.amount_cents, &payment.currency),
        order_id => order.id.as_str(),
        date => when(completed_at),
        order_url => link(links.order(&order.id)),
    }
}

pub fn order_cancelled(
    order: &OrderReplica,
    ticket: &TicketReplica,
    reason: Option<CancelReason>,
    links: &Links,
) -> Value {
    let reason_text = match reason {
        Some(CancelReason::Buyer) => "you cancelled it.",
        Some(CancelReason::Expired) => {
            "it was not paid for before its payment deadline, so the reservation expired."
        }
        Some(CancelReason::Banned) => "your account was suspended.",
        None => "it can no longer be paid for.",
    };
    context! {
        ticket_title => ticket.title.as_str(),
        reason => reason.map(CancelReason::as_str),
        expired => reason == Some(CancelReason::Expired),
        reason_text,
        order_url => link(links.order(&order.id)),
    }
}

/// `reason` is payments' refund reason (`order_cancelled`, `duplicate`, `amount_mismatch`).
pub fn refund(
    order: &OrderReplica,
    ticket: &TicketReplica,
    amount_cents: i64,
    currency: &str,
    reason: &str,
    links: &Links,
) -> Value {
    let reason_text = match reason {
        "order_cancelled" => "the order had been cancelled when the payment arrived.",
        "duplicate" => "the order had already been paid by another payment.",
        "amount_mismatch" => "the amount did not match the order's price.",
        _ => "the payment could not complete the order.",
    };
    context! {
        ticket_title => ticket.title.as_str(),
        amount => money(amount_cents, currency),
        order_id => order.id.as_str(),
        reason_text,
        order_url => link(links.order(&order.id)),
    }
}

pub fn password_reset(token: &str, expires_at: DateTime<Utc>, links: &Links) -> Value {
    context! {
        reset_url => link(links.reset_password(token)),
        expires_at => when(expires_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_shown_in_their_currency() {
        assert_eq!(money(1250, "usd"), "$12.50");
        assert_eq!(money(5, "USD"), "$0.05");
        assert_eq!(money(100_000, "eur"), "1000.00 EUR");
    }

    #[test]
    fn reset_tokens_are_encoded_into_the_link() {
        let links = Links {
            public_url: "https://gittix.dev".into(),
        };
        assert_eq!(
            links.reset_password("a+b/c=&d e"),
            "https://gittix.dev/reset-password?token=a%2Bb%2Fc%3D%26d%20e"
        );
        assert_eq!(
            links.reset_password("abc_DEF-123"),
            "https://gittix.dev/reset-password?token=abc_DEF-123"
        );
    }
}
