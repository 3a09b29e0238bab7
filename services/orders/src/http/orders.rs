use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use bson::oid::ObjectId;
use chrono::{SecondsFormat, Utc};
use common::auth::CurrentUser;
use common::error::{ApiError, ApiResult, ErrorBody};
use common::http::{ApiJson, ApiPath, ApiQuery, not_found, parse_id};
use common::money::Cents;
use common::mongo::Inserted;
use common::openapi::{JsonBodyErrors, SessionErrors, Unavailable};
use common::paging::PageQuery;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::{Order, TicketSnapshot};
use crate::state::AppState;
use crate::transitions::Cancelled;

#[derive(Deserialize, ToSchema)]
pub struct NewOrderBody {
    /// The ticket to reserve.
    #[serde(default, rename = "ticketId")]
    #[schema(value_type = String, required = true)]
    ticket_id: Value,
}

/// The public JSON form of an order.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Order)]
pub struct OrderView {
    id: String,
    /// `created` (reserved, awaiting payment), `cancelled` or `complete`.
    #[schema(value_type = String, example = "created")]
    status: &'static str,
    /// The payment deadline (RFC 3339, milliseconds, UTC).
    #[schema(format = DateTime)]
    expires_at: String,
    /// The buyer.
    user_id: String,
    version: i64,
    ticket: OrderTicketView,
    /// Null, or the money given back for charges that could not complete the order.
    refund: Option<RefundView>,
}

/// The ticket as the order reserved it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OrderTicket)]
pub struct OrderTicketView {
    id: String,
    title: String,
    /// In currency units, e.g. 19.99.
    price: Option<f64>,
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

/// What was given back for an order (every refunded charge of it, summed).
#[derive(Serialize, ToSchema)]
#[schema(as = OrderRefund)]
pub struct RefundView {
    /// In currency units.
    amount: Option<f64>,
    currency: String,
    /// Always `succeeded`: a refund shows here once payments confirms it.
    #[schema(value_type = String, example = "succeeded")]
    status: &'static str,
}

impl From<&Order> for OrderView {
    fn from(order: &Order) -> Self {
        let refund = order.refunds.first().map(|first| {
            let cents: i64 = order.refunds.iter().map(|r| r.amount_cents).sum();
            RefundView {
                amount: Cents::new(cents).map(Cents::units),
                currency: first.currency.clone(),
                status: "succeeded",
            }
        });
        let details = &order.ticket.details;
        Self {
            id: order.id.to_hex(),
            status: order.status.as_str(),
            expires_at: order
                .expires_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            user_id: order.user_id.clone(),
            version: order.version,
            ticket: OrderTicketView {
                id: order.ticket.id.clone(),
                title: order.ticket.title.clone(),
                price: Cents::new(order.ticket.price_cents).map(Cents::units),
                venue: details.venue.clone(),
                city: details.city.clone(),
                starts_at: details
                    .starts_at
                    .map(|at| at.to_rfc3339_opts(SecondsFormat::Millis, true)),
                section: details.section.clone(),
                row: details.row.clone(),
                seat: details.seat.clone(),
                description: details.description.clone(),
            },
            refund,
        }
    }
}

/// `POST /api/orders`: reserve a ticket.
#[utoipa::path(
    post,
    path = "/api/orders",
    tag = "orders",
    summary = "Reserve a ticket: an order awaiting payment until `expiresAt`",
    request_body = NewOrderBody,
    security(("session" = [])),
    responses(
        (status = 201, description = "Reserved", body = OrderView),
        (status = 400, description = "Not a valid ticket id, one's own ticket, or a malformed body", body = ErrorBody),
        (status = 404, description = "No such ticket, or its seller took it off sale", body = ErrorBody),
        (status = 409, description = "The ticket is already reserved", body = ErrorBody),
        (status = 429, description = "`MAX_ACTIVE_ORDERS_PER_USER` unpaid orders already (with `Retry-After`)", body = ErrorBody),
        SessionErrors, JsonBodyErrors, Unavailable,
    ),
)]
pub async fn create_order(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<NewOrderBody>,
) -> ApiResult<impl IntoResponse> {
    let ticket_id = body
        .ticket_id
        .as_str()
        .and_then(|raw| raw.parse::<ObjectId>().ok())
        .ok_or_else(|| ApiError::field("ticketId", "ticketId must be a valid ticket id"))?;
    let ticket = state
        .store
        .find_ticket(ticket_id)
        .await?
        // A ticket taken off sale by its seller is gone for buyers.
        .filter(|ticket| !ticket.removed)
        .ok_or_else(|| not_found("Ticket"))?;
    if ticket.user_id == user.id {
        return Err(ApiError::BadRequest(
            "You cannot buy your own ticket".into(),
        ));
    }
    let snapshot = TicketSnapshot {
        id: ticket.id.to_hex(),
        title: ticket.title,
        price_cents: ticket.price_cents,
        details: Box::new(ticket.details),
    };
    let window = chrono::Duration::from_std(state.expiration_window).map_err(ApiError::internal)?;
    let order = Order::place(&user.id, snapshot, Utc::now() + window);
    if !state
        .quota
        .claim(&user.id, order.id)
        .await
        .map_err(|err| err.into_api_error("Buyer"))?
    {
        return Err(ApiError::TooManyRequests(
            format!(
                "You already have {} unpaid orders; pay for or cancel one first",
                state.quota.max()
            ),
            std::time::Duration::from_secs(60),
        ));
    }
    match insert(&state, &order).await {
        Ok(()) => {
            metrics::counter!("orders_total", "status" => order.status.as_str()).increment(1);
            tracing::info!(order.id = %order.id, ticket.id = order.ticket.id, "ticket reserved");
            Ok((StatusCode::CREATED, Json(OrderView::from(&order))))
        }
        Err(err) => {
            // Not placed: give the place back now rather than in a minute.
            if let Err(release) = state.quota.release(&user.id, order.id).await {
                tracing::warn!(error = %release, "could not give back an order place");
            }
            Err(err)
        }
    }
}

/// Inserts the order, unless another order holds its ticket (409). A holder past its
/// deadline and grace whose expiry has not been processed yet is released here, once,
/// rather than turning the buyer away.
async fn insert(state: &AppState, order: &Order) -> ApiResult<()> {
    for attempt in 0..2 {
        // A duplicate: another active order holds the ticket.
        match state.store.insert(order).await? {
            Inserted::New => return Ok(()),
            Inserted::Duplicate
                if attempt == 0
                    && state
                        .transitions
                        .free_lapsed_holder(&order.ticket.id)
                        .await
                        .map_err(|err| err.into_api_error("Order"))? => {}
            Inserted::Duplicate => break,
        }
    }
    Err(ApiError::Conflict("Ticket is already reserved".into()))
}

/// `GET /api/orders`: the caller's orders, newest first, paged.
#[utoipa::path(
    get,
    path = "/api/orders",
    tag = "orders",
    summary = "My orders, newest first",
    params(PageQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "A page of orders; `Link: <…>; rel=\"next\"` when there are more", body = Vec<OrderView>,
            headers(("Link" = String, description = "The next page, when there is one"))),
        (status = 400, description = "Invalid `limit` or `cursor`", body = ErrorBody),
        SessionErrors, Unavailable,
    ),
)]
pub async fn list_orders(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<impl IntoResponse> {
    let page = query.parse()?;
    let batch = state.store.list_for_user(&user.id, &page).await?;
    let (orders, headers) = page.finish(batch, "/api/orders", |o| o.id);
    Ok((
        headers,
        Json(orders.iter().map(OrderView::from).collect::<Vec<_>>()),
    ))
}

/// The order `id` if `user_id` placed it (the id parsed by the caller, so the two
/// cannot be swapped).
async fn own_order(state: &AppState, user_id: &str, id: ObjectId) -> ApiResult<Order> {
    let order = state
        .store
        .find(id)
        .await?
        .ok_or_else(|| not_found("Order"))?;
    if order.user_id != user_id {
        return Err(ApiError::Forbidden("Not your order".into()));
    }
    Ok(order)
}

/// `GET /api/orders/{id}`
#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    tag = "orders",
    summary = "One of my orders",
    params(("id" = String, Path, description = "The order's id")),
    security(("session" = [])),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 400, description = "The id cannot be read (not UTF-8)", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        SessionErrors, Unavailable,
    ),
)]
pub async fn show_order(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(OrderView::from(
        &own_order(&state, &user.id, parse_id(&id, "Order")?).await?,
    )))
}

/// `DELETE /api/orders/{id}`: cancel an unpaid order; cancelling twice is a no-op.
#[utoipa::path(
    delete,
    path = "/api/orders/{id}",
    tag = "orders",
    summary = "Cancel one of my unpaid orders, freeing its ticket",
    params(("id" = String, Path, description = "The order's id")),
    security(("session" = [])),
    responses(
        (status = 204, description = "Cancelled (or it already was)"),
        (status = 400, description = "The id cannot be read (not UTF-8)", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "The order is complete (paid)", body = ErrorBody),
        SessionErrors, Unavailable,
    ),
)]
pub async fn cancel_order(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let cancelled = state
        .transitions
        .cancel(
            parse_id(&id, "Order")?,
            &user.id,
            common::events::CancelReason::Buyer,
        )
        .await
        .map_err(|err| err.into_api_error("Order"))?;
    match cancelled {
        Cancelled::Done => {
            tracing::info!(order.id = id, "order cancelled by its buyer");
            Ok(StatusCode::NO_CONTENT)
        }
        Cancelled::NotYours => Err(ApiError::Forbidden("Not your order".into())),
        Cancelled::Completed => Err(ApiError::Conflict("Cannot cancel a completed order".into())),
    }
}
