//! A tiny stand-in for Stripe's PaymentIntents API, for the one answer the simulated
//! gateway cannot give: every card needs the buyer to confirm it (3-D Secure), so the real
//! payments service, pointed at it, answers 202 requires_action.

use std::collections::HashMap;

use axum::routing::post;
use axum::{Form, Json, Router};
use serde_json::{Value, json};

/// Starts the stand-in; returns its base URL, for the payments service's `api_base`.
pub async fn start() -> String {
    let app = Router::new().route("/v1/payment_intents", post(create_intent));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A PaymentIntent as Stripe answers one that waits for the buyer's bank.
async fn create_intent(Form(form): Form<HashMap<String, String>>) -> Json<Value> {
    let id = format!("pi_standin_{}", uuid::Uuid::new_v4().simple());
    let amount: i64 = form
        .get("amount")
        .and_then(|a| a.parse().ok())
        .unwrap_or_default();
    Json(json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "capture_method": "automatic",
        "client_secret": format!("{id}_secret_standin"),
        "confirmation_method": "automatic",
        "created": 1_700_000_000,
        "currency": form.get("currency").cloned().unwrap_or_default(),
        "livemode": false,
        "metadata": {},
        "payment_method": form.get("payment_method"),
        "payment_method_types": ["card"],
        "status": "requires_action",
    }))
}
