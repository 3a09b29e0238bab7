//! `/`: the tickets for sale, searched, filtered and sorted by a GET form (no JavaScript
//! needed), a page at a time; the next page's link keeps the filters.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::backend::{BackendError, PageRequest, TicketSearch};
use crate::http::PageError;
use crate::http::error::encode;
use crate::http::forms::{FormErrors, HtmlQuery};
use crate::http::views::{EventView, Layout, money};
use crate::http::visitor::Visitor;
use crate::state::AppState;

/// `?limit=&cursor=`; values that make no sense are ignored rather than refused.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

impl ListQuery {
    pub fn new(limit: Option<String>, cursor: Option<String>) -> Self {
        Self { limit, cursor }
    }

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
    pub place: Option<String>,
    /// `Fri 1 May 2030, 20:00 UTC` and RFC 3339.
    pub when: Option<(String, String)>,
}

/// The home page's filters, as typed: the form shows them again and the page links keep
/// them. Dates are days (`from` from its start, `to` to its end, in UTC).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HomeQuery {
    q: String,
    city: String,
    from: String,
    to: String,
    #[serde(rename = "minPrice")]
    min_price: String,
    #[serde(rename = "maxPrice")]
    max_price: String,
    sort: String,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The sort choices: value and label.
const SORTS: &[(&str, &str)] = &[
    ("newest", "Newest first"),
    ("startsAt", "Soonest event"),
    ("price", "Lowest price"),
    ("-price", "Highest price"),
];

pub struct SortOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

impl HomeQuery {
    fn page(&self) -> PageRequest {
        ListQuery {
            limit: self.limit.clone(),
            cursor: self.cursor.clone(),
        }
        .page()
    }

    /// The search for the tickets service; a date that is not one goes next to its field.
    fn search(&self, errors: &mut FormErrors) -> TicketSearch {
        let mut day = |field: &str, raw: &str, time: &str| {
            let raw = raw.trim();
            if raw.is_empty() {
                return None;
            }
            match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
                Ok(date) => Some(format!("{date}T{time}Z")),
                Err(_) => {
                    errors.add_field(field, "Enter a date, such as 2030-05-01");
                    None
                }
            }
        };
        let from = day("from", &self.from, "00:00:00");
        let to = day("to", &self.to, "23:59:59.999");
        TicketSearch {
            q: self.q.clone(),
            city: self.city.clone(),
            from,
            to,
            min_price: self.min_price.trim().trim_start_matches('$').to_owned(),
            max_price: self.max_price.trim().trim_start_matches('$').to_owned(),
            sort: self.sort.clone(),
        }
    }

    /// `q=…&city=…` of the filters given, for the page links.
    fn filters(&self) -> Vec<(&'static str, &str)> {
        [
            ("q", &self.q),
            ("city", &self.city),
            ("from", &self.from),
            ("to", &self.to),
            ("minPrice", &self.min_price),
            ("maxPrice", &self.max_price),
            ("sort", &self.sort),
        ]
        .into_iter()
        .map(|(name, value)| (name, value.trim()))
        .filter(|(_, value)| !value.is_empty())
        .collect()
    }

    fn href(&self, limit: Option<u32>, cursor: Option<&str>) -> String {
        let mut pairs: Vec<String> = self
            .filters()
            .into_iter()
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect();
        if let Some(limit) = limit {
            pairs.push(format!("limit={limit}"));
        }
        if let Some(cursor) = cursor {
            pairs.push(format!("cursor={}", encode(cursor)));
        }
        if pairs.is_empty() {
            "/".to_owned()
        } else {
            format!("/?{}", pairs.join("&"))
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    layout: Layout,
    tickets: Vec<TicketRow>,
    next_href: Option<String>,
    first_href: Option<String>,
    q: String,
    city: String,
    from: String,
    to: String,
    min_price: String,
    max_price: String,
    sorts: Vec<SortOption>,
    /// Any filter given: the empty state says "no match" rather than "nothing for sale".
    filtered: bool,
    errors: FormErrors,
}

/// The search form's field names the service may name in a 400.
const FILTERS: &[&str] = &["q", "city", "from", "to", "minPrice", "maxPrice", "sort"];

/// `GET /`
pub async fn index(
    State(state): State<AppState>,
    visitor: Visitor,
    HtmlQuery(query): HtmlQuery<HomeQuery>,
) -> Result<Response, PageError> {
    let page = query.page();
    let mut errors = FormErrors::default();
    let search = query.search(&mut errors);
    let mut status = StatusCode::OK;
    let mut tickets = Vec::new();
    let mut next_href = None;
    if errors.is_empty() {
        match state.backend.list_tickets(&search, &page).await {
            Ok(reply) => {
                tickets = reply
                    .body
                    .into_iter()
                    .map(|t| {
                        let event = EventView::new(&t.details);
                        TicketRow {
                            href: format!("/tickets/{}", t.id),
                            title: t.title,
                            price: money(t.price),
                            place: event.place(),
                            when: event.when,
                        }
                    })
                    .collect();
                next_href = reply
                    .next_cursor
                    .map(|cursor| query.href(page.limit, Some(&cursor)));
            }
            // A filter the service refuses: its message next to the field.
            Err(BackendError::Rejected {
                status: StatusCode::BAD_REQUEST,
                errors: items,
                ..
            }) => {
                errors = FormErrors::from_service(&items, FILTERS, None);
            }
            Err(err) => return Err(err.into()),
        }
    }
    if !errors.is_empty() {
        status = StatusCode::BAD_REQUEST;
    }
    let sort = query.sort.trim();
    let sort = if sort.is_empty() { "newest" } else { sort };
    let page = HomePage {
        layout: Layout::new("Tickets for sale", visitor.user),
        tickets,
        next_href,
        first_href: page.cursor.is_some().then(|| query.href(page.limit, None)),
        filtered: !query.filters().iter().all(|(name, _)| *name == "sort"),
        sorts: SORTS
            .iter()
            .map(|&(value, label)| SortOption {
                value,
                label,
                selected: value == sort,
            })
            .collect(),
        q: query.q,
        city: query.city,
        from: query.from,
        to: query.to,
        min_price: query.min_price,
        max_price: query.max_price,
        errors,
    };
    Ok((status, page).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_keep_the_filters() {
        let query = HomeQuery {
            q: "jazz night".into(),
            city: "Paris".into(),
            min_price: "10".into(),
            sort: "-price".into(),
            ..HomeQuery::default()
        };
        assert_eq!(
            query.href(Some(2), Some("1500_abc")),
            "/?q=jazz%20night&city=Paris&minPrice=10&sort=-price&limit=2&cursor=1500_abc"
        );
        assert_eq!(HomeQuery::default().href(None, None), "/");
        let mut errors = FormErrors::default();
        let search = HomeQuery {
            from: "2030-05-01".into(),
            to: "May".into(),
            ..HomeQuery::default()
        }
        .search(&mut errors);
        assert_eq!(search.from.as_deref(), Some("2030-05-01T00:00:00Z"));
        assert!(errors.field("to").is_some());
    }
}
