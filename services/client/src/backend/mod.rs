//! Calls from the client to the services, server-side, over their internal URLs.
//!
//! Every call forwards the browser's session cookie and hands back the service's
//! `Set-Cookie` headers for the browser. Failures are sorted into what a page can act on:
//! the service is down ([`BackendError::Unavailable`], a 503 page), it refused the request
//! with its usual error list ([`BackendError::Rejected`], shown next to the form fields),
//! or it answered something we cannot read ([`BackendError::Unexpected`], a 500 page).

mod auth;
mod orders;
mod payments;
mod tickets;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use common::error::{ErrorBody, ErrorItem};
use reqwest::{RequestBuilder, Url};
use serde::de::DeserializeOwned;

use crate::config::ServiceUrls;

pub use auth::User;
pub use orders::{Order, OrderStatus};
pub use payments::Payment;
pub use tickets::{DetailsInput, EventDetails, Ticket, TicketSearch};

/// How long a service may take to accept a connection, and to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The services the client calls; named on the 503 page and in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    Auth,
    Tickets,
    Orders,
    Payments,
}

impl Upstream {
    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Tickets => "tickets",
            Self::Orders => "orders",
            Self::Payments => "payments",
        }
    }

    /// What a visitor would call it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Auth => "Accounts",
            Self::Tickets => "Tickets",
            Self::Orders => "Orders",
            Self::Payments => "Payments",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Could not connect, timed out, or answered with a 5xx.
    #[error("{} service unavailable: {reason}", service.name())]
    Unavailable { service: Upstream, reason: String },
    /// A 4xx with the service's error list.
    #[error("{} service answered {status}", service.name())]
    Rejected {
        service: Upstream,
        status: StatusCode,
        errors: Vec<ErrorItem>,
    },
    /// A reply that does not match the service's contract.
    #[error("unexpected reply from the {} service: {reason}", service.name())]
    Unexpected { service: Upstream, reason: String },
}

/// The browser's session token, forwarded to the services as the `session` cookie.
#[derive(Clone, Default)]
pub struct Session(Option<HeaderValue>);

impl Session {
    pub const ANONYMOUS: Self = Self(None);

    /// The token from the browser's cookie; a value that cannot be a header is no session.
    pub fn from_token(token: &str) -> Self {
        if token.is_empty() {
            return Self(None);
        }
        Self(HeaderValue::from_str(&format!("{}={token}", common::auth::SESSION_COOKIE)).ok())
    }

    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a credential: never in logs.
        f.write_str(if self.is_present() {
            "Session([redacted])"
        } else {
            "Session(none)"
        })
    }
}

/// A successful reply: its body, the cookies to pass on to the browser, and the cursor of
/// the next page when the service sent a `Link: <…>; rel="next"` header.
#[derive(Debug)]
pub struct Reply<T> {
    pub body: T,
    pub set_cookies: Vec<HeaderValue>,
    pub next_cursor: Option<String>,
}

impl<T> Reply<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Reply<U> {
        Reply {
            body: f(self.body),
            set_cookies: self.set_cookies,
            next_cursor: self.next_cursor,
        }
    }
}

/// Which page of a list to ask for.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The HTTP client to every service. Cheap to clone.
#[derive(Clone)]
pub struct Backend {
    http: reqwest::Client,
    urls: Arc<ServiceUrls>,
}

impl Backend {
    pub fn new(urls: ServiceUrls) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            // Internal calls: never through a proxy from the environment, never redirected.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("gittix-client")
            .build()?;
        Ok(Self {
            http,
            urls: Arc::new(urls),
        })
    }

    fn base(&self, service: Upstream) -> &Url {
        match service {
            Upstream::Auth => &self.urls.auth,
            Upstream::Tickets => &self.urls.tickets,
            Upstream::Orders => &self.urls.orders,
            Upstream::Payments => &self.urls.payments,
        }
    }

    /// The URL of `segments` under the service's base URL; each segment is percent-encoded,
    /// so an id taken from the browser's path cannot reach another route.
    fn url(&self, service: Upstream, segments: &[&str]) -> Url {
        let mut url = self.base(service).clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(
        &self,
        method: reqwest::Method,
        service: Upstream,
        segments: &[&str],
        session: &Session,
    ) -> RequestBuilder {
        let mut request = self.http.request(method, self.url(service, segments));
        // The page's request id goes on, so the services' log lines share it.
        if let Some(id) = common::request_id::current() {
            request = request.header(common::request_id::HEADER, id);
        }
        // The visitor's address: the services' per-address limits count visitors. The
        // services trust the last entry of `X-Forwarded-For`, which is this one.
        if let Ok(address) = VISITOR_ADDRESS.try_with(ToString::to_string) {
            request = request.header("x-forwarded-for", address);
        }
        // And its trace: the services' request spans continue the page's.
        if let Some(traceparent) = common::trace_context::current() {
            request = request.header(common::trace_context::HEADER, traceparent);
        }
        match &session.0 {
            Some(cookie) => request.header(header::COOKIE, cookie.clone()),
            None => request,
        }
    }

    /// Sends and parses a JSON reply.
    async fn json<T: DeserializeOwned>(
        &self,
        service: Upstream,
        request: RequestBuilder,
    ) -> Result<Reply<T>, BackendError> {
        let (reply, bytes) = self.send(service, request).await?;
        let body = serde_json::from_slice(&bytes).map_err(|err| BackendError::Unexpected {
            service,
            reason: format!("unreadable body: {err}"),
        })?;
        Ok(reply.map(|()| body))
    }

    /// Sends; a 2xx gives its headers and raw body, anything else an error.
    async fn send(
        &self,
        service: Upstream,
        request: RequestBuilder,
    ) -> Result<(Reply<()>, bytes::Bytes), BackendError> {
        let response = request
            .send()
            .await
            .map_err(|err| BackendError::Unavailable {
                service,
                reason: describe(&err),
            })?;
        let status = response.status();
        let set_cookies = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        let next_cursor = response
            .headers()
            .get(header::LINK)
            .and_then(|link| link.to_str().ok())
            .and_then(next_cursor);
        let bytes = response
            .bytes()
            .await
            .map_err(|err| BackendError::Unavailable {
                service,
                reason: describe(&err),
            })?;
        if status.is_success() {
            let reply = Reply {
                body: (),
                set_cookies,
                next_cursor,
            };
            return Ok((reply, bytes));
        }
        if status.is_server_error() {
            return Err(BackendError::Unavailable {
                service,
                reason: format!("answered {status}"),
            });
        }
        let errors = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|body| body.errors)
            .unwrap_or_default();
        Err(BackendError::Rejected {
            service,
            status,
            errors,
        })
    }
}

tokio::task_local! {
    /// The address of the visitor whose page is being served.
    static VISITOR_ADDRESS: std::net::IpAddr;
}

/// Runs `work` (a page request) with `address` as the visitor's address, which every
/// call to a service then carries as `X-Forwarded-For` (only an IP address: "unknown"
/// is not passed on).
pub async fn with_visitor_address<F: Future>(address: String, work: F) -> F::Output {
    match address.parse() {
        Ok(ip) => VISITOR_ADDRESS.scope(ip, work).await,
        Err(_) => work.await,
    }
}

/// The cause of a transport error, without the URL (which `reqwest` puts in `Display`).
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

/// The `cursor` of the `rel="next"` entry of a `Link` header.
fn next_cursor(link: &str) -> Option<String> {
    let base = Url::parse("http://link.invalid/").ok()?;
    link.split(',').find_map(|entry| {
        let (target, params) = entry.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
        if !is_next {
            return None;
        }
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let url = base.join(target).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == "cursor")
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_next_cursor_comes_from_the_rel_next_link() {
        assert_eq!(
            next_cursor(r#"</api/tickets?limit=20&cursor=abc123>; rel="next""#).as_deref(),
            Some("abc123")
        );
        assert_eq!(
            next_cursor(r#"</x?cursor=1>; rel="prev", </x?limit=2&cursor=2>; rel="next""#)
                .as_deref(),
            Some("2")
        );
        assert_eq!(next_cursor(r#"</x?cursor=1>; rel="prev""#), None);
        assert_eq!(next_cursor("garbage"), None);
    }

    #[test]
    fn ids_from_the_browser_stay_one_path_segment() {
        let backend = Backend::new(ServiceUrls {
            auth: "http://auth:3000".parse().unwrap(),
            tickets: "http://tickets:3000/".parse().unwrap(),
            orders: "http://orders:3000/base".parse().unwrap(),
            payments: "http://payments:3000".parse().unwrap(),
        })
        .unwrap();
        assert_eq!(
            backend
                .url(Upstream::Tickets, &["api", "tickets", "../users/x?y"])
                .as_str(),
            "http://tickets:3000/api/tickets/..%2Fusers%2Fx%3Fy"
        );
        assert_eq!(
            backend.url(Upstream::Orders, &["api", "orders"]).as_str(),
            "http://orders:3000/base/api/orders"
        );
    }

    #[test]
    fn session_tokens_are_not_printed() {
        let session = Session::from_token("eyJhbGciOi.secret.sig");
        assert!(!format!("{session:?}").contains("secret"));
        assert!(!Session::from_token("bad\nvalue").is_present());
    }
}
