//! The orders service: `/api/orders`.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::tickets::paging_query;
use super::{Backend, BackendError, PageRequest, Reply, Session, Upstream};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Reserved, waiting for payment until `expiresAt`.
    Created,
    /// Cancelled by the buyer or expired.
    Cancelled,
    /// Paid.
    Complete,
    /// A status this client does not know yet: shown as it is, never payable.
    #[serde(other)]
    Unknown,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Cancelled => "cancelled",
            Self::Complete => "complete",
            Self::Unknown => "unknown",
        }
    }

    /// What the badge says.
    pub fn label(self) -> &'static str {
        match self {
            Self::Created => "Awaiting payment",
            Self::Cancelled => "Cancelled",
            Self::Complete => "Complete",
            Self::Unknown => "Unknown",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub status: OrderStatus,
    pub expires_at: DateTime<Utc>,
    pub ticket: OrderTicket,
    /// A charge of this order that was given back (orders fills it from
    /// `payment.refunded`); `null` or absent otherwise.
    #[serde(default)]
    pub refund: Option<OrderRefund>,
}

/// A refunded charge, as orders reports it: `{"amount": 12.34, "currency": "usd",
/// "status": "succeeded"}` (a decimal amount, like prices).
#[derive(Debug, Clone, Deserialize)]
pub struct OrderRefund {
    pub amount: f64,
    pub currency: String,
    pub status: String,
}

impl OrderRefund {
    /// What the buyer reads: "Refunded", or "Refund pending" until it is done.
    pub fn label(&self) -> &'static str {
        if self.status == "succeeded" {
            "Refunded"
        } else {
            "Refund pending"
        }
    }

    /// `Refunded 12.34 USD`.
    pub fn summary(&self) -> String {
        format!(
            "{} {:.2} {}",
            self.label(),
            self.amount,
            self.currency.to_uppercase()
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderTicket {
    pub id: String,
    pub title: String,
    pub price: f64,
    #[serde(flatten)]
    pub details: super::EventDetails,
}

impl Order {
    /// Payable: created and not yet past its expiry.
    pub fn is_payable(&self, now: DateTime<Utc>) -> bool {
        self.status == OrderStatus::Created && self.expires_at > now
    }
}

impl Backend {
    /// A page of the signed-in user's orders, newest first.
    pub async fn list_orders(
        &self,
        session: &Session,
        page: &PageRequest,
    ) -> Result<Reply<Vec<Order>>, BackendError> {
        let request = self
            .request(Method::GET, Upstream::Orders, &["api", "orders"], session)
            .query(&paging_query(page));
        self.json(Upstream::Orders, request).await
    }

    pub async fn get_order(
        &self,
        session: &Session,
        id: &str,
    ) -> Result<Reply<Order>, BackendError> {
        let request = self.request(
            Method::GET,
            Upstream::Orders,
            &["api", "orders", id],
            session,
        );
        self.json(Upstream::Orders, request).await
    }

    /// Reserves the ticket for the signed-in user.
    pub async fn create_order(
        &self,
        session: &Session,
        ticket_id: &str,
    ) -> Result<Reply<Order>, BackendError> {
        let request = self
            .request(Method::POST, Upstream::Orders, &["api", "orders"], session)
            .json(&json!({"ticketId": ticket_id}));
        self.json(Upstream::Orders, request).await
    }

    pub async fn cancel_order(
        &self,
        session: &Session,
        id: &str,
    ) -> Result<Reply<()>, BackendError> {
        let request = self.request(
            Method::DELETE,
            Upstream::Orders,
            &["api", "orders", id],
            session,
        );
        Ok(self.send(Upstream::Orders, request).await?.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn order(refund: serde_json::Value) -> Order {
        serde_json::from_value(json!({
            "id": "o1",
            "status": "cancelled",
            "expiresAt": "2030-01-01T00:00:00Z",
            "ticket": {"id": "t1", "title": "Gig", "price": 12.34},
            "refund": refund,
        }))
        .unwrap()
    }

    #[test]
    fn a_refund_in_the_order_is_read_and_labelled() {
        let refunded = order(json!({"amount": 12.34, "currency": "usd", "status": "succeeded"}));
        let refund = refunded.refund.unwrap();
        assert_eq!(refund.label(), "Refunded");
        assert_eq!(refund.summary(), "Refunded 12.34 USD");
        let pending = order(json!({"amount": 12.34, "currency": "usd", "status": "pending"}));
        assert_eq!(pending.refund.unwrap().label(), "Refund pending");
        assert!(order(serde_json::Value::Null).refund.is_none());
    }
}
