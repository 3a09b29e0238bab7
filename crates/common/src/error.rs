//! The one error type every HTTP handler returns, rendered in the common JSON shape
//! `{"errors":[{"message":"…","field":"…"}]}`.
//!
//! Domain and store layers use their own `thiserror` enums and convert into [`ApiError`]
//! at the handler boundary. Internal causes are never sent to clients: they ride on the
//! response ([`ErrorCause`]) to the one line that logs the finished request.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::Duration;

/// One entry of the `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorItem {
    /// What is wrong, safe to show to a person.
    pub message: String,
    /// The request field it is about, where it is about one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(nullable = false)]
    pub field: Option<String>,
}

impl ErrorItem {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn message(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: None,
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub errors: Vec<ErrorItem>,
}

/// Errors an HTTP handler can answer with; each variant documents its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: one entry per failing field, all reported at once.
    #[error("validation failed")]
    Validation(Vec<ErrorItem>),
    /// 400: a request that cannot be understood (bad JSON, bad query string).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401 "Not authenticated": no session, or a malformed, tampered or expired one.
    #[error("not authenticated")]
    NotAuthenticated,
    /// 401 with a specific message (e.g. "Invalid credentials").
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 402: the payment provider declined.
    #[error("payment required: {0}")]
    PaymentRequired(String),
    /// 403: signed in but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404 with a message naming what was not found.
    #[error("not found: {0}")]
    NotFound(String),
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 413.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 429 with `Retry-After`: a rate limit or a lock; the message is safe to show.
    #[error("too many requests: {0}")]
    TooManyRequests(String, Duration),
    /// 503: a dependency is down or timed out; the message is safe to show.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// 503 with `Retry-After`: this service is at capacity and sheds the request.
    #[error("overloaded: {0}")]
    Overloaded(String, Duration),
    /// 500: anything unexpected. The cause is logged, the client sees a generic message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn field(field: &str, message: &str) -> Self {
        Self::Validation(vec![ErrorItem::field(field, message)])
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    /// When a client may try again, for the answers that say so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::TooManyRequests(_, after) | Self::Overloaded(_, after) => Some(*after),
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotAuthenticated | Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Overloaded(..) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(err) if is_store_unreachable(err) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn items(&self) -> Vec<ErrorItem> {
        let message = match self {
            Self::Validation(items) => return items.clone(),
            Self::NotAuthenticated => "Not authenticated",
            Self::MethodNotAllowed => "Method not allowed",
            Self::PayloadTooLarge => "Request body is too large",
            Self::UnsupportedMediaType => "Expected a JSON body (Content-Type: application/json)",
            Self::Internal(err) if is_store_unreachable(err) => {
                "A service we depend on is unavailable; please try again"
            }
            Self::Internal(_) => "Something went wrong",
            Self::BadRequest(m)
            | Self::Unauthorized(m)
            | Self::PaymentRequired(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::Conflict(m)
            | Self::Unavailable(m)
            | Self::TooManyRequests(m, _)
            | Self::Overloaded(m, _) => m,
        };
        vec![ErrorItem::message(message)]
    }
}

/// A database that cannot be reached (connection lost, no server selectable) is a 503
/// the client may retry, not a bug: nothing was decided.
fn is_store_unreachable(err: &anyhow::Error) -> bool {
    use mongodb::error::ErrorKind;
    err.chain().any(|cause| {
        cause
            .downcast_ref::<mongodb::error::Error>()
            .is_some_and(|e| {
                matches!(
                    e.kind.as_ref(),
                    ErrorKind::Io(_)
                        | ErrorKind::ServerSelection { .. }
                        | ErrorKind::ConnectionPoolCleared { .. }
                )
            })
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Not logged here: the cause rides on the response to the finished request's line
        // (`telemetry::log_finished`), so a failure is one line, with its cause.
        let cause = match &self {
            Self::Internal(err) => Some(format!("{err:?}")),
            Self::Unavailable(reason) => Some(reason.clone()),
            _ => None,
        };
        let status = self.status();
        let retry_after = self.retry_after();
        let mut response = (
            status,
            Json(ErrorBody {
                errors: self.items(),
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            // A cookie session, not HTTP auth: tell clients which scheme without a browser prompt.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Cookie"));
        }
        if let Some(cause) = cause {
            response.extensions_mut().insert(ErrorCause(cause.into()));
        }
        if let Some(after) = retry_after {
            // Whole seconds, rounded up: "0" would invite an immediate retry.
            let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

/// Why a request failed (a 500's cause, a 503's reason), carried on the response to the
/// line that logs the finished request, never sent to the client.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub std::sync::Arc<str>);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            // Syntax errors (400) and type mismatches (422) are both a bad request to our clients.
            _ => Self::BadRequest(rejection.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

/// A path segment that cannot be read (not UTF-8 once decoded): a bad request, in our
/// shape rather than axum's plain text.
impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

/// A raw body that cannot be read: over the limit (413), or cut short.
impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            _ => Self::BadRequest(rejection.body_text()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::BodyExt;

    async fn render(err: ApiError) -> (StatusCode, serde_json::Value) {
        let response = err.into_response();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn validation_lists_every_field_with_its_name() {
        let (status, body) = render(ApiError::Validation(vec![
            ErrorItem::field("email", "Email must be valid"),
            ErrorItem::field("password", "Password must be between 8 and 128 characters"),
        ]))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["errors"][0]["field"], "email");
        assert_eq!(body["errors"][1]["field"], "password");
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let (status, body) = render(ApiError::internal(anyhow::anyhow!(
            "db password is hunter2"
        )))
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            serde_json::json!({"errors":[{"message":"Something went wrong"}]})
        );
        // The cause goes to the log line only.
        let response =
            ApiError::internal(anyhow::anyhow!("db password is hunter2")).into_response();
        let cause = response.extensions().get::<ErrorCause>().unwrap();
        assert!(cause.0.contains("hunter2"));
    }

    #[tokio::test]
    async fn an_unreachable_database_is_a_503_to_retry_not_a_500() {
        let lost = mongodb::error::Error::from(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "unexpected end of file",
        ));
        let (status, body) = render(ApiError::internal(lost)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body["errors"][0]["message"],
            "A service we depend on is unavailable; please try again"
        );
    }

    #[tokio::test]
    async fn limits_say_when_to_come_back_in_whole_seconds() {
        let response = ApiError::TooManyRequests("Slow down".into(), Duration::from_millis(1500))
            .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let response = ApiError::Overloaded("Busy".into(), Duration::ZERO).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let (_, body) = render(ApiError::TooManyRequests(
            "Slow down".into(),
            Duration::ZERO,
        ))
        .await;
        assert_eq!(
            body,
            serde_json::json!({"errors":[{"message":"Slow down"}]})
        );
    }

    #[tokio::test]
    async fn messages_without_field_omit_the_key() {
        let (status, body) = render(ApiError::Conflict("Email is already in use".into())).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(body["errors"][0].get("field").is_none());
    }
}
