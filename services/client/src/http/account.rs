//! `/auth/signup`, `/auth/signin`, `/auth/signout`: forms posted to the client, which calls
//! the auth service and hands its session cookie to the browser.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use common::auth::CookiePolicy;
use serde::Deserialize;
use tower_cookies::Cookies;

use crate::backend::{BackendError, Reply, User};
use crate::http::PageError;
use crate::http::error::encode;
use crate::http::forms::{FormErrors, HtmlForm, HtmlQuery, local_path};
use crate::http::views::Layout;
use crate::http::visitor::{BrowserSession, Visitor};
use crate::state::AppState;

const FIELDS: &[&str] = &["email", "password"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    SignUp,
    SignIn,
}

#[derive(Template, WebTemplate)]
#[template(path = "auth.html")]
pub struct AuthPage {
    layout: Layout,
    heading: &'static str,
    intro: &'static str,
    action: &'static str,
    submit: &'static str,
    password_autocomplete: &'static str,
    password_hint: Option<&'static str>,
    /// Offers the way back in for a forgotten password (sign-in only).
    forgot_link: bool,
    switch_text: &'static str,
    switch_label: &'static str,
    switch_href: String,
    email: String,
    next: Option<String>,
    errors: FormErrors,
}

impl AuthPage {
    fn new(mode: Mode, email: String, next: Option<String>, errors: FormErrors) -> Self {
        let with_next = |path: &str| match &next {
            Some(next) => format!("{path}?next={}", encode(next)),
            None => path.to_owned(),
        };
        match mode {
            Mode::SignUp => Self {
                layout: Layout::new("Sign up", None),
                heading: "Sign up",
                intro: "Create an account to sell tickets and buy them.",
                action: "/auth/signup",
                submit: "Sign up",
                password_autocomplete: "new-password",
                password_hint: Some("At least 8 characters."),
                forgot_link: false,
                switch_text: "Already have an account?",
                switch_label: "Sign in",
                switch_href: with_next("/auth/signin"),
                email,
                next,
                errors,
            },
            Mode::SignIn => Self {
                layout: Layout::new("Sign in", None),
                heading: "Sign in",
                intro: "Welcome back.",
                action: "/auth/signin",
                submit: "Sign in",
                password_autocomplete: "current-password",
                password_hint: None,
                forgot_link: true,
                switch_text: "New to GitTix?",
                switch_label: "Create an account",
                switch_href: with_next("/auth/signup"),
                email,
                next,
                errors,
            },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CredentialsForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `GET /auth/signup`
pub async fn signup_page(visitor: Visitor, HtmlQuery(query): HtmlQuery<NextQuery>) -> Response {
    form_page(Mode::SignUp, visitor, query)
}

/// `GET /auth/signin`
pub async fn signin_page(visitor: Visitor, HtmlQuery(query): HtmlQuery<NextQuery>) -> Response {
    form_page(Mode::SignIn, visitor, query)
}

fn form_page(mode: Mode, visitor: Visitor, query: NextQuery) -> Response {
    let next = local_path(query.next.as_deref());
    if visitor.user.is_some() {
        // Already signed in: straight on to where they were going.
        return Redirect::to(next.as_deref().unwrap_or("/")).into_response();
    }
    AuthPage::new(mode, String::new(), next, FormErrors::default()).into_response()
}

/// `POST /auth/signup`
pub async fn signup(
    State(state): State<AppState>,
    BrowserSession(session): BrowserSession,
    HtmlForm(form): HtmlForm<CredentialsForm>,
) -> Result<Response, PageError> {
    let result = state
        .backend
        .signup(&session, form.email.trim(), &form.password)
        .await;
    finish(Mode::SignUp, form, result)
}

/// `POST /auth/signin`
pub async fn signin(
    State(state): State<AppState>,
    BrowserSession(session): BrowserSession,
    HtmlForm(form): HtmlForm<CredentialsForm>,
) -> Result<Response, PageError> {
    let result = state
        .backend
        .signin(&session, form.email.trim(), &form.password)
        .await;
    finish(Mode::SignIn, form, result)
}

/// Signed in: the session cookie and a 303 onwards. Refused: the form again, with the
/// service's messages next to the fields and the email kept (never the password).
fn finish(
    mode: Mode,
    form: CredentialsForm,
    result: Result<Reply<User>, BackendError>,
) -> Result<Response, PageError> {
    let next = local_path(form.next.as_deref());
    match result {
        Ok(reply) => {
            tracing::info!(user.id = %reply.body.id, "signed in through the client");
            Ok(redirect_with_cookies(
                next.as_deref().unwrap_or("/"),
                &reply.set_cookies,
            ))
        }
        Err(BackendError::Rejected { status, errors, .. })
            if matches!(
                status,
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::CONFLICT
            ) =>
        {
            // "Email is already in use" belongs next to the email; a failed sign-in names
            // no field on purpose (which of the two was wrong is not said), so it goes above.
            let unfielded =
                (mode == Mode::SignUp && status == StatusCode::CONFLICT).then_some("email");
            let errors = if status == StatusCode::UNAUTHORIZED {
                let mut form = FormErrors::default();
                form.add_general("The email or password is incorrect.");
                form
            } else {
                FormErrors::from_service(&errors, FIELDS, unfielded)
            };
            let page = AuthPage::new(mode, form.email, next, errors);
            Ok((status, page).into_response())
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "signout.html")]
pub struct SignOutPage {
    layout: Layout,
}

/// `GET /auth/signout`: signing out changes state, so it takes a button (a POST).
pub async fn signout_page(visitor: Visitor) -> Response {
    if visitor.user.is_none() {
        return Redirect::to("/").into_response();
    }
    SignOutPage {
        layout: Layout::new("Sign out", visitor.user),
    }
    .into_response()
}

/// `POST /auth/signout`: ends the session and goes home. Signing out must work even
/// when the auth service is down, so the client then clears the cookies itself (the
/// session then ends when its refresh token expires unused).
pub async fn signout(
    State(state): State<AppState>,
    BrowserSession(session): BrowserSession,
    cookies: Cookies,
) -> Result<Response, PageError> {
    match state.backend.signout(&session).await {
        Ok(reply) => Ok(redirect_with_cookies("/", &reply.set_cookies)),
        Err(BackendError::Unavailable { reason, .. }) => {
            tracing::warn!(
                reason,
                "auth unavailable at sign-out: clearing the cookie here"
            );
            let policy = CookiePolicy { secure: false };
            cookies.add(policy.cleared());
            cookies.add(policy.refresh_cleared());
            Ok(Redirect::to("/").into_response())
        }
        Err(err) => Err(err.into()),
    }
}

/// A 303 to `to` that passes the service's `Set-Cookie` headers on to the browser.
pub fn redirect_with_cookies(to: &str, cookies: &[HeaderValue]) -> Response {
    let mut response = Redirect::to(to).into_response();
    for cookie in cookies {
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    response
}
