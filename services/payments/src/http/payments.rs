use axum::Json;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use bson::oid::ObjectId;
use bytes::Bytes;
use chrono::Utc;
use common::auth::CurrentUser;
use common::error::{ApiError, ApiResult, ErrorBody, ErrorItem};
use common::http::ApiJson;
use common::http::not_found;
use common::openapi::{JsonBodyErrors, SessionErrors, Unavailable};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::{IntentId, OrderId, OrderStatus};
use crate::gateway::{Charge, ChargeOutcome, GatewayError};
use crate::replica::OrderReplica;
use crate::state::AppState;
use crate::store::Payment;
use crate::webhook;

/// Stripe ids are short; the bound keeps the idempotency key under Stripe's 255 bytes.
const MAX_PAYMENT_METHOD_LEN: usize = 100;

/// How long one request may hold an order's charging slot (longer than the Stripe timeout).
const CHARGE_SLOT: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Deserialize, ToSchema)]
pub struct PaymentBody {
    /// The order to pay, one the caller placed.
    #[serde(default, rename = "orderId")]
    #[schema(value_type = String, required = true)]
    order_id: Value,
    /// A Stripe payment method id such as `pm_card_visa` (letters, digits and `_`, at
    /// most 100).
    #[serde(default, rename = "paymentMethod")]
    #[schema(value_type = String, required = true, example = "pm_card_visa")]
    payment_method: Value,
}

impl PaymentBody {
    fn validate(&self) -> ApiResult<(ObjectId, String)> {
        let order_id = self
            .order_id
            .as_str()
            .and_then(|raw| raw.parse::<ObjectId>().ok());
        let method = self.payment_method.as_str().map(str::trim).filter(|m| {
            !m.is_empty()
                && m.len() <= MAX_PAYMENT_METHOD_LEN
                && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        let mut errors = Vec::new();
        if order_id.is_none() {
            errors.push(ErrorItem::field(
                "orderId",
                "orderId must be a valid order id",
            ));
        }
        if method.is_none() {
            errors.push(ErrorItem::field(
                "paymentMethod",
                "paymentMethod must be a payment method id such as pm_card_visa",
            ));
        }
        match (order_id, method) {
            (Some(order_id), Some(method)) => Ok((order_id, method.to_owned())),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// A charge that succeeded.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PaymentCreated)]
pub struct PaymentCreatedView {
    id: String,
    order_id: String,
    /// Stripe's PaymentIntent id (`pi_…`).
    stripe_id: String,
    /// Always `succeeded`.
    #[schema(value_type = String, example = "succeeded")]
    status: &'static str,
}

impl From<&Payment> for PaymentCreatedView {
    fn from(payment: &Payment) -> Self {
        Self {
            id: payment.id.to_hex(),
            order_id: payment.order_id.to_string(),
            stripe_id: payment.stripe_id.to_string(),
            status: "succeeded",
        }
    }
}

/// The card needs the buyer's confirmation (3-D Secure): finish it with Stripe.js and
/// this secret; Stripe's webhook completes the payment.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequiresAction {
    /// Always `requires_action`.
    #[schema(value_type = String, example = "requires_action")]
    status: &'static str,
    client_secret: String,
}

/// What `POST /api/payments` answers on success: 201 or 202.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Charged {
    Created(PaymentCreatedView),
    RequiresAction(RequiresAction),
}

/// The webhook's answer to Stripe.
#[derive(Serialize, ToSchema)]
pub struct WebhookReceipt {
    /// Always true.
    received: bool,
    /// Whether the event changed or woke anything here.
    handled: bool,
}

/// `POST /api/payments`: charge an order the caller placed.
#[utoipa::path(
    post,
    path = "/api/payments",
    tag = "payments",
    summary = "Pay for one of my orders",
    request_body = PaymentBody,
    security(("session" = [])),
    responses(
        (status = 201, description = "Charged: the order completes", body = PaymentCreatedView),
        (status = 202, description = "The card needs the buyer's confirmation", body = RequiresAction),
        (status = 400, description = "Invalid order id or payment method (one entry per field), a malformed body, or a request the provider refused", body = ErrorBody),
        (status = 402, description = "The card was declined", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "The order is cancelled, expired, already paid, or being paid", body = ErrorBody),
        SessionErrors, JsonBodyErrors, Unavailable,
    ),
)]
pub async fn create_payment(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<PaymentBody>,
) -> ApiResult<impl IntoResponse> {
    let (order_id, payment_method) = body.validate()?;
    let order = state
        .store
        .find_order(order_id)
        .await?
        .ok_or_else(|| not_found("Order"))?;
    if order.user_id != user.id {
        return Err(ApiError::Forbidden("Not your order".into()));
    }
    check_payable(&state, &order).await?;
    if !state
        .store
        .claim_charge(order_id, Utc::now() + CHARGE_SLOT)
        .await?
    {
        return Err(ApiError::Conflict(
            "A payment for this order is already in progress".into(),
        ));
    }
    // In a task of its own: a client that disconnects (or the request timeout) must not
    // cancel a charge half-way, between Stripe taking the money and the payment record.
    let charging = tokio::spawn(async move {
        let result = charge(&state, order_id, payment_method).await;
        if let Err(err) = state.store.release_charge(order_id).await {
            tracing::warn!(order.id = %order_id, error = %err, "could not release the charging slot; it lapses by itself");
        }
        result
    });
    charging.await.map_err(ApiError::internal)?
}

async fn check_payable(state: &AppState, order: &OrderReplica) -> ApiResult<()> {
    let paid = state.store.is_paid(&order.id.into()).await?;
    match order.status {
        OrderStatus::Cancelled => Err(ApiError::Conflict(
            "Cannot pay for a cancelled order".into(),
        )),
        OrderStatus::Complete => Err(ApiError::Conflict("Order is already paid".into())),
        _ if paid => Err(ApiError::Conflict("Order is already paid".into())),
        _ if order.expires_at <= Utc::now() => Err(ApiError::Conflict("Order has expired".into())),
        _ => Ok(()),
    }
}

async fn charge(
    state: &AppState,
    order_id: ObjectId,
    payment_method: String,
) -> ApiResult<(StatusCode, Json<Charged>)> {
    // Read and checked again inside the slot: a request that held it may have just paid,
    // or the order changed meanwhile.
    let order = state
        .store
        .find_order(order_id)
        .await?
        .ok_or_else(|| not_found("Order"))?;
    check_payable(state, &order).await?;
    let charge = Charge {
        order_id: order.id.into(),
        amount_cents: order.price_cents,
        currency: state.settlement.currency.clone(),
        payment_method,
    };
    // Another card is another attempt: an intent of an earlier one still open (3-D
    // Secure not finished, say) is cancelled, so it can never take money too.
    state
        .settlement
        .close_other_intents(&charge.order_id, &charge.payment_method)
        .await
        .map_err(ApiError::Internal)?;
    let outcome = state
        .settlement
        .gateway
        .charge(&charge)
        .await
        .map_err(|err| match err {
            GatewayError::Unavailable(reason) => {
                tracing::warn!(
                    order.id = charge.order_id.as_str(),
                    reason,
                    "payment provider unavailable"
                );
                ApiError::Unavailable(
                    "The payment provider is unavailable; nothing was charged. Please try again."
                        .into(),
                )
            }
            GatewayError::Rejected { message, param }
                if param.as_deref() == Some("payment_method") =>
            {
                ApiError::field("paymentMethod", &message)
            }
            GatewayError::Rejected { message, .. } => {
                tracing::warn!(
                    order.id = charge.order_id.as_str(),
                    message,
                    "payment provider refused the request"
                );
                ApiError::BadRequest(message)
            }
        })?;
    let settlement = &state.settlement;
    match outcome {
        ChargeOutcome::Succeeded { stripe_id } => {
            state
                .store
                .remember_intent(
                    &charge.order_id,
                    &stripe_id,
                    &charge.payment_method,
                    "succeeded",
                )
                .await?;
            let (payment, _) = settlement
                .record(
                    &charge.order_id,
                    &stripe_id,
                    charge.amount_cents,
                    &charge.currency,
                )
                .await
                .map_err(ApiError::Internal)?;
            if !payment.state.is_kept() {
                // The order was cancelled while Stripe charged: the money goes back.
                return Err(ApiError::Conflict(
                    "The order was cancelled while it was being paid; the payment is refunded"
                        .into(),
                ));
            }
            Ok((
                StatusCode::CREATED,
                Json(Charged::Created(PaymentCreatedView::from(&payment))),
            ))
        }
        ChargeOutcome::RequiresAction {
            stripe_id,
            client_secret,
        } => {
            state
                .store
                .remember_intent(
                    &charge.order_id,
                    &stripe_id,
                    &charge.payment_method,
                    "requires_action",
                )
                .await?;
            // Cancelled meanwhile: the open intent is closed at once.
            settlement
                .reconcile(order_id)
                .await
                .map_err(ApiError::Internal)?;
            Ok((
                StatusCode::ACCEPTED,
                Json(Charged::RequiresAction(RequiresAction {
                    status: "requires_action",
                    client_secret,
                })),
            ))
        }
        ChargeOutcome::Declined { message } => Err(ApiError::PaymentRequired(message)),
    }
}

/// `POST /api/payments/webhook`: Stripe's confirmation of a PaymentIntent.
#[utoipa::path(
    post,
    path = "/api/payments/webhook",
    tag = "payments",
    summary = "Stripe's events (signed), about PaymentIntents and refunds",
    description = "Handles `payment_intent.succeeded`, `.canceled`, `.payment_failed`, `charge.refunded` and `refund.*`; other types are received and ignored.",
    params(("Stripe-Signature" = String, Header, description = "Stripe's signature of the body (`t=…,v1=…`)")),
    request_body(content = Object, description = "A Stripe event", content_type = "application/json"),
    responses(
        (status = 200, description = "Received", body = WebhookReceipt),
        (status = 400, description = "A missing or bad signature, or an event without what its type needs", body = ErrorBody),
        (status = 404, description = "Webhooks are not enabled (no `STRIPE_WEBHOOK_SECRET`)", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        Unavailable,
    ),
)]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<WebhookReceipt>> {
    let Some(secret) = &state.webhook_secret else {
        return Err(ApiError::NotFound("Webhooks are not enabled".into()));
    };
    let body = body?;
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::BadRequest("Missing Stripe-Signature header".into()))?;
    webhook::verify(signature, &body, secret.expose(), Utc::now().timestamp())
        .map_err(|err| ApiError::BadRequest(format!("Invalid webhook signature: {err}")))?;
    let event: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("Invalid webhook body: {e}")))?;
    let object = &event["data"]["object"];
    let settlement = &state.settlement;
    let handled = match event["type"].as_str().unwrap_or_default() {
        "payment_intent.succeeded" => {
            let (Some(stripe_id), Some(order_id), Some(amount), Some(currency)) = (
                object["id"].as_str(),
                object["metadata"]["orderId"].as_str(),
                object["amount"].as_i64(),
                object["currency"].as_str(),
            ) else {
                return Err(ApiError::BadRequest(
                    "payment_intent.succeeded without id, metadata.orderId, amount or currency"
                        .into(),
                ));
            };
            let (stripe_id, order_id) = (IntentId::from(stripe_id), OrderId::from(order_id));
            state
                .store
                .set_intent_status(&stripe_id, "succeeded")
                .await?;
            let (_, created) = settlement
                .record(&order_id, &stripe_id, amount, currency)
                .await
                .map_err(ApiError::Internal)?;
            created
        }
        // An intent's newer status: cancelled (by us or at Stripe), or a failed attempt.
        "payment_intent.canceled" | "payment_intent.payment_failed" => {
            let (Some(stripe_id), Some(status)) =
                (object["id"].as_str(), object["status"].as_str())
            else {
                return Err(ApiError::BadRequest(
                    "payment_intent event without id or status".into(),
                ));
            };
            state
                .store
                .set_intent_status(&IntentId::from(stripe_id), status)
                .await?
        }
        // Stripe says something about a refund: the worker asks Stripe where it stands
        // now (a signed event is still only a hint; the answer to our own call is what
        // is recorded).
        "charge.refunded" | "refund.created" | "refund.updated" | "charge.refund.updated" => {
            let Some(stripe_id) = object["payment_intent"].as_str() else {
                return Ok(Json(WebhookReceipt {
                    received: true,
                    handled: false,
                }));
            };
            let due = state
                .store
                .refund_due_now(&IntentId::from(stripe_id))
                .await?;
            if due {
                settlement.wake();
            }
            due
        }
        _ => false,
    };
    Ok(Json(WebhookReceipt {
        received: true,
        handled,
    }))
}
