//! SendGrid's v3 Mail Send API: `POST {SENDGRID_API_URL}/v3/mail/send`, bearer
//! `SENDGRID_API_KEY`, answered 202 when accepted.
//!
//! HTTPS through hyper with rustls on ring and the Mozilla roots (webpki-roots): the image
//! has no CA bundle to trust, and no second crypto library is built.
//!
//! Connecting (DNS, TCP and TLS) has a limit of its own, below the send's: a connection
//! that is slow to come up fails as a connect error, which proves nothing was sent (the
//! email is retried), instead of running into the send's limit, whose expiry may come after
//! the request was handed over (outcome unknown, never retried).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Method, Request, StatusCode, Uri, header};
use bytes::Bytes;
use common::config::Secret;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use super::{Email, Mailer, SendError, excerpt};

/// The longest wait a 429 (`Retry-After`, `X-RateLimit-Reset`) is honoured for. Not
/// tunable: the listener never waits longer between two deliveries anyway.
const MAX_RETRY_AFTER: Duration = common::listener::MAX_RETRY_DELAY;

/// The most of an answer's body that is read (it only explains a refusal).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The limit on connecting: half the send's, and at most 5 s, leaving the request the
/// rest.
pub fn connect_timeout(send_timeout: Duration) -> Duration {
    (send_timeout / 2).min(Duration::from_secs(5))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The HTTPS connector, bounded as a whole (name resolution, TCP and the TLS handshake):
/// its failure is a connect error to the client, so the request never left.
#[derive(Clone)]
struct TimedConnector {
    inner: HttpsConnector<HttpConnector>,
    timeout: Duration,
}

impl tower::Service<Uri> for TimedConnector {
    type Response = <HttpsConnector<HttpConnector> as tower::Service<Uri>>::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected,
                Err(_) => Err(format!("not connected within {timeout:?}").into()),
            }
        })
    }
}

pub struct SendGrid {
    client: Client<TimedConnector, Full<Bytes>>,
    endpoint: String,
    api_key: Secret,
    timeout: Duration,
}

impl SendGrid {
    /// `api_url` is the API's origin (`https://api.sendgrid.com`, or a stand-in's).
    pub fn new(api_url: &str, api_key: Secret, timeout: Duration) -> anyhow::Result<Self> {
        let connect_timeout = connect_timeout(timeout);
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let connector = TimedConnector {
            inner: connector,
            timeout: connect_timeout,
        };
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
            let retry_after = retry_after(response.headers(), SystemTime::now());
            // The answer decides; its body only explains a refusal (and is read up to a
            // limit: a huge or endless one must not hold the send until its timeout).
            let text = match Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
            {
                Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                Err(err) => format!("(answer not read: {err})"),
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

/// How long SendGrid asked to wait: `Retry-After` (seconds) or `X-RateLimit-Reset` (the
/// epoch second the rate limit resets), the later of the two, at most [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let seconds = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
    };
    let after = seconds(header::RETRY_AFTER.as_str()).map(Duration::from_secs);
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let until_reset =
        seconds("x-ratelimit-reset").map(|reset| Duration::from_secs(reset).saturating_sub(now));
    after
        .into_iter()
        .chain(until_reset)
        .max()
        .map(|wait| wait.min(MAX_RETRY_AFTER))
}

/// What SendGrid's answer means: 2xx accepted; 429 and 5xx not accepted, retried; 401 and
/// 403 (the API key is wrong, revoked or lacks the Mail Send permission) a configuration
/// error, logged as such and retried, so that every email does not go to the dead letters
/// until the key is fixed; any other 4xx a request it will never accept (dead-lettered with
/// its reason).
fn answer(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Result<(), SendError> {
    let reason = format!("SendGrid answered {status}: {}", excerpt(body, 300));
    if status.is_success() {
        Ok(())
    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Err(SendError::Transient {
            reason,
            after: retry_after,
        })
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        tracing::error!(
            %status,
            reason,
            "SendGrid refused the API key (SENDGRID_API_KEY): emails wait until it is fixed"
        );
        Err(SendError::Transient {
            reason,
            after: None,
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
        for status in [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN] {
            assert!(
                matches!(answer(status, None, ""), Err(SendError::Transient { .. })),
                "{status}: a configuration error, retried"
            );
        }
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
    fn a_rate_limit_reset_is_honoured_besides_retry_after() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().unwrap());
            }
            map
        };
        assert_eq!(retry_after(&headers(&[]), now), None);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")]), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-reset", "1000007")]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "2"), ("x-ratelimit-reset", "1000005")]),
                now
            ),
            Some(Duration::from_secs(5)),
            "the later of the two"
        );
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-reset", "999990")]), now),
            Some(Duration::ZERO),
            "a reset in the past"
        );
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-reset", "2000000")]), now),
            Some(MAX_RETRY_AFTER)
        );
        assert!(connect_timeout(Duration::from_secs(10)) < Duration::from_secs(10));
        assert_eq!(
            connect_timeout(Duration::from_secs(4)),
            Duration::from_secs(2)
        );
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
