//! `/orders` (mine) and `/orders/:id`: the countdown, paying, cancelling.

use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;

use crate::backend::{
    Backend, BackendError, Order, OrderStatus, Payment, Reply, Session, Upstream, User,
};
use crate::http::PageError;
use crate::http::forms::{HtmlForm, HtmlQuery, refusal, valid_id};
use crate::http::home::ListQuery;
use crate::http::views::{EventView, Layout, clock, money, page_href, when};
use crate::http::visitor::Visitor;
use crate::state::AppState;

/// The payment method of the simulated gateway's test-mode button.
const TEST_PAYMENT_METHOD: &str = "pm_card_visa";

/// After a payment succeeds the order turns complete when orders hears of it (an event):
/// the client waits this long for that before showing the order anyway.
const CONFIRMATION_WAIT: Duration = Duration::from_secs(5);

/// Payments learns of a new order through an event too: just after the purchase it may not
/// know the order yet. The client waits this long for it to catch up.
const PAYMENTS_CATCH_UP: Duration = Duration::from_secs(5);

pub struct OrderRow {
    href: String,
    title: String,
    price: String,
    place: Option<String>,
    when: Option<String>,
    status: &'static str,
    status_label: &'static str,
    /// "Refunded" (or "Refund pending") when a charge of the order was given back.
    refund_label: Option<&'static str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "orders.html")]
pub struct OrdersPage {
    layout: Layout,
    orders: Vec<OrderRow>,
    next_href: Option<String>,
    first_href: Option<String>,
}

/// `GET /orders`
pub async fn index(
    State(state): State<AppState>,
    visitor: Visitor,
    HtmlQuery(query): HtmlQuery<ListQuery>,
) -> Result<OrdersPage, PageError> {
    let user = visitor.require("/orders")?;
    let page = query.page();
    let reply = state.backend.list_orders(&visitor.session, &page).await?;
    let orders = reply
        .body
        .into_iter()
        .map(|o| OrderRow {
            place: EventView::new(&o.ticket.details).place(),
            when: o.ticket.details.starts_at.map(when),
            href: format!("/orders/{}", o.id),
            title: o.ticket.title,
            price: money(o.ticket.price),
            status: o.status.as_str(),
            status_label: o.status.label(),
            refund_label: o.refund.as_ref().map(|r| r.label()),
        })
        .collect();
    Ok(OrdersPage {
        layout: Layout::new("My orders", Some(user)),
        orders,
        next_href: reply
            .next_cursor
            .map(|cursor| page_href("/orders", &cursor, page.limit)),
        first_href: page.cursor.is_some().then(|| "/orders".to_owned()),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "order.html")]
pub struct OrderPage {
    layout: Layout,
    id: String,
    title: String,
    price: String,
    ticket_href: String,
    event: EventView,
    /// A complete order's receipt.
    receipt: Option<Receipt>,
    status: &'static str,
    status_label: &'static str,
    /// RFC 3339, for `<time datetime>`.
    expires_at: String,
    /// `18:34:05 UTC`; the countdown script shows it in the visitor's time zone.
    expires_label: String,
    seconds_left: i64,
    clock: String,
    /// Created, and still within its window: the pay form and the countdown.
    payable: bool,
    /// Created, but its window has passed (the expiry event has not landed yet).
    expired: bool,
    /// Paid a moment ago; orders has not recorded it yet.
    confirming: bool,
    /// `Refunded 12.34 USD` when a charge of the order was given back.
    refund: Option<String>,
    error: Option<String>,
    stripe_key: Option<String>,
}

impl OrderPage {
    fn new(order: Order, user: User, stripe_key: Option<&str>, paid: bool) -> Self {
        let now = Utc::now();
        let seconds_left = (order.expires_at - now).num_seconds().max(0);
        let created = order.status == OrderStatus::Created;
        let confirming = paid && created;
        let payable = order.is_payable(now) && !confirming;
        let stripe_key = stripe_key.filter(|_| payable).map(str::to_owned);
        let mut layout = Layout::new(format!("Order: {}", order.ticket.title), Some(user));
        layout.stripe_key = stripe_key.clone();
        layout.countdown = payable;
        layout.refresh_seconds = confirming.then_some(2);
        let event = EventView::new(&order.ticket.details);
        let receipt = (order.status == OrderStatus::Complete).then(|| Receipt {
            place: event.place(),
            when: event.when.as_ref().map(|(label, _)| label.clone()),
            seat: event.seat.clone(),
            ordered_on: ordered_on(&order.id),
        });
        Self {
            layout,
            event,
            receipt,
            ticket_href: format!("/tickets/{}", order.ticket.id),
            status: order.status.as_str(),
            status_label: if confirming {
                "Confirming payment"
            } else {
                order.status.label()
            },
            expires_at: order.expires_at.to_rfc3339(),
            expires_label: order.expires_at.format("%H:%M:%S UTC").to_string(),
            seconds_left,
            clock: clock(seconds_left),
            payable,
            expired: created && !confirming && order.expires_at <= now,
            confirming,
            refund: order.refund.as_ref().map(|r| r.summary()),
            error: None,
            stripe_key,
            id: order.id,
            title: order.ticket.title,
            price: money(order.ticket.price),
        }
    }
}

/// What a complete order's receipt shows besides the title, price and order id.
pub struct Receipt {
    place: Option<String>,
    when: Option<String>,
    seat: Option<String>,
    /// When the order was placed (the time in its id): `Fri 1 May 2030, 20:00 UTC`.
    ordered_on: Option<String>,
}

/// The creation time a Mongo ObjectId carries (its first 4 bytes, seconds since the epoch).
fn ordered_on(id: &str) -> Option<String> {
    let seconds = i64::from_str_radix(id.get(..8)?, 16).ok()?;
    chrono::DateTime::from_timestamp(seconds, 0).map(when)
}

#[derive(Debug, Default, Deserialize)]
pub struct OrderQuery {
    paid: Option<String>,
}

/// `GET /orders/:id`
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    HtmlQuery(query): HtmlQuery<OrderQuery>,
) -> Result<OrderPage, PageError> {
    let id = valid_id(&id)?;
    let user = visitor.require(&format!("/orders/{id}"))?;
    let order = state.backend.get_order(&visitor.session, id).await?.body;
    Ok(OrderPage::new(
        order,
        user,
        state.stripe_key.as_deref(),
        query.paid.is_some(),
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct PayForm {
    #[serde(default, rename = "paymentMethod")]
    payment_method: String,
}

/// `POST /orders/:id/pay`: the form of the simulated gateway (and the no-JavaScript path).
pub async fn pay(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    HtmlForm(form): HtmlForm<PayForm>,
) -> Result<Response, PageError> {
    let id = valid_id(&id)?;
    let user = visitor.require(&format!("/orders/{id}"))?;
    let method = match form.payment_method.trim() {
        "" => TEST_PAYMENT_METHOD,
        method => method,
    };
    let message = match pay_once_known(&state.backend, &visitor.session, id, method).await? {
        Ok(reply) => match reply.body {
            Payment::Succeeded => {
                tracing::info!(order.id = id, "order paid through the client");
                let done = wait_until_settled(&state.backend, &visitor.session, id).await;
                let to = if done {
                    format!("/orders/{id}")
                } else {
                    format!("/orders/{id}?paid=1")
                };
                return Ok(Redirect::to(&to).into_response());
            }
            Payment::RequiresAction { .. } => (
                StatusCode::ACCEPTED,
                "Your bank asks you to confirm this payment, which needs JavaScript. \
                 Please enable it and try again."
                    .to_owned(),
            ),
        },
        Err(err) => {
            let (status, errors) = refusal(err)?;
            let message = errors
                .into_iter()
                .next()
                .map(|e| e.message)
                .unwrap_or_else(|| "The payment did not go through.".into());
            (status, message)
        }
    };
    order_again(&state, &visitor.session, id, user, message).await
}

/// `POST /orders/:id/cancel`
pub async fn cancel(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = valid_id(&id)?;
    let user = visitor.require(&format!("/orders/{id}"))?;
    match state.backend.cancel_order(&visitor.session, id).await {
        Ok(_) => Ok(Redirect::to(&format!("/orders/{id}")).into_response()),
        Err(err) => {
            let (status, errors) = refusal(err)?;
            let message = errors
                .into_iter()
                .next()
                .map(|e| e.message)
                .unwrap_or_else(|| "This order can't be cancelled.".into());
            order_again(&state, &visitor.session, id, user, (status, message)).await
        }
    }
}

/// The order page again, with what went wrong above it.
async fn order_again(
    state: &AppState,
    session: &Session,
    id: &str,
    user: User,
    (status, message): (StatusCode, String),
) -> Result<Response, PageError> {
    let order = state.backend.get_order(session, id).await?.body;
    let mut page = OrderPage::new(order, user, state.stripe_key.as_deref(), false);
    page.error = Some(message);
    Ok((status, page).into_response())
}

/// Pays, waiting for payments to hear of a fresh order: its 404 for an order that orders
/// knows means "not yet" (nothing was charged), so the payment is tried again for at most
/// [`PAYMENTS_CATCH_UP`]. An order that orders does not know either is a page not found;
/// one payments still does not know afterwards is a refusal shown on the order page.
async fn pay_once_known(
    backend: &Backend,
    session: &Session,
    id: &str,
    method: &str,
) -> Result<Result<Reply<Payment>, BackendError>, PageError> {
    let deadline = tokio::time::Instant::now() + PAYMENTS_CATCH_UP;
    let mut pause = Duration::from_millis(100);
    let mut order_checked = false;
    loop {
        let result = backend.pay(session, id, method).await;
        let unknown = matches!(
            &result,
            Err(BackendError::Rejected { status, .. }) if *status == StatusCode::NOT_FOUND
        );
        if !unknown {
            return Ok(result);
        }
        if !order_checked {
            // A 404 page when the order does not exist at all (or the 403 when not theirs).
            backend.get_order(session, id).await?;
            order_checked = true;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                order.id = id,
                "payments has not heard of the order yet; asking the buyer to retry"
            );
            return Ok(Err(BackendError::Rejected {
                service: Upstream::Payments,
                status: StatusCode::CONFLICT,
                errors: vec![common::error::ErrorItem::message(
                    "Payments has not received this order yet. Please try again in a moment.",
                )],
            }));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Polls the order until it is no longer awaiting payment, for at most
/// [`CONFIRMATION_WAIT`]. True when it settled.
async fn wait_until_settled(backend: &Backend, session: &Session, id: &str) -> bool {
    let deadline = tokio::time::Instant::now() + CONFIRMATION_WAIT;
    let mut pause = Duration::from_millis(50);
    loop {
        match backend.get_order(session, id).await {
            Ok(reply) if reply.body.status != OrderStatus::Created => return true,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, order.id = id, "cannot read the order after paying");
                return false;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}
