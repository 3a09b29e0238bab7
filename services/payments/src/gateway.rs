//! Charging a card: Stripe PaymentIntents through the real `async-stripe` client, or a
//! simulated gateway for local runs without keys.

use std::collections::HashMap;
use std::str::FromStr;

use stripe::{ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_core::payment_intent::{
    CreatePaymentIntent, CreatePaymentIntentAutomaticPaymentMethods,
    CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects,
};
use stripe_core::{PaymentIntent, PaymentIntentStatus};

use crate::config::GatewayConfig;

/// What to charge.
#[derive(Debug, Clone)]
pub struct Charge {
    pub order_id: String,
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
        stripe_id: String,
    },
    /// 3-D Secure or similar: the browser finishes with Stripe.js; the webhook confirms.
    RequiresAction {
        stripe_id: String,
        client_secret: String,
    },
    /// The card was refused; the message is Stripe's, safe to show.
    Declined {
        message: String,
    },
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

    pub async fn charge(&self, charge: &Charge) -> Result<ChargeOutcome, GatewayError> {
        match self {
            Self::Simulated => Ok(simulate(charge)),
            Self::Stripe(client) => charge_with_stripe(client, charge).await,
        }
    }
}

/// Stripe's test card names behave as they would in test mode.
fn simulate(charge: &Charge) -> ChargeOutcome {
    match charge.payment_method.as_str() {
        "pm_card_chargeDeclined" | "pm_card_visa_chargeDeclined" => ChargeOutcome::Declined {
            message: "Your card was declined.".into(),
        },
        _ => ChargeOutcome::Succeeded {
            stripe_id: format!("pi_simulated_{}", uuid::Uuid::new_v4().simple()),
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
            charge.order_id.clone(),
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
    let stripe_id = intent.id.as_str().to_owned();
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
