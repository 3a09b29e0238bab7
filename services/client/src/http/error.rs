//! Pages for what went wrong: never a stack trace, never JSON, always a way back.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use common::error::ErrorCause;

use crate::backend::{BackendError, Upstream};
use crate::http::views::Layout;

/// What a page handler can fail with; each variant says what the visitor sees.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// 404 page.
    #[error("not found")]
    NotFound,
    /// 403 page with what is not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 405 page.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 400 page: a form the client did not send (wrong content type, too large).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 303 to the sign-in page, coming back to `next` afterwards.
    #[error("sign-in required")]
    SignIn { next: Option<String> },
    /// 303 to auth's refresh, which renews the session and comes back to `back`: the
    /// access token expired, and only auth's paths see the refresh cookie.
    #[error("session needs refreshing")]
    Refresh { back: String },
    /// 503 page naming the service that is down.
    #[error("{} unavailable: {reason}", service.name())]
    Unavailable { service: Upstream, reason: String },
    /// 500 page; the cause is logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl PageError {
    pub fn sign_in(next: impl Into<String>) -> Self {
        Self::SignIn {
            next: Some(next.into()),
        }
    }
}

impl From<BackendError> for PageError {
    fn from(err: BackendError) -> Self {
        match err {
            BackendError::Unavailable { service, reason } => Self::Unavailable { service, reason },
            BackendError::Rejected { status, errors, .. } => match status {
                StatusCode::UNAUTHORIZED => Self::SignIn { next: None },
                // A malformed id is a page that does not exist.
                StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST => Self::NotFound,
                StatusCode::FORBIDDEN => Self::Forbidden(
                    errors
                        .into_iter()
                        .next()
                        .map(|e| e.message)
                        .unwrap_or_else(|| "This page belongs to someone else.".into()),
                ),
                _ => Self::Internal(anyhow::anyhow!(
                    "unhandled refusal {status}: {:?}",
                    errors.first().map(|e| &e.message)
                )),
            },
            err @ BackendError::Unexpected { .. } => Self::Internal(err.into()),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    message: String,
    status: u16,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        // A 5xx's cause rides on the response to the one line that logs the request.
        let mut cause = None;
        let (status, heading, message) = match &self {
            Self::SignIn { next } => {
                let target = match next {
                    Some(next) => format!("/auth/signin?next={}", encode(next)),
                    None => "/auth/signin".to_owned(),
                };
                return Redirect::to(&target).into_response();
            }
            Self::Refresh { back } => {
                return Redirect::to(&format!("/api/users/refresh?redirect={}", encode(back)))
                    .into_response();
            }
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "We couldn't find that page. It may have moved, or the link may be mistyped."
                    .to_owned(),
            ),
            Self::Forbidden(reason) => (
                StatusCode::FORBIDDEN,
                "Not yours to see",
                format!("{reason}."),
            ),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "That didn't work",
                "This page can't be used that way. Please start again from the home page."
                    .to_owned(),
            ),
            Self::BadRequest(reason) => {
                tracing::debug!(reason, "bad request");
                (
                    StatusCode::BAD_REQUEST,
                    "That didn't work",
                    "The request could not be read. Please go back and try again.".to_owned(),
                )
            }
            Self::Unavailable { service, reason } => {
                cause = Some(format!("{} unavailable: {reason}", service.name()));
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    format!(
                        "{} is not available right now. Please try again in a moment.",
                        service.label()
                    ),
                )
            }
            Self::Internal(err) => {
                cause = Some(format!("{err:?}"));
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Sorry, something went wrong on our side. Please try again.".to_owned(),
                )
            }
        };
        let page = ErrorPage {
            layout: Layout::bare(heading),
            heading: heading.to_owned(),
            message,
            status: status.as_u16(),
        };
        let mut response = (status, page).into_response();
        if let Some(cause) = cause {
            response.extensions_mut().insert(ErrorCause(cause.into()));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// Percent-encodes a query value (a local path for `next`).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char);
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 5xx page is logged once, by the line that logs the finished request: its cause
    /// rides on the response for that line, and never reaches the page.
    #[test]
    fn a_failed_page_carries_its_cause_to_the_request_log_not_to_the_visitor() {
        let response = PageError::Internal(anyhow::anyhow!("the template broke")).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = response
            .extensions()
            .get::<ErrorCause>()
            .map(|c| c.0.to_string());
        assert!(cause.is_some_and(|c| c.contains("the template broke")));
        let unavailable = PageError::Unavailable {
            service: Upstream::Orders,
            reason: "connection refused".into(),
        }
        .into_response();
        let cause = unavailable
            .extensions()
            .get::<ErrorCause>()
            .map(|c| c.0.to_string());
        assert!(cause.is_some_and(|c| c.contains("connection refused")));
    }
}
