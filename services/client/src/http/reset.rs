//! A forgotten password: `/forgot-password` asks auth to email a reset link (the same
//! answer whether or not an account has the email), and `/reset-password?token=…`, the
//! page that link opens, sets a new password with it.
//!
//! The token travels in the link's query string and in a hidden field of the form: the
//! client logs paths, never queries or forms, and the pages' `Referrer-Policy:
//! same-origin` keeps the link from other sites.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::app::AppState;
use crate::backend::BackendError;
use crate::http::PageError;
use crate::http::forms::{FormErrors, PageForm, PageQuery};
use crate::http::views::Layout;

const MISMATCH: &str = "The two passwords do not match.";

#[derive(Template, WebTemplate)]
#[template(path = "forgot_password.html")]
pub struct ForgotPage {
    layout: Layout,
    email: String,
    errors: FormErrors,
}

impl ForgotPage {
    fn new(email: String, errors: FormErrors) -> Self {
        Self {
            layout: Layout::new("Forgot password", None),
            email,
            errors,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "reset_password.html")]
pub struct ResetPage {
    layout: Layout,
    /// The link's token, sent back with the form; `None` when it cannot be used.
    token: Option<String>,
    errors: FormErrors,
}

impl ResetPage {
    fn new(token: Option<String>, errors: FormErrors) -> Self {
        Self {
            layout: Layout::new("Reset password", None),
            token,
            errors,
        }
    }

    /// The page for a link that cannot be used (none, expired, used or replaced).
    fn unusable(message: &str) -> Response {
        let mut errors = FormErrors::default();
        errors.add_general(message);
        (StatusCode::BAD_REQUEST, Self::new(None, errors)).into_response()
    }
}

/// The page after either form: what happened and where to go next.
#[derive(Template, WebTemplate)]
#[template(path = "notice.html")]
pub struct NoticePage {
    layout: Layout,
    heading: &'static str,
    paragraphs: &'static [&'static str],
    link_href: &'static str,
    link_label: &'static str,
}

#[derive(Debug, Default, Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

/// `GET /forgot-password`
pub async fn forgot_page() -> Response {
    ForgotPage::new(String::new(), FormErrors::default()).into_response()
}

/// `POST /forgot-password`: on to the same "check your email" page whatever the email;
/// an invalid email or too many requests are shown on the form.
pub async fn forgot(
    State(state): State<AppState>,
    PageForm(form): PageForm<EmailForm>,
) -> Result<Response, PageError> {
    let email = form.email.trim();
    match state.backend.request_password_reset(email).await {
        Ok(()) => Ok(Redirect::to("/forgot-password/sent").into_response()),
        Err(BackendError::Rejected { status, errors, .. })
            if matches!(
                status,
                StatusCode::BAD_REQUEST | StatusCode::TOO_MANY_REQUESTS
            ) =>
        {
            let errors = FormErrors::from_service(&errors, &["email"], None);
            Ok((status, ForgotPage::new(email.to_owned(), errors)).into_response())
        }
        Err(err) => Err(err.into()),
    }
}

/// `GET /forgot-password/sent`
pub async fn forgot_sent() -> NoticePage {
    NoticePage {
        layout: Layout::new("Check your email", None),
        heading: "Check your email",
        paragraphs: &[
            "If an account exists for that address, we sent a link to reset its password.",
            "The link works once and only for a short while. Nothing arrived? Check your spam \
             folder, or ask for another link.",
        ],
        link_href: "/auth/signin",
        link_label: "Back to sign in",
    }
}

/// `GET /reset-password?token=…`: the form, or why the link cannot be used.
pub async fn reset_page(PageQuery(query): PageQuery<TokenQuery>) -> Response {
    match query.token.filter(|token| plausible(token)) {
        Some(token) => ResetPage::new(Some(token), FormErrors::default()).into_response(),
        None => ResetPage::unusable(
            "This password reset link is incomplete. Please open the link from the email again, \
             or ask for a new one.",
        ),
    }
}

/// `POST /reset-password`: on to "password changed", or the form again with what is wrong.
pub async fn reset(
    State(state): State<AppState>,
    PageForm(form): PageForm<ResetForm>,
) -> Result<Response, PageError> {
    if !plausible(&form.token) {
        return Ok(ResetPage::unusable(
            "This password reset link is incomplete. Please ask for a new one.",
        ));
    }
    if form.password != form.password_confirm {
        let mut errors = FormErrors::default();
        errors.add_field("password-confirm", MISMATCH);
        let page = ResetPage::new(Some(form.token), errors);
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    match state
        .backend
        .confirm_password_reset(&form.token, &form.password)
        .await
    {
        Ok(()) => {
            tracing::info!("password reset through the client");
            Ok(Redirect::to("/reset-password/done").into_response())
        }
        Err(BackendError::Rejected { status, errors, .. }) if status == StatusCode::BAD_REQUEST => {
            if errors.iter().any(|e| e.field.as_deref() == Some("token")) {
                return Ok(ResetPage::unusable(
                    "This password reset link has expired or has already been used. Please ask \
                     for a new one.",
                ));
            }
            let errors = FormErrors::from_service(&errors, &["password"], None);
            let page = ResetPage::new(Some(form.token), errors);
            Ok((status, page).into_response())
        }
        Err(err) => Err(err.into()),
    }
}

/// `GET /reset-password/done`
pub async fn reset_done() -> NoticePage {
    NoticePage {
        layout: Layout::new("Password changed", None),
        heading: "Your password has been changed",
        paragraphs: &[
            "You can now sign in with your new password. For your safety, every session of \
             your account has been signed out.",
        ],
        link_href: "/auth/signin",
        link_label: "Sign in",
    }
}

/// What a token from a link may look like (auth's are 43 URL-safe characters); anything
/// else is not sent on.
fn plausible(token: &str) -> bool {
    (16..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_url_safe_tokens_are_sent_on() {
        assert!(plausible("k1VbQ0J3m6sQeLwX2u8Z9yH4aT5cR7dN0pE1fG2hI3j"));
        for bad in ["", "short", "has space in it at all", "a/b+c=d/e+f=g/h+i=j"] {
            assert!(!plausible(bad), "{bad}");
        }
    }
}
