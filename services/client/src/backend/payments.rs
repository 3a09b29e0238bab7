//! The payments service: `/api/payments`.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{Backend, BackendError, Reply, Session, Upstream};

/// What a payment attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payment {
    /// 201: charged.
    Succeeded,
    /// 202: the card issuer wants the buyer to confirm (3-D Secure); Stripe.js takes over.
    RequiresAction { client_secret: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentBody {
    status: String,
    #[serde(default)]
    client_secret: Option<String>,
}

impl Backend {
    pub async fn pay(
        &self,
        session: &Session,
        order_id: &str,
        payment_method: &str,
    ) -> Result<Reply<Payment>, BackendError> {
        let request = self
            .request(
                Method::POST,
                Upstream::Payments,
                &["api", "payments"],
                session,
            )
            .json(&json!({"orderId": order_id, "paymentMethod": payment_method}));
        let reply: Reply<PaymentBody> = self.json(Upstream::Payments, request).await?;
        let payment = match (reply.body.status.as_str(), &reply.body.client_secret) {
            ("requires_action", Some(secret)) => Payment::RequiresAction {
                client_secret: secret.clone(),
            },
            ("succeeded", _) => Payment::Succeeded,
            (other, _) => {
                return Err(BackendError::Unexpected {
                    service: Upstream::Payments,
                    reason: format!("payment status {other:?}"),
                });
            }
        };
        Ok(reply.map(|_| payment))
    }
}
