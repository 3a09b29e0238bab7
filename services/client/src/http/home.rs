//! `/`: the tickets for sale, newest first, a page at a time.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use serde::Deserialize;

use crate::app::AppState;
use crate::backend::PageRequest;
use crate::http::PageError;
use crate::http::forms::PageQuery;
use crate::http::views::{Layout, money, page_href};
use crate::http::visitor::Visitor;

/// `?limit=&cursor=`; values that make no sense are ignored rather than refused.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

impl ListQuery {
    pub fn page(&self) -> PageRequest {
        PageRequest {
            limit: self
                .limit
                .as_deref()
                .and_then(|l| l.parse().ok())
                .filter(|l| (1..=100).contains(l)),
            cursor: self
                .cursor
                .as_deref()
                .filter(|c| crate::http::forms::valid_id(c).is_ok())
                .map(str::to_owned),
        }
    }
}

pub struct TicketRow {
    pub href: String,
    pub title: String,
    pub price: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    layout: Layout,
    tickets: Vec<TicketRow>,
    next_href: Option<String>,
    first_href: Option<String>,
}

/// `GET /`
pub async fn index(
    State(state): State<AppState>,
    visitor: Visitor,
    PageQuery(query): PageQuery<ListQuery>,
) -> Result<HomePage, PageError> {
    let page = query.page();
    let reply = state.backend.list_tickets(&page).await?;
    let tickets = reply
        .body
        .into_iter()
        .map(|t| TicketRow {
            href: format!("/tickets/{}", t.id),
            title: t.title,
            price: money(t.price),
        })
        .collect();
    Ok(HomePage {
        layout: Layout::new("Tickets for sale", visitor.user),
        tickets,
        next_href: reply
            .next_cursor
            .map(|cursor| page_href("/", &cursor, page.limit)),
        first_href: page.cursor.is_some().then(|| "/".to_owned()),
    })
}
