//! `/tickets/mine` (My listings): the seller's tickets by state, what the sold ones
//! earned, and `POST /tickets/:id/unlist` to take one off sale.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::backend::{Backend, BackendError, PageRequest, Session, User};
use crate::http::PageError;
use crate::http::forms::{HtmlQuery, valid_id};
use crate::http::home::ListQuery;
use crate::http::views::{Layout, money, page_href};
use crate::http::visitor::Visitor;
use crate::state::AppState;

/// At most this many pages of sold tickets are added up for the total earned.
const TOTAL_PAGES_MAX: usize = 50;

/// The tabs: `status` value and label (`""` = all).
const TABS: &[(&str, &str)] = &[
    ("", "All"),
    ("available", "Available"),
    ("reserved", "Reserved"),
    ("sold", "Sold"),
];

pub struct Tab {
    href: &'static str,
    label: &'static str,
    current: bool,
}

pub struct ListingRow {
    id: String,
    href: String,
    title: String,
    price: String,
    place: Option<String>,
    when: Option<String>,
    status: String,
    status_label: &'static str,
    badge: &'static str,
    earned: Option<String>,
    /// Available: editable and unlistable.
    available: bool,
    /// Reserved: the Unlist button stays, and explains itself when refused.
    reserved: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "listings.html")]
pub struct ListingsPage {
    layout: Layout,
    tabs: Vec<Tab>,
    /// What the current tab shows, for the empty state.
    tab_label: &'static str,
    rows: Vec<ListingRow>,
    total_earned: String,
    sold_count: usize,
    notice: Option<&'static str>,
    error: Option<String>,
    next_href: Option<String>,
    first_href: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListingsQuery {
    status: String,
    unlisted: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn status_label(status: &str) -> &'static str {
    match status {
        "available" => "Available",
        "reserved" => "Reserved",
        "sold" => "Sold",
        "removed" => "Unlisted",
        _ => "Unknown",
    }
}

/// The status badge's class, reusing the order badges' colours.
fn badge(status: &str) -> &'static str {
    match status {
        "available" => "created",
        "reserved" => "cancelled",
        "sold" => "complete",
        _ => "neutral",
    }
}

/// `GET /tickets/mine`
pub async fn index(
    State(state): State<AppState>,
    visitor: Visitor,
    HtmlQuery(query): HtmlQuery<ListingsQuery>,
) -> Result<ListingsPage, PageError> {
    let user = visitor.require("/tickets/mine")?;
    let notice = query
        .unlisted
        .is_some()
        .then_some("Your ticket was unlisted: it is no longer for sale.");
    listings_page(&state.backend, &visitor.session, user, &query, notice, None).await
}

async fn listings_page(
    backend: &Backend,
    session: &Session,
    user: User,
    query: &ListingsQuery,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<ListingsPage, PageError> {
    // An unknown status is the "All" tab rather than an error page.
    let (status, tab_label) = TABS
        .iter()
        .find(|(value, _)| *value == query.status.trim())
        .map_or(("", "All"), |&(value, label)| (value, label));
    let page = ListQuery::new(query.limit.clone(), query.cursor.clone()).page();
    let reply = backend
        .my_tickets(session, (!status.is_empty()).then_some(status), &page)
        .await?;
    let rows = reply
        .body
        .into_iter()
        .map(|mine| {
            let ticket = mine.ticket;
            let event = crate::http::views::EventView::new(&ticket.details);
            let status = ticket.status.clone().unwrap_or_default();
            ListingRow {
                href: format!("/tickets/{}", ticket.id),
                place: event.place(),
                when: event.when.map(|(label, _)| label),
                status_label: status_label(&status),
                badge: badge(&status),
                available: status == "available",
                reserved: status == "reserved",
                earned: mine.earned.map(money),
                price: money(ticket.price),
                title: ticket.title,
                id: ticket.id,
                status,
            }
        })
        .collect();
    let (total, sold_count) = total_earned(backend, session).await?;
    let base = if status.is_empty() {
        "/tickets/mine".to_owned()
    } else {
        format!("/tickets/mine?status={status}")
    };
    let next_href = reply.next_cursor.map(|cursor| {
        let href = page_href(&base, &cursor, page.limit);
        // `page_href` starts the query; with a status already there it continues it.
        if status.is_empty() {
            href
        } else {
            href.replacen("?limit=", "&limit=", 1)
                .replacen("?cursor=", "&cursor=", 1)
        }
    });
    Ok(ListingsPage {
        layout: Layout::new("My listings", Some(user)),
        tabs: TABS
            .iter()
            .map(|&(value, label)| Tab {
                href: match value {
                    "available" => "/tickets/mine?status=available",
                    "reserved" => "/tickets/mine?status=reserved",
                    "sold" => "/tickets/mine?status=sold",
                    _ => "/tickets/mine",
                },
                label,
                current: value == status,
            })
            .collect(),
        tab_label,
        rows,
        total_earned: money(total),
        sold_count,
        notice,
        error,
        next_href,
        first_href: page.cursor.is_some().then_some(base),
    })
}

/// What every sold ticket earned, added up (in cents, so the sum is exact), and how many.
async fn total_earned(backend: &Backend, session: &Session) -> Result<(f64, usize), PageError> {
    let mut cents: i64 = 0;
    let mut count = 0;
    let mut page = PageRequest {
        limit: Some(100),
        cursor: None,
    };
    for _ in 0..TOTAL_PAGES_MAX {
        let reply = backend.my_tickets(session, Some("sold"), &page).await?;
        for mine in &reply.body {
            let earned = mine.earned.unwrap_or(mine.ticket.price);
            cents += (earned * 100.0).round() as i64;
            count += 1;
        }
        match reply.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => break,
        }
    }
    Ok((cents as f64 / 100.0, count))
}

/// `POST /tickets/:id/unlist`: takes the ticket off sale, then My listings again.
pub async fn unlist(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = valid_id(&id)?;
    let user = visitor.require("/tickets/mine")?;
    let (status, message) = match state.backend.remove_ticket(&visitor.session, id).await {
        Ok(()) => {
            tracing::info!(ticket.id = id, "ticket unlisted through the client");
            return Ok(Redirect::to("/tickets/mine?unlisted=1").into_response());
        }
        Err(BackendError::Rejected { status, .. }) if status == StatusCode::CONFLICT => (
            status,
            "This ticket is reserved by a buyer or already sold, so it can't be unlisted. \
             If the buyer's order is cancelled or expires, you can unlist it then.",
        ),
        Err(BackendError::Rejected { status, .. }) if status == StatusCode::FORBIDDEN => {
            (status, "You can only unlist your own tickets.")
        }
        Err(err) => return Err(err.into()),
    };
    let page = listings_page(
        &state.backend,
        &visitor.session,
        user,
        &ListingsQuery::default(),
        None,
        Some(message.to_owned()),
    )
    .await?;
    Ok((status, page).into_response())
}
