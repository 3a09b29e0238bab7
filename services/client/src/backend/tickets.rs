//! The tickets service: `/api/tickets`.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Backend, BackendError, PageRequest, Reply, Session, Upstream};

/// The event a ticket is for: every part optional (tickets listed before issue 19 have
/// none). Shown on tickets and on the order's ticket.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventDetails {
    pub venue: Option<String>,
    pub city: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub section: Option<String>,
    pub row: Option<String>,
    pub seat: Option<String>,
    pub description: Option<String>,
}

/// The details as a form sends them: text as typed (trimmed; empty = none) and the start
/// already converted to UTC.
#[derive(Debug, Clone, Default)]
pub struct DetailsInput {
    pub venue: String,
    pub city: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub section: String,
    pub row: String,
    pub seat: String,
    pub description: String,
}

impl DetailsInput {
    /// The JSON body's detail fields: each one sent, `null` when empty (which clears it on
    /// an edit and means none on a listing).
    fn extend(&self, body: &mut serde_json::Map<String, Value>) {
        let text = |value: &str| {
            let value = value.trim();
            if value.is_empty() {
                Value::Null
            } else {
                Value::String(value.to_owned())
            }
        };
        body.insert("venue".into(), text(&self.venue));
        body.insert("city".into(), text(&self.city));
        body.insert(
            "startsAt".into(),
            self.starts_at.map_or(Value::Null, |at| {
                Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            }),
        );
        body.insert("section".into(), text(&self.section));
        body.insert("row".into(), text(&self.row));
        body.insert("seat".into(), text(&self.seat));
        body.insert("description".into(), text(&self.description));
    }
}

/// `GET /api/tickets`' search: each filter as the visitor typed it (the service judges
/// them and names a bad one), sent only when given.
#[derive(Debug, Clone, Default)]
pub struct TicketSearch {
    pub q: String,
    pub city: String,
    /// RFC 3339.
    pub from: Option<String>,
    pub to: Option<String>,
    pub min_price: String,
    pub max_price: String,
    pub sort: String,
}

impl TicketSearch {
    fn query(&self) -> Vec<(&'static str, String)> {
        [
            ("q", Some(self.q.as_str())),
            ("city", Some(self.city.as_str())),
            ("from", self.from.as_deref()),
            ("to", self.to.as_deref()),
            ("minPrice", Some(self.min_price.as_str())),
            ("maxPrice", Some(self.max_price.as_str())),
            ("sort", Some(self.sort.as_str())),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            let value = value?.trim();
            (!value.is_empty()).then(|| (name, value.to_owned()))
        })
        .collect()
    }
}

/// One of the seller's tickets, with its state and, once sold, what it earned.
#[derive(Debug, Clone, Deserialize)]
pub struct MyTicket {
    #[serde(flatten)]
    pub ticket: Ticket,
    #[serde(default)]
    pub earned: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub id: String,
    pub title: String,
    /// Currency units, at most two decimals (`19.99`).
    pub price: f64,
    pub user_id: String,
    /// Set while an order reserves the ticket (and once it is sold).
    #[serde(default)]
    pub order_id: Option<String>,
    /// `available`, `reserved`, `sold` or `removed`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(flatten)]
    pub details: EventDetails,
}

impl Ticket {
    pub fn is_reserved(&self) -> bool {
        self.order_id.is_some()
    }

    /// Taken off sale by its seller.
    pub fn is_removed(&self) -> bool {
        self.status.as_deref() == Some("removed")
    }
}

impl Backend {
    /// A page of available tickets matching `search`, in its order (newest first).
    pub async fn list_tickets(
        &self,
        search: &TicketSearch,
        page: &PageRequest,
    ) -> Result<Reply<Vec<Ticket>>, BackendError> {
        let request = self
            .request(
                Method::GET,
                Upstream::Tickets,
                &["api", "tickets"],
                &Session::ANONYMOUS,
            )
            .query(&search.query())
            .query(&paging_query(page));
        self.json(Upstream::Tickets, request).await
    }

    /// A page of the signed-in seller's tickets, newest first; `status` filters.
    pub async fn my_tickets(
        &self,
        session: &Session,
        status: Option<&str>,
        page: &PageRequest,
    ) -> Result<Reply<Vec<MyTicket>>, BackendError> {
        let mut request = self
            .request(
                Method::GET,
                Upstream::Tickets,
                &["api", "tickets", "mine"],
                session,
            )
            .query(&paging_query(page));
        if let Some(status) = status {
            request = request.query(&[("status", status)]);
        }
        self.json(Upstream::Tickets, request).await
    }

    /// Takes the seller's ticket off sale (204; twice is a no-op).
    pub async fn remove_ticket(&self, session: &Session, id: &str) -> Result<(), BackendError> {
        let request = self.request(
            Method::DELETE,
            Upstream::Tickets,
            &["api", "tickets", id],
            session,
        );
        self.send(Upstream::Tickets, request).await.map(|_| ())
    }

    pub async fn get_ticket(&self, id: &str) -> Result<Reply<Ticket>, BackendError> {
        let request = self.request(
            Method::GET,
            Upstream::Tickets,
            &["api", "tickets", id],
            &Session::ANONYMOUS,
        );
        self.json(Upstream::Tickets, request).await
    }

    pub async fn create_ticket(
        &self,
        session: &Session,
        title: &str,
        price: &serde_json::Value,
        details: &DetailsInput,
    ) -> Result<Reply<Ticket>, BackendError> {
        let request = self
            .request(
                Method::POST,
                Upstream::Tickets,
                &["api", "tickets"],
                session,
            )
            .json(&body(title, price, details));
        self.json(Upstream::Tickets, request).await
    }

    pub async fn update_ticket(
        &self,
        session: &Session,
        id: &str,
        title: &str,
        price: &serde_json::Value,
        details: &DetailsInput,
    ) -> Result<Reply<Ticket>, BackendError> {
        let request = self
            .request(
                Method::PUT,
                Upstream::Tickets,
                &["api", "tickets", id],
                session,
            )
            .json(&body(title, price, details));
        self.json(Upstream::Tickets, request).await
    }
}

fn body(title: &str, price: &Value, details: &DetailsInput) -> Value {
    let mut body = serde_json::Map::new();
    body.insert("title".into(), json!(title));
    body.insert("price".into(), price.clone());
    details.extend(&mut body);
    Value::Object(body)
}

pub(super) fn paging_query(page: &PageRequest) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(limit) = page.limit {
        query.push(("limit", limit.to_string()));
    }
    if let Some(cursor) = &page.cursor {
        query.push(("cursor", cursor.clone()));
    }
    query
}
