//! A stand-in for the payments service, true to its contract: `POST /api/payments`
//! {orderId, paymentMethod} → 201 succeeded (publishing `payment.created`, which completes
//! the order in the real orders service), 202 requires_action, 402 declined, 409 for an
//! order that is paid, cancelled or expired.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use common::auth::{CurrentUser, Jwt};
use common::bus::Bus;
use common::error::{ApiError, ApiResult};
use common::events::{Envelope, PaymentCreated};
use serde_json::{Value, json};

/// Declined by the stand-in, like Stripe's test card of that name.
pub const DECLINED: &str = "pm_card_chargeDeclined";
/// Answered with 202 requires_action, like a 3-D Secure card.
pub const NEEDS_ACTION: &str = "pm_card_threeDSecure2Required";

#[derive(Clone)]
struct FakeState {
    jwt: Jwt,
    bus: Bus,
    orders_url: Arc<str>,
    http: reqwest::Client,
}

impl FromRef<FakeState> for Jwt {
    fn from_ref(state: &FakeState) -> Self {
        state.jwt.clone()
    }
}

pub fn router(bus: Bus, orders_url: &str) -> Router {
    let state = FakeState {
        jwt: Jwt::new(&testkit::jwt_config()),
        bus,
        orders_url: orders_url.into(),
        http: reqwest::Client::new(),
    };
    Router::new()
        .route("/api/payments", post(pay))
        .with_state(state)
}

async fn pay(
    State(state): State<FakeState>,
    CurrentUser(_user): CurrentUser,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> ApiResult<impl IntoResponse> {
    let order_id = body["orderId"].as_str().unwrap_or_default().to_owned();
    let method = body["paymentMethod"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if order_id.is_empty() || method.is_empty() {
        return Err(ApiError::field(
            "orderId",
            "orderId and paymentMethod are required",
        ));
    }
    // The order as its buyer sees it: the same cookie, the real orders service.
    let cookie = headers.get(header::COOKIE).cloned();
    let mut request = state
        .http
        .get(format!("{}/api/orders/{order_id}", state.orders_url));
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let response = request.send().await.map_err(ApiError::internal)?;
    match response.status().as_u16() {
        200 => {}
        404 => return Err(ApiError::NotFound("Order not found".into())),
        403 => return Err(ApiError::Forbidden("Not your order".into())),
        other => {
            return Err(ApiError::internal(anyhow::anyhow!(
                "orders answered {other}"
            )));
        }
    }
    let order: Value = response.json().await.map_err(ApiError::internal)?;
    match order["status"].as_str() {
        Some("complete") => return Err(ApiError::Conflict("Order is already paid".into())),
        Some("cancelled") => {
            return Err(ApiError::Conflict(
                "Cannot pay for a cancelled order".into(),
            ));
        }
        _ => {}
    }
    let expires_at = order["expiresAt"]
        .as_str()
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok());
    if expires_at.is_some_and(|e| e <= chrono::Utc::now()) {
        return Err(ApiError::Conflict("Order has expired".into()));
    }
    match method.as_str() {
        DECLINED => return Err(ApiError::PaymentRequired("Your card was declined".into())),
        NEEDS_ACTION => {
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({"status": "requires_action", "clientSecret": "pi_fake_secret"})),
            ));
        }
        _ => {}
    }
    let price = order["ticket"]["price"].as_f64().unwrap_or_default();
    let payment_id = uuid::Uuid::new_v4().simple().to_string();
    let event = PaymentCreated {
        id: payment_id.clone(),
        order_id: order_id.clone(),
        stripe_id: format!("pi_{payment_id}"),
        amount_cents: (price * 100.0).round() as i64,
        currency: "usd".into(),
        version: 0,
    };
    state
        .bus
        .publish(&Envelope::new(event))
        .await
        .map_err(ApiError::Internal)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": payment_id,
            "orderId": order_id,
            "stripeId": format!("pi_{payment_id}"),
            "status": "succeeded",
        })),
    ))
}
