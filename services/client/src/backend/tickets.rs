//! The tickets service: `/api/tickets`.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{Backend, BackendError, PageRequest, Reply, Service, Session};

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
}

impl Ticket {
    pub fn is_reserved(&self) -> bool {
        self.order_id.is_some()
    }
}

impl Backend {
    /// A page of available tickets, newest first.
    pub async fn list_tickets(
        &self,
        page: &PageRequest,
    ) -> Result<Reply<Vec<Ticket>>, BackendError> {
        let request = self
            .request(
                Method::GET,
                Service::Tickets,
                &["api", "tickets"],
                &Session::ANONYMOUS,
            )
            .query(&paging_query(page));
        self.json(Service::Tickets, request).await
    }

    pub async fn get_ticket(&self, id: &str) -> Result<Reply<Ticket>, BackendError> {
        let request = self.request(
            Method::GET,
            Service::Tickets,
            &["api", "tickets", id],
            &Session::ANONYMOUS,
        );
        self.json(Service::Tickets, request).await
    }

    pub async fn create_ticket(
        &self,
        session: &Session,
        title: &str,
        price: &serde_json::Value,
    ) -> Result<Reply<Ticket>, BackendError> {
        let request = self
            .request(Method::POST, Service::Tickets, &["api", "tickets"], session)
            .json(&json!({"title": title, "price": price}));
        self.json(Service::Tickets, request).await
    }

    pub async fn update_ticket(
        &self,
        session: &Session,
        id: &str,
        title: &str,
        price: &serde_json::Value,
    ) -> Result<Reply<Ticket>, BackendError> {
        let request = self
            .request(
                Method::PUT,
                Service::Tickets,
                &["api", "tickets", id],
                session,
            )
            .json(&json!({"title": title, "price": price}));
        self.json(Service::Tickets, request).await
    }
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
