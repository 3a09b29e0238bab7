//! A local stand-in for Stripe's PaymentIntents API: answers like Stripe and records
//! every request. The payment method chooses the answer, as Stripe's test cards do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub idempotency_key: Option<String>,
    pub form: HashMap<String, String>,
}

#[derive(Clone, Default)]
struct Shared {
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// Idempotency key → intent id: a repeated key gets the same intent, like Stripe.
    intents: Arc<Mutex<HashMap<String, String>>>,
}

pub struct StripeStandIn {
    pub url: String,
    shared: Shared,
}

impl StripeStandIn {
    pub async fn start() -> Self {
        let shared = Shared::default();
        let app = Router::new()
            .route("/v1/payment_intents", post(create_intent))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, shared }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Distinct PaymentIntents created (idempotent repeats count once).
    pub fn intents(&self) -> usize {
        self.shared.intents.lock().unwrap().len()
    }
}

async fn create_intent(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    shared.requests.lock().unwrap().push(Recorded {
        idempotency_key: key.clone(),
        form: form.clone(),
    });
    let method = form.get("payment_method").cloned().unwrap_or_default();
    if method == "pm_card_slow" {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    if method == "pm_unknown" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "param": "payment_method",
                "message": "No such PaymentMethod: 'pm_unknown'",
            }})),
        )
            .into_response();
    }
    if method == "pm_card_chargeDeclined" {
        return (
            StatusCode::PAYMENT_REQUIRED,
            Json(json!({"error": {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
            }})),
        )
            .into_response();
    }
    let id = {
        let mut intents = shared.intents.lock().unwrap();
        let key = key.unwrap_or_else(|| format!("no-key-{}", intents.len()));
        let next = format!("pi_standin_{}", intents.len() + 1);
        intents.entry(key).or_insert(next).clone()
    };
    let status = if method == "pm_card_threeDSecure2Required" {
        "requires_action"
    } else {
        "succeeded"
    };
    Json(intent(&id, &form, status)).into_response()
}

fn intent(id: &str, form: &HashMap<String, String>, status: &str) -> Value {
    let amount: i64 = form
        .get("amount")
        .and_then(|a| a.parse().ok())
        .unwrap_or_default();
    let metadata: HashMap<String, String> = form
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[")
                .and_then(|k| k.strip_suffix(']'))
                .map(|k| (k.to_owned(), v.clone()))
        })
        .collect();
    json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": if status == "succeeded" { amount } else { 0 },
        "capture_method": "automatic",
        "client_secret": format!("{id}_secret_standin"),
        "confirmation_method": "automatic",
        "created": 1_700_000_000,
        "currency": form.get("currency").cloned().unwrap_or_default(),
        "livemode": false,
        "metadata": metadata,
        "payment_method": form.get("payment_method"),
        "payment_method_types": ["card"],
        "status": status,
    })
}

/// A `payment_intent.succeeded` event as Stripe would post it to the webhook.
pub fn succeeded_event(intent_id: &str, order_id: &str, amount: i64) -> Value {
    json!({
        "id": "evt_standin",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "currency": "usd",
            "status": "succeeded",
            "metadata": {"orderId": order_id},
        }},
    })
}
