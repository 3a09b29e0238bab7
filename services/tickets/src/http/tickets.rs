use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use common::auth::CurrentUser;
use common::change::{Decision, change};
use common::error::{ApiError, ApiResult, ErrorItem};
use common::http::{ApiJson, ApiQuery};
use common::money::Cents;
use common::mongo::{not_found, parse_id};
use common::outbox::PendingEvent;
use common::paging::PageQuery;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::domain::{EditError, Ticket, Title};

/// `{title, price}`; loose values so every bad field is reported at once.
#[derive(Deserialize)]
pub struct TicketBody {
    #[serde(default)]
    title: Value,
    #[serde(default)]
    price: Value,
}

impl TicketBody {
    fn validate(&self) -> ApiResult<(Title, Cents)> {
        let title = self
            .title
            .as_str()
            .ok_or("Title is required")
            .and_then(Title::parse);
        let price = Cents::price_from_json(&self.price);
        match (title, price) {
            (Ok(title), Ok(price)) => Ok((title, price)),
            (title, price) => {
                let mut errors = Vec::new();
                if let Err(message) = title {
                    errors.push(ErrorItem::field("title", message));
                }
                if let Err(message) = price {
                    errors.push(ErrorItem::field("price", message));
                }
                Err(ApiError::Validation(errors))
            }
        }
    }
}

/// The public JSON form of a ticket: price in currency units.
fn ticket_json(ticket: &Ticket) -> Value {
    json!({
        "id": ticket.id.to_hex(),
        "title": ticket.title,
        "price": ticket.price().map(Cents::to_json),
        "userId": ticket.user_id,
        "orderId": ticket.order_id,
        "version": ticket.version,
    })
}

/// `POST /api/tickets`
pub async fn create_ticket(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<TicketBody>,
) -> ApiResult<impl IntoResponse> {
    let (title, price) = body.validate()?;
    state.listings.check(&user.id)?;
    let ticket = Ticket::new(title, price, &user.id);
    state
        .tickets
        .insert(&ticket)
        .await
        .map_err(ApiError::Internal)?;
    tracing::info!(ticket.id = %ticket.id, user.id = user.id, "ticket listed");
    Ok((StatusCode::CREATED, Json(ticket_json(&ticket))))
}

/// `GET /api/tickets`: available tickets, newest first, paged.
pub async fn list_tickets(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<impl IntoResponse> {
    let page = query.parse()?;
    let batch = state
        .tickets
        // A banned seller's tickets leave the listing at once, and come back on unban.
        .list_available(&page, &state.sessions.bans.snapshot())
        .await
        .map_err(ApiError::internal)?;
    let (tickets, next) = page.finish(batch, "/api/tickets", |t| t.id);
    let mut headers = HeaderMap::new();
    if let Some(link) = next {
        headers.insert(header::LINK, link);
    }
    let body: Vec<Value> = tickets.iter().map(ticket_json).collect();
    Ok((headers, Json(body)))
}

/// `GET /api/tickets/{id}`: public.
pub async fn show_ticket(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let ticket = state
        .tickets
        .find(parse_id(&id, "Ticket")?)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| not_found("Ticket"))?;
    Ok(Json(ticket_json(&ticket)))
}

/// `PUT /api/tickets/{id}`: checks 401, 400, 404, 403, 409 in that order.
pub async fn update_ticket(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TicketBody>,
) -> ApiResult<Json<Value>> {
    let (title, price) = body.validate()?;
    let id = parse_id(&id, "Ticket")?;
    let tickets = &state.tickets;
    let edited = change(
        || tickets.find(id),
        |ticket| match ticket.edit(&user.id, title.clone(), price) {
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
    })?;
    Ok(Json(ticket_json(&edited)))
}
