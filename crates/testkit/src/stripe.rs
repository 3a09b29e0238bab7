//! A local stand-in for Stripe's PaymentIntents and Refunds APIs, for the payments service
//! (`STRIPE_API_BASE`) in payments' and the client's tests: answers like Stripe and records
//! every request. The payment method chooses the answer, as Stripe's test cards do
//! (`pm_card_threeDSecure2Required` waits for the buyer's bank, `pm_card_chargeDeclined` is
//! declined, `pm_unknown` does not exist, `pm_card_slow` takes 5 s); a test can make it
//! slow, make refunds fail, or finish a 3-D Secure intent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub idempotency_key: Option<String>,
    pub form: HashMap<String, String>,
}

#[derive(Clone, Default)]
struct Shared {
    /// PaymentIntent creations.
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// Idempotency key → intent id: a repeated key gets the same intent, like Stripe.
    intents: Arc<Mutex<HashMap<String, String>>>,
    /// Intent id → the intent as it stands.
    intent_objects: Arc<Mutex<HashMap<String, Value>>>,
    /// Refund creations (every request, repeats included).
    refund_requests: Arc<Mutex<Vec<Recorded>>>,
    /// Idempotency key → refund: a repeated key gets the same refund.
    refunds: Arc<Mutex<HashMap<String, Value>>>,
    /// Intent cancellations asked for (every request).
    cancel_requests: Arc<Mutex<Vec<String>>>,
    /// Refund requests still to answer 500 (after creating the refund: the answer is lost).
    failing_refunds: Arc<AtomicUsize>,
    /// Added to every answer.
    latency: Arc<Mutex<Duration>>,
}

#[derive(Clone)]
pub struct StripeStandIn {
    pub url: String,
    shared: Shared,
}

impl StripeStandIn {
    /// Listens on a free loopback port; `url` is the base for `STRIPE_API_BASE`.
    pub async fn start() -> Self {
        let shared = Shared::default();
        let app = Router::new()
            .route("/v1/payment_intents", post(create_intent))
            .route("/v1/payment_intents/{id}", get(retrieve_intent))
            .route("/v1/payment_intents/{id}/cancel", post(cancel_intent))
            .route("/v1/refunds", post(create_refund))
            .route("/v1/refunds/{id}", get(retrieve_refund))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, shared }
    }

    /// PaymentIntent creations received.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Distinct PaymentIntents created (idempotent repeats count once).
    pub fn intents(&self) -> usize {
        self.shared.intents.lock().unwrap().len()
    }

    /// Refund requests received, repeats included.
    pub fn refund_requests(&self) -> Vec<Recorded> {
        self.shared.refund_requests.lock().unwrap().clone()
    }

    /// Distinct refunds created: what the buyer gets back.
    pub fn refunds(&self) -> Vec<Value> {
        self.shared
            .refunds
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect()
    }

    /// Intent ids whose cancellation was asked for, repeats included.
    pub fn cancel_requests(&self) -> Vec<String> {
        self.shared.cancel_requests.lock().unwrap().clone()
    }

    /// The intent's status as it stands at "Stripe".
    pub fn intent_status(&self, id: &str) -> Option<String> {
        let objects = self.shared.intent_objects.lock().unwrap();
        objects.get(id)?["status"].as_str().map(str::to_owned)
    }

    /// The buyer finishes 3-D Secure: the intent succeeds at Stripe.
    pub fn succeed_intent(&self, id: &str) {
        let mut objects = self.shared.intent_objects.lock().unwrap();
        let intent = objects.get_mut(id).expect("a known intent");
        intent["status"] = json!("succeeded");
        intent["amount_received"] = intent["amount"].clone();
    }

    /// An intent that succeeded at Stripe without payments creating it (for an amount of
    /// its own): what a webhook may report.
    pub fn add_succeeded_intent(&self, id: &str, order_id: &str, amount: i64) {
        let form = HashMap::from([
            ("amount".to_owned(), amount.to_string()),
            ("currency".to_owned(), "usd".to_owned()),
            ("metadata[orderId]".to_owned(), order_id.to_owned()),
        ]);
        self.shared
            .intent_objects
            .lock()
            .unwrap()
            .insert(id.to_owned(), intent(id, &form, "succeeded"));
    }

    /// The next `n` refund requests create the refund but answer 500, as if Stripe
    /// failed after doing it (or the answer was lost).
    pub fn fail_refunds(&self, n: usize) {
        self.shared.failing_refunds.store(n, Ordering::SeqCst);
    }

    pub fn set_latency(&self, latency: Duration) {
        *self.shared.latency.lock().unwrap() = latency;
    }
}

async fn delay(shared: &Shared) {
    let latency = *shared.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {
            "type": if status.is_server_error() { "api_error" } else { "invalid_request_error" },
            "code": code,
            "message": message,
        }})),
    )
        .into_response()
}

async fn create_intent(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    delay(&shared).await;
    let key = idempotency_key(&headers);
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
    let (id, new) = {
        let mut intents = shared.intents.lock().unwrap();
        let key = key.unwrap_or_else(|| format!("no-key-{}", intents.len()));
        let next = format!("pi_standin_{}", intents.len() + 1);
        let id = intents.entry(key).or_insert(next.clone()).clone();
        let new = id == next;
        (id, new)
    };
    let mut objects = shared.intent_objects.lock().unwrap();
    if new {
        let status = if method == "pm_card_threeDSecure2Required" {
            "requires_action"
        } else {
            "succeeded"
        };
        objects.insert(id.clone(), intent(&id, &form, status));
    }
    Json(objects[&id].clone()).into_response()
}

async fn retrieve_intent(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    delay(&shared).await;
    match shared.intent_objects.lock().unwrap().get(&id) {
        Some(intent) => Json(intent.clone()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "resource_missing",
            "No such payment_intent",
        ),
    }
}

async fn cancel_intent(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    delay(&shared).await;
    shared.cancel_requests.lock().unwrap().push(id.clone());
    let mut objects = shared.intent_objects.lock().unwrap();
    let Some(intent) = objects.get_mut(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "resource_missing",
            "No such payment_intent",
        );
    };
    match intent["status"].as_str() {
        Some("succeeded") => error(
            StatusCode::BAD_REQUEST,
            "payment_intent_unexpected_state",
            "You cannot cancel this PaymentIntent because it has a status of succeeded.",
        ),
        _ => {
            intent["status"] = json!("canceled");
            Json(intent.clone()).into_response()
        }
    }
}

async fn create_refund(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    delay(&shared).await;
    let key = idempotency_key(&headers);
    shared.refund_requests.lock().unwrap().push(Recorded {
        idempotency_key: key.clone(),
        form: form.clone(),
    });
    let intent_id = form.get("payment_intent").cloned().unwrap_or_default();
    let Some(intent) = shared
        .intent_objects
        .lock()
        .unwrap()
        .get(&intent_id)
        .cloned()
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "resource_missing",
            "No such payment_intent",
        );
    };
    if intent["status"] != "succeeded" {
        return error(
            StatusCode::BAD_REQUEST,
            "charge_not_refundable",
            "This PaymentIntent has no successful charge to refund.",
        );
    }
    let refund = {
        let mut refunds = shared.refunds.lock().unwrap();
        let key = key.unwrap_or_else(|| format!("no-key-{}", refunds.len()));
        let next = json!({
            "id": format!("re_standin_{}", refunds.len() + 1),
            "object": "refund",
            "amount": form.get("amount").and_then(|a| a.parse::<i64>().ok()).unwrap_or(intent["amount"].as_i64().unwrap_or_default()),
            "currency": intent["currency"],
            "created": 1_700_000_000,
            "payment_intent": intent_id,
            "reason": form.get("reason"),
            "status": "succeeded",
        });
        refunds.entry(key).or_insert(next).clone()
    };
    let failing = shared
        .failing_refunds
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "Something went wrong on Stripe's end.",
        );
    }
    Json(refund).into_response()
}

async fn retrieve_refund(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    delay(&shared).await;
    let refunds = shared.refunds.lock().unwrap();
    match refunds.values().find(|r| r["id"] == id.as_str()) {
        Some(refund) => Json(refund.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "resource_missing", "No such refund"),
    }
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

/// A `charge.refunded` event for the charge of an intent.
pub fn charge_refunded_event(intent_id: &str) -> Value {
    json!({
        "id": "evt_standin_refund",
        "object": "event",
        "type": "charge.refunded",
        "data": {"object": {
            "id": "ch_standin",
            "object": "charge",
            "payment_intent": intent_id,
            "refunded": true,
        }},
    })
}
