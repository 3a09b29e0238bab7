use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use bson::oid::ObjectId;
use chrono::{SecondsFormat, Utc};
use common::auth::CurrentUser;
use common::change::{Decision, change};
use common::error::{ApiError, ApiResult, ErrorBody, ErrorItem};
use common::http::{ApiJson, ApiPath, ApiQuery};
use common::http::{not_found, parse_id};
use common::money::Cents;
use common::openapi::{JsonBodyErrors, SessionErrors, Unavailable};
use common::outbox::PendingEvent;
use common::paging::{PageQuery, link_header};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::{
    DETAIL_LIMITS, DetailsEdit, EditError, RemoveError, State as TicketState, Ticket, Title,
    capitalized, city_key, parse_starts_at, parse_text,
};
use crate::state::AppState;
use crate::store::{Search, Sort};

/// `{title, price}` and optional details; loose values so every bad field is reported at
/// once. On an edit, a detail left out keeps its value and `null` (or `""`) clears it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketBody {
    /// What is sold (1 to 120 characters).
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    title: Value,
    /// In currency units with at most two decimals, from 0.50 (the smallest card charge)
    /// to 1000000.
    #[serde(default)]
    #[schema(value_type = f64, required = true, minimum = 0.5, maximum = 1000000)]
    price: Value,
    /// Where the event takes place (at most 120 characters).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 120)]
    venue: Option<Value>,
    /// The venue's city (at most 80 characters).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 80)]
    city: Option<Value>,
    /// When the event starts (RFC 3339), in the future.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    starts_at: Option<Value>,
    /// At most 20 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 20)]
    section: Option<Value>,
    /// At most 20 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 20)]
    row: Option<Value>,
    /// At most 20 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 20)]
    seat: Option<Value>,
    /// Free text (at most 2000 characters).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    description: Option<Value>,
}

/// A field that is present, even as `null` (which `Option` alone reads as absent).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// A detail as sent: `None` when left out, `Some(None)` to clear it.
fn text_change(
    field: &str,
    value: Option<&Value>,
    max: usize,
    errors: &mut Vec<ErrorItem>,
) -> Option<Option<String>> {
    match value? {
        Value::Null => Some(None),
        Value::String(raw) => match parse_text(field, raw, max) {
            Ok(text) => Some(text),
            Err(message) => {
                errors.push(ErrorItem::field(field, message));
                None
            }
        },
        _ => {
            errors.push(ErrorItem::field(
                field,
                format!("{} must be text", capitalized(field)),
            ));
            None
        }
    }
}

impl TicketBody {
    fn validate(&self) -> ApiResult<(Title, Cents, DetailsEdit)> {
        let mut errors = Vec::new();
        let title = self
            .title
            .as_str()
            .ok_or("Title is required")
            .and_then(Title::parse)
            .map_err(|message| errors.push(ErrorItem::field("title", message)))
            .ok();
        let price = Cents::price_from_json(&self.price)
            .map_err(|message| errors.push(ErrorItem::field("price", message)))
            .ok();
        let texts = [
            &self.venue,
            &self.city,
            &self.section,
            &self.row,
            &self.seat,
            &self.description,
        ];
        let [venue, city, section, row, seat, description] = std::array::from_fn(|i| {
            let (field, max) = DETAIL_LIMITS[i];
            text_change(field, texts[i].as_ref(), max, &mut errors)
        });
        let starts_at = match &self.starts_at {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(raw)) if raw.trim().is_empty() => Some(None),
            Some(Value::String(raw)) => match parse_starts_at(raw, Utc::now()) {
                Ok(at) => Some(Some(at)),
                Err(message) => {
                    errors.push(ErrorItem::field("startsAt", message));
                    None
                }
            },
            Some(_) => {
                errors.push(ErrorItem::field(
                    "startsAt",
                    "StartsAt must be a date and time (RFC 3339)",
                ));
                None
            }
        };
        match (title, price) {
            (Some(title), Some(price)) if errors.is_empty() => Ok((
                title,
                price,
                DetailsEdit {
                    venue,
                    city,
                    starts_at,
                    section,
                    row,
                    seat,
                    description,
                },
            )),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// The public JSON form of a ticket: price in currency units.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Ticket)]
pub struct TicketView {
    id: String,
    title: String,
    /// In currency units, e.g. 19.99.
    price: Option<f64>,
    /// The seller.
    user_id: String,
    /// The order holding the ticket; null when it is free.
    order_id: Option<String>,
    /// `available`, `reserved`, `sold` or `removed` (taken off sale by its seller).
    #[schema(value_type = String, example = "available")]
    status: &'static str,
    version: i64,
    /// Where the event takes place.
    venue: Option<String>,
    city: Option<String>,
    /// When the event starts (RFC 3339, milliseconds, UTC).
    #[schema(format = DateTime)]
    starts_at: Option<String>,
    section: Option<String>,
    row: Option<String>,
    seat: Option<String>,
    description: Option<String>,
}

impl From<&Ticket> for TicketView {
    fn from(ticket: &Ticket) -> Self {
        Self {
            id: ticket.id.to_hex(),
            title: ticket.title.clone(),
            price: ticket.price().map(Cents::units),
            user_id: ticket.user_id.clone(),
            order_id: ticket.order_id.clone(),
            status: ticket.state().as_str(),
            version: ticket.version,
            venue: ticket.venue.clone(),
            city: ticket.city.clone(),
            starts_at: ticket
                .starts_at
                .map(|at| at.to_chrono().to_rfc3339_opts(SecondsFormat::Millis, true)),
            section: ticket.section.clone(),
            row: ticket.row.clone(),
            seat: ticket.seat.clone(),
            description: ticket.description.clone(),
        }
    }
}

/// `POST /api/tickets`
#[utoipa::path(
    post,
    path = "/api/tickets",
    tag = "tickets",
    summary = "List a ticket for sale",
    request_body = TicketBody,
    security(("session" = [])),
    responses(
        (status = 201, description = "Listed", body = TicketView),
        (status = 400, description = "Invalid title, price or detail (one entry per field), or a malformed body", body = ErrorBody),
        (status = 429, description = "More than `LISTINGS_PER_MINUTE` listings this minute (with `Retry-After`)", body = ErrorBody),
        SessionErrors, JsonBodyErrors, Unavailable,
    ),
)]
pub async fn create_ticket(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<TicketBody>,
) -> ApiResult<impl IntoResponse> {
    let (title, price, details) = body.validate()?;
    state.listings.check(&user.id)?;
    let ticket = Ticket::new(title, price, &user.id, details.apply(Default::default()));
    state.store.insert(&ticket).await?;
    tracing::info!(ticket.id = %ticket.id, user.id = user.id, "ticket listed");
    Ok((StatusCode::CREATED, Json(TicketView::from(&ticket))))
}

/// `GET /api/tickets`: search, sort and paging; strings, so that bad values get our error
/// shape (documented as what they must be).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// Words matched, case-insensitively, against the title, venue and city: a ticket
    /// matches when each word begins a word of them (at most 200 characters, 10 words).
    q: Option<String>,
    /// Only tickets in this city (case-insensitive, at most 80 characters).
    city: Option<String>,
    /// Only events starting at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Only events starting at or before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// The lowest price, in currency units (like `price`; 0 to 1000000).
    #[param(value_type = Option<f64>, minimum = 0, maximum = 1000000)]
    min_price: Option<String>,
    /// The highest price, in currency units (like `price`; 0 to 1000000).
    #[param(value_type = Option<f64>, minimum = 0, maximum = 1000000)]
    max_price: Option<String>,
    /// `newest` (default), `startsAt` (soonest first, undated last), `price` (cheapest
    /// first) or `-price` (dearest first).
    #[param(value_type = Option<String>, example = "price")]
    sort: Option<String>,
    /// How many per page, 1 to 100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// Where the page starts: the `cursor` of the previous page's `Link: <…>; rel="next"`
    /// (opaque; valid with the same `sort`).
    cursor: Option<String>,
}

pub const MAX_QUERY_CHARS: usize = 200;
pub const MAX_QUERY_WORDS: usize = 10;

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn price_param(field: &str, raw: &str) -> Result<i64, ErrorItem> {
    let invalid = || {
        ErrorItem::field(
            field,
            format!(
                "{} must be a number from 0 to 1000000 with at most 2 decimals",
                capitalized(field)
            ),
        )
    };
    let units: f64 = raw.parse().map_err(|_| invalid())?;
    if units == 0.0 {
        return Ok(0);
    }
    let number = serde_json::Number::from_f64(units).ok_or_else(invalid)?;
    Cents::from_json(&Value::Number(number))
        .map(Cents::get)
        .map_err(|_| invalid())
}

fn time_param(field: &str, raw: &str) -> Result<bson::DateTime, ErrorItem> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|at| bson::DateTime::from_millis(at.timestamp_millis()))
        .map_err(|_| {
            ErrorItem::field(
                field,
                format!(
                    "{} must be a date and time (RFC 3339, e.g. 2030-05-01T20:00:00Z)",
                    capitalized(field)
                ),
            )
        })
}

/// A cursor: the last sort key and id of the previous page (`<key>_<id>`), or the id alone
/// for `newest`.
fn cursor_param(raw: &str, sort: Sort) -> Option<(Option<i64>, ObjectId)> {
    match sort {
        Sort::Newest => raw.parse().ok().map(|id| (None, id)),
        _ => {
            let (key, id) = raw.split_once('_')?;
            Some((Some(key.parse().ok()?), id.parse().ok()?))
        }
    }
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl ListQuery {
    fn parse(&self) -> ApiResult<Search> {
        let mut errors = Vec::new();
        let page = PageQuery {
            limit: self.limit.clone(),
            cursor: None,
        }
        .parse();
        let limit = match page {
            Ok(page) => page.limit,
            Err(ApiError::Validation(items)) => {
                errors.extend(items);
                0
            }
            Err(_) => 0,
        };
        let mut words = Vec::new();
        if let Some(q) = given(&self.q) {
            words = crate::domain::words(q);
            words.sort_unstable();
            words.dedup();
            if q.chars().count() > MAX_QUERY_CHARS || words.len() > MAX_QUERY_WORDS {
                errors.push(ErrorItem::field(
                    "q",
                    format!(
                        "Q must be at most {MAX_QUERY_CHARS} characters and {MAX_QUERY_WORDS} words"
                    ),
                ));
            }
        }
        let city = given(&self.city).map(city_key);
        if city.as_ref().is_some_and(|c| c.chars().count() > 80) {
            errors.push(ErrorItem::field(
                "city",
                "City must be at most 80 characters",
            ));
        }
        let mut time = |field: &str, raw: &Option<String>| {
            given(raw).and_then(|raw| time_param(field, raw).map_err(|e| errors.push(e)).ok())
        };
        let (from, to) = (time("from", &self.from), time("to", &self.to));
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            errors.push(ErrorItem::field("to", "To must not be before from"));
        }
        let mut price = |field: &str, raw: &Option<String>| {
            given(raw).and_then(|raw| price_param(field, raw).map_err(|e| errors.push(e)).ok())
        };
        let (min_cents, max_cents) = (
            price("minPrice", &self.min_price),
            price("maxPrice", &self.max_price),
        );
        if let (Some(min), Some(max)) = (min_cents, max_cents)
            && min > max
        {
            errors.push(ErrorItem::field(
                "maxPrice",
                "MaxPrice must not be below minPrice",
            ));
        }
        let sort = match given(&self.sort) {
            None | Some("newest") => Some(Sort::Newest),
            Some("startsAt") => Some(Sort::StartsAt),
            Some("price") => Some(Sort::Price),
            Some("-price") => Some(Sort::PriceDescending),
            Some(_) => {
                errors.push(ErrorItem::field(
                    "sort",
                    "Sort must be newest, startsAt, price or -price",
                ));
                None
            }
        };
        let after = match (given(&self.cursor), sort) {
            (Some(raw), Some(sort)) => match cursor_param(raw, sort) {
                Some(after) => Some(after),
                None => {
                    errors.push(ErrorItem::field("cursor", "Cursor is not valid"));
                    None
                }
            },
            _ => None,
        };
        match sort {
            Some(sort) if errors.is_empty() => Ok(Search {
                words,
                city,
                from,
                to,
                min_cents,
                max_cents,
                sort,
                limit,
                after,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }

    /// The next page's link: these filters, the page's last key and id as the cursor.
    fn next_link(&self, limit: i64, sort: Sort, last: &Ticket) -> Option<HeaderValue> {
        let mut pairs: Vec<(&str, String)> = [
            ("q", &self.q),
            ("city", &self.city),
            ("from", &self.from),
            ("to", &self.to),
            ("minPrice", &self.min_price),
            ("maxPrice", &self.max_price),
            ("sort", &self.sort),
        ]
        .into_iter()
        .filter_map(|(name, value)| given(value).map(|v| (name, v.to_owned())))
        .collect();
        pairs.push(("limit", limit.to_string()));
        let cursor = match sort.key(last) {
            Some(key) => format!("{key}_{}", last.id.to_hex()),
            None => last.id.to_hex(),
        };
        pairs.push(("cursor", cursor));
        let query: Vec<String> = pairs
            .iter()
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect();
        HeaderValue::from_str(&format!("</api/tickets?{}>; rel=\"next\"", query.join("&"))).ok()
    }
}

/// `GET /api/tickets`: available tickets, searched and sorted, paged.
#[utoipa::path(
    get,
    path = "/api/tickets",
    tag = "tickets",
    summary = "Available tickets: search, filters and sorts (newest first by default)",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tickets; `Link: <…>; rel=\"next\"` (with the same filters) when there are more", body = Vec<TicketView>,
            headers(("Link" = String, description = "The next page, when there is one"))),
        (status = 400, description = "An invalid parameter (each one named)", body = ErrorBody),
        Unavailable,
    ),
)]
pub async fn list_tickets(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<impl IntoResponse> {
    let search = query.parse()?;
    let mut batch = state
        .store
        // A banned seller's tickets leave the listing at once, and come back on unban.
        .list_available(&search, &state.sessions.bans.snapshot())
        .await?;
    let more = batch.len() as i64 > search.limit;
    batch.truncate(search.limit as usize);
    let next = batch
        .last()
        .filter(|_| more)
        .and_then(|last| query.next_link(search.limit, search.sort, last));
    let headers = link_header(next);
    let body: Vec<TicketView> = batch.iter().map(TicketView::from).collect();
    Ok((headers, Json(body)))
}

/// `GET /api/tickets/{id}`: public.
#[utoipa::path(
    get,
    path = "/api/tickets/{id}",
    tag = "tickets",
    summary = "One ticket",
    params(("id" = String, Path, description = "The ticket's id")),
    responses(
        (status = 200, description = "The ticket", body = TicketView),
        (status = 400, description = "The id cannot be read (not UTF-8)", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        Unavailable,
    ),
)]
pub async fn show_ticket(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<TicketView>> {
    let ticket = state
        .store
        .find(parse_id(&id, "Ticket")?)
        .await?
        .ok_or_else(|| not_found("Ticket"))?;
    Ok(Json(TicketView::from(&ticket)))
}

/// `PUT /api/tickets/{id}`: checks 401, 400, 404, 403, 409 in that order.
#[utoipa::path(
    put,
    path = "/api/tickets/{id}",
    tag = "tickets",
    summary = "Edit a ticket of one's own",
    params(("id" = String, Path, description = "The ticket's id")),
    request_body = TicketBody,
    security(("session" = [])),
    responses(
        (status = 200, description = "Edited", body = TicketView),
        (status = 400, description = "Invalid title, price or detail (one entry per field), or a malformed body", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 409, description = "The ticket is reserved, sold or removed, or changed meanwhile", body = ErrorBody),
        SessionErrors, JsonBodyErrors, Unavailable,
    ),
)]
pub async fn update_ticket(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<TicketBody>,
) -> ApiResult<Json<TicketView>> {
    let (title, price, details) = body.validate()?;
    let id = parse_id(&id, "Ticket")?;
    let tickets = &state.store;
    let edited = change(
        || tickets.find(id),
        |ticket| match ticket.edit(&user.id, title.clone(), price, &details) {
            Ok(edited) => Decision::Write(edited.clone(), Ok(edited)),
            Err(err) => Decision::Keep(Err(err)),
        },
        |read, edited| async move {
            let event = PendingEvent::new(edited.updated_event());
            tickets
                .save_if_version(read.version, &edited, event, None)
                .await
        },
    )
    .await
    .map_err(|err| err.into_api_error("Ticket"))?
    .map_err(|err| match err {
        EditError::NotOwner => ApiError::Forbidden("Not the owner".into()),
        EditError::Reserved => ApiError::Conflict("Cannot edit a reserved ticket".into()),
        EditError::Sold => ApiError::Conflict("Cannot edit a sold ticket".into()),
        EditError::Removed => ApiError::Conflict("Cannot edit a removed ticket".into()),
    })?;
    Ok(Json(TicketView::from(&edited)))
}

/// `GET /api/tickets/mine`: `status` and paging.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MineQuery {
    /// Only tickets in this state: `available`, `reserved` or `sold` (default: all but
    /// removed ones).
    #[param(value_type = Option<String>, example = "sold")]
    status: Option<String>,
    /// How many per page, 1 to 100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// Where the page starts: the `cursor` of the previous page's `Link: <…>; rel="next"`.
    cursor: Option<String>,
}

/// A seller's ticket: with what it earned once sold.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MyTicket)]
pub struct MyTicketView {
    #[serde(flatten)]
    ticket: TicketView,
    /// What the sale earned, in currency units (the price the buyer's order reserved it
    /// at); null until sold.
    earned: Option<f64>,
}

/// `GET /api/tickets/mine`: the caller's tickets with their state, newest first, paged.
#[utoipa::path(
    get,
    path = "/api/tickets/mine",
    tag = "tickets",
    summary = "My tickets with their state, newest first",
    params(MineQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "A page of tickets; `Link: <…>; rel=\"next\"` when there are more", body = Vec<MyTicketView>,
            headers(("Link" = String, description = "The next page, when there is one"))),
        (status = 400, description = "Invalid `status`, `limit` or `cursor`", body = ErrorBody),
        SessionErrors, Unavailable,
    ),
)]
pub async fn my_tickets(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiQuery(query): ApiQuery<MineQuery>,
) -> ApiResult<impl IntoResponse> {
    let status = match query.status.as_deref() {
        None | Some("") => Ok(None),
        Some("available") => Ok(Some(TicketState::Available)),
        Some("reserved") => Ok(Some(TicketState::Reserved)),
        Some("sold") => Ok(Some(TicketState::Sold)),
        Some(_) => Err(ErrorItem::field(
            "status",
            "Status must be available, reserved or sold",
        )),
    };
    let page = PageQuery {
        limit: query.limit.clone(),
        cursor: query.cursor.clone(),
    }
    .parse();
    let (status, page) = match (status, page) {
        (Ok(status), Ok(page)) => (status, page),
        (status, page) => {
            let mut errors: Vec<ErrorItem> = status.err().into_iter().collect();
            if let Err(ApiError::Validation(items)) = page {
                errors.extend(items);
            }
            return Err(ApiError::Validation(errors));
        }
    };
    let batch = state.store.list_of_seller(&user.id, status, &page).await?;
    // The next page keeps the status filter.
    let path = match status {
        Some(status) => format!("/api/tickets/mine?status={}", status.as_str()),
        None => "/api/tickets/mine".to_owned(),
    };
    let (tickets, headers) = page.finish(batch, &path, |t| t.id);
    let body: Vec<MyTicketView> = tickets
        .iter()
        .map(|t| MyTicketView {
            ticket: TicketView::from(t),
            earned: t.sold_for_cents.and_then(Cents::new).map(Cents::units),
        })
        .collect();
    Ok((headers, Json(body)))
}

/// `DELETE /api/tickets/{id}`: take a ticket of one's own off sale.
#[utoipa::path(
    delete,
    path = "/api/tickets/{id}",
    tag = "tickets",
    summary = "Take a ticket of one's own off sale",
    description = "The ticket leaves the listing and can no longer be ordered \
        (`ticket.removed`). Removing it twice is a no-op.",
    params(("id" = String, Path, description = "The ticket's id")),
    security(("session" = [])),
    responses(
        (status = 204, description = "Off sale (or it already was)"),
        (status = 400, description = "The id cannot be read (not UTF-8)", body = ErrorBody),
        (status = 403, description = "Not the seller", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 409, description = "The ticket is reserved or sold, or changed meanwhile", body = ErrorBody),
        SessionErrors, Unavailable,
    ),
)]
pub async fn remove_ticket(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id, "Ticket")?;
    let tickets = &state.store;
    change(
        || tickets.find(id),
        |ticket| match ticket.remove(&user.id) {
            Ok(Some(removed)) => Decision::Write(removed, Ok(())),
            Ok(None) => Decision::Keep(Ok(())),
            Err(err) => Decision::Keep(Err(err)),
        },
        |read, removed| async move {
            let event = PendingEvent::new(removed.removed_event());
            tickets
                .save_if_version(read.version, &removed, event, None)
                .await
        },
    )
    .await
    .map_err(|err| err.into_api_error("Ticket"))?
    .map_err(|err| match err {
        RemoveError::NotOwner => ApiError::Forbidden("Not the owner".into()),
        RemoveError::Reserved => ApiError::Conflict("Cannot remove a reserved ticket".into()),
        RemoveError::Sold => ApiError::Conflict("Cannot remove a sold ticket".into()),
    })?;
    tracing::info!(ticket.id = %id, user.id = user.id, "ticket taken off sale");
    Ok(StatusCode::NO_CONTENT)
}
