//! Charging a card, refunding it and cancelling an open intent: Stripe PaymentIntents and
//! Refunds through the real `async-stripe` client, or a simulated gateway for local runs
//! without keys.

use std::collections::HashMap;
use std::str::FromStr;

use stripe::{ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_core::payment_intent::{
    CancelPaymentIntent, CancelPaymentIntentCancellationReason, CreatePaymentIntent,
    CreatePaymentIntentAutomaticPaymentMethods,
    CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects, RetrievePaymentIntent,
};
use stripe_core::refund::{CreateRefund, CreateRefundReason, RetrieveRefund};
use stripe_core::{PaymentIntent, PaymentIntentStatus, Refund};

use crate::config::GatewayConfig;
use crate::domain::{IntentId, OrderId};

/// What to charge.
#[derive(Debug, Clone)]
pub struct Charge {
    pub order_id: OrderId,
    pub amount_cents: i64,
    pub currency: String,
    pub payment_method: String,
}

impl Charge {
    /// Derived from the order (and the card, so that another card after a decline is a
    /// new attempt): a retry of the same request never charges twice.
    pub fn idempotency_key(&self) -> String {
        format!("gittix-order-{}-{}", self.order_id, self.payment_method)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded {
        stripe_id: IntentId,
    },
    /// 3-D Secure or similar: the browser finishes with Stripe.js; the webhook confirms.
    RequiresAction {
        stripe_id: IntentId,
        client_secret: String,
    },
    /// The card was refused; the message is Stripe's, safe to show.
    Declined {
        message: String,
    },
}

/// What to refund: all of one payment.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub payment_id: String,
    pub order_id: OrderId,
    pub stripe_id: IntentId,
    pub amount_cents: i64,
    /// Stripe's `duplicate` reason when another payment completed the order.
    pub duplicate: bool,
}

impl RefundRequest {
    /// One refund per payment, however often it is retried, by however many replicas.
    pub fn idempotency_key(&self) -> String {
        format!("gittix-refund-{}", self.payment_id)
    }
}

/// Where a refund stands at Stripe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Done: the money is on its way back.
    Succeeded { refund_id: String },
    /// Accepted, not final yet (`pending`, `requires_action`): ask again later.
    Pending { refund_id: String },
    /// `failed` or `canceled`: Stripe will not refund it this way.
    Failed { refund_id: String, reason: String },
}

/// Where an intent stands at Stripe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentState {
    Canceled,
    /// It took the money after all: the payment must be recorded.
    Succeeded {
        amount_cents: i64,
        currency: String,
    },
    /// Anything else (`processing`, …): ask again later.
    Other(String),
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Unreachable, timed out, or answering nonsense: nothing was charged as far as we know.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// A request Stripe refused for a reason other than the card: `param` names the
    /// parameter at fault when Stripe says (e.g. an unknown `payment_method`).
    #[error("payment provider refused the request: {message}")]
    Rejected {
        message: String,
        param: Option<String>,
    },
}

#[derive(Clone)]
pub enum Gateway {
    /// Shared: the client is large and every request clones the state.
    Stripe(std::sync::Arc<stripe::Client>),
    Simulated,
}

impl Gateway {
    pub fn new(config: &GatewayConfig) -> anyhow::Result<Self> {
        match config {
            GatewayConfig::Simulated => {
                tracing::warn!(
                    "PAYMENT_GATEWAY=simulated: every payment succeeds without charging anyone. Never use this in production."
                );
                Ok(Self::Simulated)
            }
            GatewayConfig::Stripe {
                secret_key,
                api_base,
                timeout,
                ..
            } => {
                let mut builder = ClientBuilder::new(secret_key.expose()).timeout(*timeout);
                if let Some(base) = api_base {
                    builder = builder.url(base.clone());
                }
                Ok(Self::Stripe(std::sync::Arc::new(builder.build()?)))
            }
        }
    }

    pub fn is_simulated(&self) -> bool {
        matches!(self, Self::Simulated)
    }

    #[tracing::instrument(name = "stripe", skip_all, fields(operation = "charge"))]
    pub async fn charge(&self, charge: &Charge) -> Result<ChargeOutcome, GatewayError> {
        match self {
            Self::Simulated => Ok(simulate(charge)),
            Self::Stripe(client) => observed("charge", charge_with_stripe(client, charge)).await,
        }
    }

    /// Refunds a payment in full, or finds where an earlier refund of it stands (the
    /// idempotency key makes a retry return the refund the first attempt created).
    #[tracing::instrument(name = "stripe", skip_all, fields(operation = "refund"))]
    pub async fn refund(&self, refund: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        let Self::Stripe(client) = self else {
            return Ok(RefundOutcome::Succeeded {
                refund_id: format!(
                    "re_simulated_{}",
                    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, refund.payment_id.as_bytes())
                        .simple()
                ),
            });
        };
        let key = IdempotencyKey::new(refund.idempotency_key())
            .map_err(|e| GatewayError::Unavailable(format!("idempotency key: {e}")))?;
        let mut request = CreateRefund::new()
            .payment_intent(refund.stripe_id.to_string())
            .amount(refund.amount_cents)
            .metadata(HashMap::from([
                ("orderId".to_owned(), refund.order_id.to_string()),
                ("paymentId".to_owned(), refund.payment_id.clone()),
            ]));
        request = if refund.duplicate {
            request.reason(CreateRefundReason::Duplicate)
        } else {
            request.reason(CreateRefundReason::RequestedByCustomer)
        };
        let sent = request
            .customize()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&**client);
        let result = observed("refund", sent).await;
        result.map(|r| refund_outcome(&r)).map_err(gateway_error)
    }

    /// Where a refund created earlier stands now.
    #[tracing::instrument(name = "stripe", skip_all, fields(operation = "retrieve_refund"))]
    pub async fn retrieve_refund(&self, refund_id: &str) -> Result<RefundOutcome, GatewayError> {
        match self {
            Self::Simulated => Ok(RefundOutcome::Succeeded {
                refund_id: refund_id.to_owned(),
            }),
            Self::Stripe(client) => observed(
                "retrieve_refund",
                RetrieveRefund::new(refund_id).send(&**client),
            )
            .await
            .map(|r| refund_outcome(&r))
            .map_err(gateway_error),
        }
    }

    /// Cancels an open intent. One that succeeded (or was cancelled) meanwhile is
    /// reported as it is.
    #[tracing::instrument(name = "stripe", skip_all, fields(operation = "cancel_intent"))]
    pub async fn cancel_intent(&self, stripe_id: &str) -> Result<IntentState, GatewayError> {
        let Self::Stripe(client) = self else {
            return Ok(IntentState::Canceled);
        };
        let key = IdempotencyKey::new(format!("gittix-cancel-{stripe_id}"))
            .map_err(|e| GatewayError::Unavailable(format!("idempotency key: {e}")))?;
        let sent = CancelPaymentIntent::new(stripe_id)
            .cancellation_reason(CancelPaymentIntentCancellationReason::Abandoned)
            .customize()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&**client);
        let result = observed("cancel_intent", sent).await;
        match result {
            Ok(intent) => Ok(intent_state(&intent)),
            // Succeeded or cancelled meanwhile: Stripe refuses; see what it is now.
            Err(StripeError::Stripe(error, 400))
                if error.code == Some(stripe::ApiErrorsCode::PaymentIntentUnexpectedState) =>
            {
                observed(
                    "retrieve_intent",
                    RetrievePaymentIntent::new(stripe_id).send(&**client),
                )
                .await
                .map(|intent| intent_state(&intent))
                .map_err(gateway_error)
            }
            Err(err) => Err(gateway_error(err)),
        }
    }
}

/// Times one call to Stripe: `stripe_request_duration_seconds` by operation and outcome.
async fn observed<T, E>(
    operation: &'static str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let result = call.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::histogram!("stripe_request_duration_seconds", "operation" => operation, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}

fn refund_outcome(refund: &Refund) -> RefundOutcome {
    let refund_id = refund.id.as_str().to_owned();
    match refund.status.as_deref() {
        Some("succeeded") => RefundOutcome::Succeeded { refund_id },
        Some(status @ ("failed" | "canceled")) => RefundOutcome::Failed {
            refund_id,
            reason: refund
                .failure_reason
                .clone()
                .unwrap_or_else(|| status.to_owned()),
        },
        _ => RefundOutcome::Pending { refund_id },
    }
}

fn intent_state(intent: &PaymentIntent) -> IntentState {
    match &intent.status {
        PaymentIntentStatus::Canceled => IntentState::Canceled,
        PaymentIntentStatus::Succeeded => IntentState::Succeeded {
            amount_cents: intent.amount_received,
            currency: intent.currency.to_string(),
        },
        other => IntentState::Other(other.as_str().to_owned()),
    }
}

/// A failed Stripe call outside charging: 4xx is a refusal, anything else transient.
fn gateway_error(err: StripeError) -> GatewayError {
    match err {
        StripeError::Stripe(error, status) if status < 500 && status != 429 => {
            GatewayError::Rejected {
                message: error
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("stripe answered {status}")),
                param: error.param.clone(),
            }
        }
        StripeError::Stripe(error, status) => {
            GatewayError::Unavailable(format!("stripe answered {status}: {:?}", error.message))
        }
        other => GatewayError::Unavailable(other.to_string()),
    }
}

/// Stripe's test card names behave as they would in test mode.
fn simulate(charge: &Charge) -> ChargeOutcome {
    match charge.payment_method.as_str() {
        "pm_card_chargeDeclined" | "pm_card_visa_chargeDeclined" => ChargeOutcome::Declined {
            message: "Your card was declined.".into(),
        },
        _ => ChargeOutcome::Succeeded {
            stripe_id: IntentId::new(format!("pi_simulated_{}", uuid::Uuid::new_v4().simple())),
        },
    }
}

async fn charge_with_stripe(
    client: &stripe::Client,
    charge: &Charge,
) -> Result<ChargeOutcome, GatewayError> {
    let key =
        IdempotencyKey::new(charge.idempotency_key()).map_err(|e| GatewayError::Rejected {
            message: format!("idempotency key: {e}"),
            param: Some("payment_method".into()),
        })?;
    let currency =
        stripe_types::Currency::from_str(&charge.currency).unwrap_or_else(|never| match never {});
    let request = CreatePaymentIntent::new(charge.amount_cents, currency)
        .payment_method(charge.payment_method.clone())
        // Cards are confirmed here; redirect-based methods would need a return URL.
        .automatic_payment_methods(CreatePaymentIntentAutomaticPaymentMethods {
            enabled: true,
            allow_redirects: Some(CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects::Never),
        })
        .confirm(true)
        .metadata(HashMap::from([(
            "orderId".to_owned(),
            charge.order_id.to_string(),
        )]));
    let result = request
        .customize()
        .request_strategy(RequestStrategy::Idempotent(key))
        .send(client)
        .await;
    match result {
        Ok(intent) => Ok(outcome_of(&intent)),
        Err(StripeError::Stripe(error, status))
            if status == 402 || matches!(error.type_, stripe::ApiErrorsType::CardError) =>
        {
            Ok(ChargeOutcome::Declined {
                message: error
                    .message
                    .clone()
                    .unwrap_or_else(|| "Your card was declined.".into()),
            })
        }
        Err(StripeError::Stripe(error, status)) if status >= 500 => Err(GatewayError::Unavailable(
            format!("stripe answered {status}: {:?}", error.message),
        )),
        Err(StripeError::Stripe(error, _)) => Err(GatewayError::Rejected {
            message: error
                .message
                .clone()
                .unwrap_or_else(|| "The payment provider refused the request.".into()),
            param: error.param.clone(),
        }),
        Err(other) => Err(GatewayError::Unavailable(other.to_string())),
    }
}

fn outcome_of(intent: &PaymentIntent) -> ChargeOutcome {
    let stripe_id = IntentId::new(intent.id.as_str());
    match &intent.status {
        PaymentIntentStatus::Succeeded => ChargeOutcome::Succeeded { stripe_id },
        PaymentIntentStatus::RequiresAction => ChargeOutcome::RequiresAction {
            stripe_id,
            client_secret: intent.client_secret.clone().unwrap_or_default(),
        },
        // Declined cards put the intent back to requires_payment_method.
        _ => ChargeOutcome::Declined {
            message: intent
                .last_payment_error
                .as_ref()
                .and_then(|e| e.message.clone())
                .unwrap_or_else(|| "The payment could not be completed.".into()),
        },
    }
}
