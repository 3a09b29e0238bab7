//! `GET /api/payments?orderId=…`: what happened to a buyer's money for one order.

use axum::Json;
use axum::extract::State;
use common::auth::CurrentUser;
use common::error::{ApiError, ApiResult, ErrorBody};
use common::http::ApiQuery;
use common::http::{not_found, parse_id};
use common::openapi::{SessionErrors, Unavailable};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::state::AppState;
use crate::store::Payment;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The order, one the caller placed.
    #[serde(default, rename = "orderId")]
    #[param(required = true, value_type = String)]
    order_id: Option<String>,
}

/// An order's payments and refunds.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPayments {
    order_id: String,
    payments: Vec<PaymentView>,
    refunds: Vec<RefundView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Payment)]
struct PaymentView {
    id: String,
    stripe_id: String,
    /// Decimal currency units, like every amount in responses.
    amount: f64,
    currency: String,
    /// `succeeded` (waiting for the order), `settled`, `refund_pending`, `refunded` or
    /// `refund_failed`.
    #[schema(value_type = String)]
    status: &'static str,
    #[schema(format = DateTime)]
    created_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Refund)]
struct RefundView {
    id: String,
    payment_id: String,
    /// Stripe's `re_…`, once Stripe has given one.
    refund_id: Option<String>,
    amount: f64,
    currency: String,
    /// `pending`, `succeeded` or `failed`.
    #[schema(value_type = String)]
    status: &'static str,
    /// Why the charge is given back.
    #[schema(value_type = String)]
    reason: &'static str,
    #[schema(format = DateTime)]
    requested_at: String,
    #[schema(format = DateTime)]
    refunded_at: Option<String>,
}

fn units(cents: i64) -> f64 {
    cents as f64 / 100.0
}

fn rfc3339(time: bson::DateTime) -> String {
    time.to_chrono()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl OrderPayments {
    fn of(order_id: String, payments: &[Payment]) -> Self {
        use crate::domain::PaymentState;
        let refunds = payments
            .iter()
            .filter_map(|p| {
                let refund = p.refund.as_ref()?;
                Some(RefundView {
                    id: refund.id.to_hex(),
                    payment_id: p.id.to_hex(),
                    refund_id: refund.refund_id.clone(),
                    amount: units(p.amount_cents),
                    currency: p.currency.clone(),
                    status: match p.state {
                        PaymentState::Refunded => "succeeded",
                        PaymentState::RefundFailed => "failed",
                        _ => "pending",
                    },
                    reason: refund.reason.as_str(),
                    requested_at: rfc3339(refund.requested_at),
                    refunded_at: refund.refunded_at.map(rfc3339),
                })
            })
            .collect();
        Self {
            order_id,
            payments: payments
                .iter()
                .map(|p| PaymentView {
                    id: p.id.to_hex(),
                    stripe_id: p.stripe_id.to_string(),
                    amount: units(p.amount_cents),
                    currency: p.currency.clone(),
                    status: p.state.as_str(),
                    created_at: rfc3339(p.created_at),
                })
                .collect(),
            refunds,
        }
    }
}

/// The payments and refunds of an order the caller placed.
#[utoipa::path(
    get,
    path = "/api/payments",
    tag = "payments",
    summary = "What happened to my money for one order",
    params(HistoryQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "The order's payments and refunds", body = OrderPayments),
        (status = 400, description = "`orderId` missing, or a malformed query", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        SessionErrors, Unavailable,
    ),
)]
pub async fn list_payments(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<OrderPayments>> {
    let raw = query
        .order_id
        .ok_or_else(|| ApiError::field("orderId", "orderId is required"))?;
    let order_id = parse_id(&raw, "Order")?;
    let store = &state.store;
    let order = store
        .find_order(order_id)
        .await?
        .ok_or_else(|| not_found("Order"))?;
    if order.user_id != user.id {
        return Err(ApiError::Forbidden("Not your order".into()));
    }
    let payments = store.payments_of(&order_id.into()).await?;
    Ok(Json(OrderPayments::of(order_id.to_hex(), &payments)))
}
