use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use bson::oid::ObjectId;
use bytes::Bytes;
use chrono::Utc;
use common::auth::CurrentUser;
use common::error::{ApiError, ApiResult, ErrorItem};
use common::http::ApiJson;
use common::mongo::not_found;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::gateway::{Charge, ChargeOutcome, GatewayError};
use crate::store::{OrderReplica, Payment};
use crate::webhook;

/// Stripe ids are short; the bound keeps the idempotency key under Stripe's 255 bytes.
const MAX_PAYMENT_METHOD_LEN: usize = 100;

/// How long one request may hold an order's charging slot (longer than the Stripe timeout).
const CHARGE_SLOT: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Deserialize)]
pub struct PaymentBody {
    #[serde(default, rename = "orderId")]
    order_id: Value,
    #[serde(default, rename = "paymentMethod")]
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

fn payment_json(payment: &Payment) -> Value {
    json!({
        "id": payment.id.to_hex(),
        "orderId": payment.order_id,
        "stripeId": payment.stripe_id,
        "status": "succeeded",
    })
}

/// `POST /api/payments`: charge an order the caller placed.
pub async fn create_payment(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<PaymentBody>,
) -> ApiResult<impl IntoResponse> {
    let (order_id, payment_method) = body.validate()?;
    let order = state
        .store
        .find_order(order_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| not_found("Order"))?;
    if order.user_id != user.id {
        return Err(ApiError::Forbidden("Not your order".into()));
    }
    check_payable(&state, &order).await?;
    if !state
        .store
        .claim_charge(order_id, Utc::now() + CHARGE_SLOT)
        .await
        .map_err(ApiError::internal)?
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
    let paid = state
        .store
        .find_payment_for(&order.id.to_hex())
        .await
        .map_err(ApiError::internal)?
        .is_some();
    match order.status.as_str() {
        "cancelled" => Err(ApiError::Conflict(
            "Cannot pay for a cancelled order".into(),
        )),
        "complete" => Err(ApiError::Conflict("Order is already paid".into())),
        _ if paid => Err(ApiError::Conflict("Order is already paid".into())),
        _ if order.expires_at <= Utc::now() => Err(ApiError::Conflict("Order has expired".into())),
        _ => Ok(()),
    }
}

async fn charge(
    state: &AppState,
    order_id: ObjectId,
    payment_method: String,
) -> ApiResult<(StatusCode, Json<Value>)> {
    // Read and checked again inside the slot: a request that held it may have just paid,
    // or the order changed meanwhile.
    let order = state
        .store
        .find_order(order_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| not_found("Order"))?;
    check_payable(state, &order).await?;
    let charge = Charge {
        order_id: order.id.to_hex(),
        amount_cents: order.price_cents,
        currency: state.currency.clone(),
        payment_method,
    };
    let outcome = state
        .gateway
        .charge(&charge)
        .await
        .map_err(|err| match err {
            GatewayError::Unavailable(reason) => {
                tracing::warn!(
                    order.id = charge.order_id,
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
                    order.id = charge.order_id,
                    message,
                    "payment provider refused the request"
                );
                ApiError::BadRequest(message)
            }
        })?;
    match outcome {
        ChargeOutcome::Succeeded { stripe_id } => {
            let (payment, _) = record(
                state,
                &charge.order_id,
                stripe_id,
                charge.amount_cents,
                &charge.currency,
            )
            .await?;
            Ok((StatusCode::CREATED, Json(payment_json(&payment))))
        }
        ChargeOutcome::RequiresAction { client_secret, .. } => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"status": "requires_action", "clientSecret": client_secret})),
        )),
        ChargeOutcome::Declined { message } => Err(ApiError::PaymentRequired(message)),
    }
}

async fn record(
    state: &AppState,
    order_id: &str,
    stripe_id: String,
    amount_cents: i64,
    currency: &str,
) -> ApiResult<(Payment, bool)> {
    let payment = Payment {
        id: ObjectId::new(),
        order_id: order_id.to_owned(),
        stripe_id,
        amount_cents,
        currency: currency.to_owned(),
        created_at: bson::DateTime::now(),
    };
    let (payment, created) = state
        .store
        .record(payment)
        .await
        .map_err(ApiError::Internal)?;
    if created {
        tracing::info!(order.id = order_id, payment.id = %payment.id, "payment recorded");
    }
    Ok((payment, created))
}

/// `POST /api/payments/webhook`: Stripe's confirmation of a PaymentIntent.
pub async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let Some(secret) = &state.webhook_secret else {
        return Err(ApiError::NotFound("Webhooks are not enabled".into()));
    };
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::BadRequest("Missing Stripe-Signature header".into()))?;
    webhook::verify(signature, &body, secret.expose(), Utc::now().timestamp())
        .map_err(|err| ApiError::BadRequest(format!("Invalid webhook signature: {err}")))?;
    let event: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("Invalid webhook body: {e}")))?;
    if event["type"] != "payment_intent.succeeded" {
        return Ok(Json(json!({"received": true, "handled": false})));
    }
    let intent = &event["data"]["object"];
    let (Some(stripe_id), Some(order_id), Some(amount), Some(currency)) = (
        intent["id"].as_str(),
        intent["metadata"]["orderId"].as_str(),
        intent["amount"].as_i64(),
        intent["currency"].as_str(),
    ) else {
        return Err(ApiError::BadRequest(
            "payment_intent.succeeded without id, metadata.orderId, amount or currency".into(),
        ));
    };
    let (_, created) = record(&state, order_id, stripe_id.to_owned(), amount, currency).await?;
    Ok(Json(json!({"received": true, "handled": created})))
}
