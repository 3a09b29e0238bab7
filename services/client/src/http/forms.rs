//! Form plumbing: the form extractor with page errors, the errors shown next to fields,
//! and the checks on values that come from the browser.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use common::error::ErrorItem;

use crate::backend::BackendError;
use crate::http::PageError;

/// `axum::Form`, but an unreadable form is the friendly 400 page.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Form), rejection(PageError))]
pub struct HtmlForm<T>(pub T);

impl From<FormRejection> for PageError {
    fn from(rejection: FormRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

/// `axum::Query`, but an unreadable query string is the friendly 400 page.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(PageError))]
pub struct HtmlQuery<T>(pub T);

impl From<QueryRejection> for PageError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

/// Errors to show on a form: per field, and for the form as a whole.
#[derive(Debug, Default)]
pub struct FormErrors {
    fields: Vec<(String, String)>,
    general: Vec<String>,
}

impl FormErrors {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, message)| message.as_str())
    }

    pub fn general(&self) -> &[String] {
        &self.general
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_empty()
    }

    pub fn add_field(&mut self, field: &str, message: impl Into<String>) {
        let message = message.into();
        match self.fields.iter_mut().find(|(f, _)| f == field) {
            // Several messages for one field read as one sentence each.
            Some((_, existing)) => {
                existing.push(' ');
                existing.push_str(&message);
            }
            None => self.fields.push((field.to_owned(), message)),
        }
    }

    pub fn add_general(&mut self, message: impl Into<String>) {
        self.general.push(message.into());
    }

    /// A service's refusal spread over the form: each error goes next to its field when
    /// the form has that field, otherwise to `unfielded` (e.g. "Email is already in use"
    /// belongs next to the email), otherwise above the form.
    pub fn from_service(
        errors: &[ErrorItem],
        form_fields: &[&str],
        unfielded: Option<&str>,
    ) -> Self {
        let mut out = Self::default();
        for error in errors {
            let field = error
                .field
                .as_deref()
                .filter(|f| form_fields.contains(f))
                .or(unfielded);
            match field {
                Some(field) => out.add_field(field, &error.message),
                None => out.add_general(&error.message),
            }
        }
        if out.is_empty() {
            out.add_general("That didn't work. Please check the form and try again.");
        }
        out
    }
}

/// What a form handler does with a service's answer: refusals it can show on the form,
/// everything else becomes an error page.
pub fn refusal(err: BackendError) -> Result<(axum::http::StatusCode, Vec<ErrorItem>), PageError> {
    use axum::http::StatusCode;
    match err {
        BackendError::Rejected { status, errors, .. }
            if matches!(
                status,
                StatusCode::BAD_REQUEST
                    | StatusCode::PAYMENT_REQUIRED
                    | StatusCode::FORBIDDEN
                    | StatusCode::CONFLICT
                    | StatusCode::UNPROCESSABLE_ENTITY
            ) =>
        {
            Ok((status, errors))
        }
        other => Err(other.into()),
    }
}

/// A path to come back to after signing in: local only, so the form cannot send the
/// visitor to another site.
pub fn local_path(next: Option<&str>) -> Option<String> {
    let next = next?.trim();
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    local.then(|| next.to_owned())
}

/// An id from the URL: the services use Mongo ObjectIds; anything else cannot exist.
pub fn valid_id(id: &str) -> Result<&str, PageError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(id).ok_or(PageError::NotFound)
}

/// A price typed in a form, as the JSON number the tickets service expects. The service
/// judges the range and the decimals; this only refuses what is not a number at all.
pub fn price_value(raw: &str) -> Result<serde_json::Value, &'static str> {
    let raw = raw.trim().trim_start_matches('$').trim();
    if raw.is_empty() {
        return Err("Price is required");
    }
    raw.parse::<f64>()
        .ok()
        .filter(|p| p.is_finite())
        .and_then(serde_json::Number::from_f64)
        .map(serde_json::Value::Number)
        .ok_or("Price must be a number, such as 25 or 19.99")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(
            local_path(Some("/tickets/new")).as_deref(),
            Some("/tickets/new")
        );
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "evil",
            "",
        ] {
            assert_eq!(local_path(Some(bad)), None, "{bad}");
        }
    }

    #[test]
    fn service_errors_land_next_to_their_fields() {
        let errors = vec![
            ErrorItem::field("email", "Email must be valid"),
            ErrorItem::field("password", "Too short"),
            ErrorItem::field("password", "Too simple"),
            ErrorItem::message("Email is already in use"),
        ];
        let form = FormErrors::from_service(&errors, &["email", "password"], None);
        assert_eq!(form.field("email"), Some("Email must be valid"));
        assert_eq!(form.field("password"), Some("Too short Too simple"));
        assert_eq!(form.general(), ["Email is already in use"]);
        let form = FormErrors::from_service(&errors[3..], &["email"], Some("email"));
        assert_eq!(form.field("email"), Some("Email is already in use"));
    }

    #[test]
    fn prices_become_json_numbers() {
        assert_eq!(price_value("19.99").unwrap(), serde_json::json!(19.99));
        assert_eq!(price_value(" $25 ").unwrap(), serde_json::json!(25.0));
        assert!(price_value("").is_err());
        assert!(price_value("ten").is_err());
        assert!(price_value("inf").is_err());
    }

    #[test]
    fn ids_are_plain_tokens() {
        assert!(valid_id("65f1c0ffee").is_ok());
        assert!(valid_id("../x").is_err());
        assert!(valid_id("").is_err());
    }
}
