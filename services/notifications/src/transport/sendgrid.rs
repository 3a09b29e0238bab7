//! SendGrid's v3 Mail Send API: `POST {SENDGRID_API_URL}/v3/mail/send`, bearer
//! `SENDGRID_API_KEY`, answered 202 when accepted.
//!
//! HTTPS through hyper with rustls on ring and the Mozilla roots (webpki-roots): the image
//! has no CA bundle to trust, and no second crypto library is built.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, Request, StatusCode, header};
use bytes::Bytes;
use common::config::Secret;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use super::{Email, Mailer, SendError, excerpt};

/// The longest `Retry-After` honoured; beyond it the listener's own back-off applies.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

pub struct SendGrid {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    endpoint: String,
    api_key: Secret,
    timeout: Duration,
}

impl SendGrid {
    /// `api_url` is the API's origin (`https://api.sendgrid.com`, or a stand-in's).
    pub fn new(api_url: &str, api_key: Secret, timeout: Duration) -> anyhow::Result<Self> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            endpoint: format!("{}/v3/mail/send", api_url.trim_end_matches('/')),
            api_key,
            timeout,
        })
    }
}

/// The request body: one personalization (the recipient), text before HTML as the API
/// requires, and the email's id as a custom argument (it comes back in SendGrid's events).
pub fn body(email: &Email) -> serde_json::Value {
    let mut from = json!({"email": email.from.email.to_string()});
    if let Some(name) = &email.from.name {
        from["name"] = json!(name);
    }
    json!({
        "personalizations": [{"to": [{"email": email.to}]}],
        "from": from,
        "subject": email.subject,
        "content": [
            {"type": "text/plain", "value": email.text},
            {"type": "text/html", "value": email.html},
        ],
        "custom_args": {"gittix_email_id": email.id},
    })
}

#[async_trait::async_trait]
impl Mailer for SendGrid {
    fn name(&self) -> &'static str {
        "sendgrid"
    }

    async fn send(&self, email: &Email) -> Result<(), SendError> {
        let body = serde_json::to_vec(&body(email))
            .map_err(|err| SendError::Refused(format!("cannot encode the request: {err}")))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(&self.endpoint)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.api_key.expose()),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| SendError::Refused(format!("cannot build the request: {err}")))?;
        let exchange = async {
            let response = match self.client.request(request).await {
                Ok(response) => response,
                // Never connected: the request never left.
                Err(err) if err.is_connect() => {
                    return Err(SendError::Transient {
                        reason: format!("cannot connect to SendGrid: {err}"),
                        after: None,
                    });
                }
                Err(err) => return Err(SendError::Unknown(format!("SendGrid request: {err}"))),
            };
            let status = response.status();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER));
            // The answer decides; its body only explains a refusal.
            let text = match response.into_body().collect().await {
                Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                Err(_) => String::new(),
            };
            Ok(answer(status, retry_after, &text))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(result)) => result,
            Ok(Err(err)) => Err(err),
            Err(_) => Err(SendError::Unknown(format!(
                "no answer from SendGrid within {:?}",
                self.timeout
            ))),
        }
    }
}

/// What SendGrid's answer means: 2xx accepted; 429 and 5xx not accepted, retried; any
/// other 4xx a request it will never accept (dead-lettered with its reason).
fn answer(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Result<(), SendError> {
    let reason = format!("SendGrid answered {status}: {}", excerpt(body, 300));
    if status.is_success() {
        Ok(())
    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Err(SendError::Transient {
            reason,
            after: retry_after,
        })
    } else {
        Err(SendError::Refused(reason))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn answers_are_classified_by_what_they_prove() {
        assert_eq!(answer(StatusCode::ACCEPTED, None, ""), Ok(()));
        assert!(matches!(
            answer(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(2)), ""),
            Err(SendError::Transient { after: Some(d), .. }) if d == Duration::from_secs(2)
        ));
        assert!(matches!(
            answer(StatusCode::BAD_GATEWAY, None, ""),
            Err(SendError::Transient { .. })
        ));
        let Err(SendError::Refused(reason)) = answer(
            StatusCode::BAD_REQUEST,
            None,
            r#"{"errors":[{"message":"bad from"}]}"#,
        ) else {
            panic!()
        };
        assert!(reason.contains("bad from"), "{reason}");
    }

    #[test]
    fn the_body_has_the_api_shape() {
        let email = Email {
            from: "GitTix <no-reply@gittix.dev>".parse().unwrap(),
            to: "a@example.com".into(),
            subject: "Hi".into(),
            html: "<p>Hi</p>".into(),
            text: "Hi".into(),
            id: "e1.welcome".into(),
        };
        let body = body(&email);
        assert_eq!(
            body["personalizations"][0]["to"][0]["email"],
            "a@example.com"
        );
        assert_eq!(body["from"]["email"], "no-reply@gittix.dev");
        assert_eq!(body["from"]["name"], "GitTix");
        assert_eq!(body["content"][0]["type"], "text/plain");
        assert_eq!(body["content"][1]["value"], "<p>Hi</p>");
    }
}
