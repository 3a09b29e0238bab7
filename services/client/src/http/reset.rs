//! A forgotten password: `/forgot-password` asks auth to email a reset link (the same
//! answer whether or not an account has the email), and `/reset-password?token=…`, the
//! page that link opens, sets a new password with it.
//!
//! The token is in the link's query string only for the first request: that answers with
//! a 303 to `/reset-password` and the token in a cookie (`HttpOnly`, `Path=/reset-password`,
//! an hour at most), which the form's POST then carries. So the token is not in the address
//! bar, the history, or a later request line or Referer. The cookie is `SameSite=Lax`, not
//! `Strict`: the link is opened from a mail client, often another site, and browsers send
//! no `Strict` cookie on a navigation another site started, redirects included, so the
//! form would not find it; the POST it goes with is refused from other sites anyway
//! (`same_origin_posts`). The client logs paths, never queries, forms or cookies, and the
//! reset pages answer `Referrer-Policy: no-referrer`.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_cookies::cookie::{Cookie, SameSite};
use tower_cookies::{Cookies, cookie};

use crate::backend::BackendError;
use crate::http::PageError;
use crate::http::forms::{FormErrors, HtmlForm, HtmlQuery};
use crate::http::views::Layout;
use crate::state::AppState;

const MISMATCH: &str = "The two passwords do not match.";
/// The cookie that carries a reset link's token from the link to the form's POST.
const RESET_COOKIE: &str = "reset_token";
const RESET_PATH: &str = "/reset-password";
/// Longer than auth's tokens live by default (`PASSWORD_RESET_TTL_MINUTES`, 30): auth
/// decides whether the token is still good.
const RESET_COOKIE_MAX_AGE: cookie::time::Duration = cookie::time::Duration::hours(1);
const INCOMPLETE: &str = "This password reset link is incomplete. Please open the link from the \
     email again, or ask for a new one.";

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
    /// Whether there is a token to set a password with (in the cookie): the form then.
    usable: bool,
    errors: FormErrors,
}

impl ResetPage {
    fn new(usable: bool, errors: FormErrors) -> Self {
        Self {
            layout: Layout::new("Reset password", None),
            usable,
            errors,
        }
    }

    /// The form again with what is wrong.
    fn form(status: StatusCode, errors: FormErrors) -> Response {
        no_referrer((status, Self::new(true, errors)).into_response())
    }

    /// The page for a link that cannot be used (none, expired, used or replaced); the
    /// cookie is removed.
    fn unusable(cookies: &Cookies, message: &str) -> Response {
        cookies.remove(Cookie::build((RESET_COOKIE, "")).path(RESET_PATH).build());
        let mut errors = FormErrors::default();
        errors.add_general(message);
        no_referrer((StatusCode::BAD_REQUEST, Self::new(false, errors)).into_response())
    }
}

/// Not even this site learns the reset page's address from a Referer.
fn no_referrer(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The cookie that holds the token; `Secure` when the visitor came over HTTPS (as the
/// proxy in front reports it).
fn reset_cookie(token: String, headers: &HeaderMap) -> Cookie<'static> {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    Cookie::build((RESET_COOKIE, token))
        .path(RESET_PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https)
        .max_age(RESET_COOKIE_MAX_AGE)
        .build()
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
    /// Forms rendered before the token moved to a cookie had it in a hidden field.
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
    HtmlForm(form): HtmlForm<EmailForm>,
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

/// `GET /reset-password?token=…`: the token into the cookie, and a 303 to the same page
/// without it. `GET /reset-password`: the form when the cookie holds a token, else why
/// the link cannot be used.
pub async fn reset_page(
    HtmlQuery(query): HtmlQuery<TokenQuery>,
    cookies: Cookies,
    headers: HeaderMap,
) -> Response {
    match query.token {
        Some(token) if plausible(&token) => {
            cookies.add(reset_cookie(token, &headers));
            no_referrer(Redirect::to(RESET_PATH).into_response())
        }
        Some(_) => ResetPage::unusable(&cookies, INCOMPLETE),
        None if cookie_token(&cookies).is_some() => {
            ResetPage::form(StatusCode::OK, FormErrors::default())
        }
        None => ResetPage::unusable(&cookies, INCOMPLETE),
    }
}

/// The token the reset cookie holds, if it may be one.
fn cookie_token(cookies: &Cookies) -> Option<String> {
    cookies
        .get(RESET_COOKIE)
        .map(|cookie| cookie.value().to_owned())
        .filter(|token| plausible(token))
}

/// `POST /reset-password`: on to "password changed", or the form again with what is wrong.
pub async fn reset(
    State(state): State<AppState>,
    cookies: Cookies,
    HtmlForm(form): HtmlForm<ResetForm>,
) -> Result<Response, PageError> {
    let Some(token) = cookie_token(&cookies).or(Some(form.token).filter(|t| plausible(t))) else {
        return Ok(ResetPage::unusable(
            &cookies,
            "This password reset link is incomplete. Please ask for a new one.",
        ));
    };
    if form.password != form.password_confirm {
        let mut errors = FormErrors::default();
        errors.add_field("password-confirm", MISMATCH);
        return Ok(ResetPage::form(StatusCode::BAD_REQUEST, errors));
    }
    match state
        .backend
        .confirm_password_reset(&token, &form.password)
        .await
    {
        Ok(()) => {
            tracing::info!("password reset through the client");
            cookies.remove(Cookie::build((RESET_COOKIE, "")).path(RESET_PATH).build());
            Ok(no_referrer(
                Redirect::to("/reset-password/done").into_response(),
            ))
        }
        Err(BackendError::Rejected { status, errors, .. }) if status == StatusCode::BAD_REQUEST => {
            if errors.iter().any(|e| e.field.as_deref() == Some("token")) {
                return Ok(ResetPage::unusable(
                    &cookies,
                    "This password reset link has expired or has already been used. Please ask \
                     for a new one.",
                ));
            }
            let errors = FormErrors::from_service(&errors, &["password"], None);
            Ok(ResetPage::form(status, errors))
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
