//! A forgotten password: the sign-in page's link, `/forgot-password` (auth's
//! `password-reset` behind it) and `/reset-password?token=…` (its `confirm`), the token
//! taken from the event auth publishes for notifications to email.

use std::time::Duration;

use testkit::{eventually, stored_events};

use crate::helpers::{Page, TestApp, spawn_app};

const NEW_PASSWORD: &str = "battery staple horse";

/// The token of the `nth` reset asked for in this stack (from 1).
async fn reset_token(app: &TestApp, nth: usize) -> String {
    let events = eventually("the reset event", Duration::from_secs(10), || async {
        let events = stored_events(&app.bus, "user.password_reset_requested").await;
        (events.len() >= nth).then_some(events)
    })
    .await;
    events[nth - 1]["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_sign_in_page_links_to_a_form_that_answers_alike_for_any_email() {
    let app = spawn_app().await;
    let browser = app.browser();
    let signin = browser.get("/auth/signin").await;
    signin.assert_has(&[r#"<a href="/forgot-password" id="forgot-password">Forgot password?</a>"#]);
    let signup = browser.get("/auth/signup").await;
    signup.assert_lacks(&["Forgot password?"]);

    let form = browser.get("/forgot-password").await;
    assert_eq!(form.status, 200);
    form.assert_has(&[
        r#"<form method="post" action="/forgot-password" id="forgot-password-form""#,
        r#"<label for="email">Email</label>"#,
        r#"<input id="email" name="email" type="email""#,
        ">Send reset link</button>",
    ]);

    let (_, email) = app.signed_in_browser().await;
    let mut sent = Vec::new();
    for address in [email.as_str(), "nobody@example.com"] {
        let page = browser
            .post("/forgot-password", &[("email", address)])
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(page.location(), "/forgot-password/sent");
        sent.push(browser.follow(&page).await);
    }
    assert_eq!(
        sent[0].body, sent[1].body,
        "nothing tells which email has an account"
    );
    sent[0].assert_has(&[
        "If an account exists for that address, we sent a link",
        r#"href="/auth/signin""#,
    ]);

    let invalid = browser
        .post("/forgot-password", &[("email", "not-an-email")])
        .await;
    assert_eq!(invalid.status, 400);
    invalid.assert_has(&[
        r#"<p class="field-error" id="email-error">Email must be valid</p>"#,
        r#"value="not-an-email""#,
    ]);
}

/// A browser that keeps every cookie (the reset link's among them) by path, as browsers do.
struct CookieBrowser {
    http: reqwest::Client,
    base: String,
}

impl CookieBrowser {
    fn new(app: &TestApp) -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.address.clone(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(self.http.post(format!("{}{path}", self.base)).form(form))
            .await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Page {
        let response = request
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .unwrap();
        Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }
}

#[tokio::test]
async fn the_emailed_link_sets_a_new_password_once() {
    let app = spawn_app().await;
    let (_, email) = app.signed_in_browser().await;
    let browser = CookieBrowser::new(&app);
    let page = browser.post("/forgot-password", &[("email", &email)]).await;
    assert_eq!(page.status, 303);
    let token = reset_token(&app, 1).await;
    let link = format!("/reset-password?token={token}");

    // The link's token goes into a cookie for the form, and out of the address.
    let opened = browser.get(&link).await;
    assert_eq!(opened.status, 303, "{}", opened.body);
    assert_eq!(opened.location(), "/reset-password");
    assert_eq!(opened.header("referrer-policy"), "no-referrer");
    let cookie = opened.set_cookies().join("\n");
    for part in [
        format!("reset_token={token}"),
        "HttpOnly".into(),
        "SameSite=Lax".into(),
        "Path=/reset-password".into(),
        "Max-Age=3600".into(),
    ] {
        assert!(cookie.contains(&part), "{part} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let form = browser.get("/reset-password").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert_eq!(form.header("referrer-policy"), "no-referrer");
    assert!(!form.body.contains(&token), "the token is not in the page");
    form.assert_has(&[
        r#"<form method="post" action="/reset-password" id="reset-password-form""#,
        r#"<label for="password">New password</label>"#,
        r#"<input id="password" name="password" type="password" autocomplete="new-password""#,
        r#"<label for="password-confirm">Confirm new password</label>"#,
        r#"<input id="password-confirm" name="password_confirm" type="password""#,
        ">Reset password</button>",
    ]);

    let submit = |password: &'static str, confirm: &'static str| {
        let browser = &browser;
        async move {
            browser
                .post(
                    "/reset-password",
                    &[("password", password), ("password_confirm", confirm)],
                )
                .await
        }
    };
    let mismatch = submit(NEW_PASSWORD, "something else").await;
    assert_eq!(mismatch.status, 400);
    mismatch.assert_has(&[
        r#"<p class="field-error" id="password-confirm-error">The two passwords do not match.</p>"#,
    ]);
    let weak = submit("short", "short").await;
    assert_eq!(weak.status, 400);
    weak.assert_has(&[
        r#"<p class="field-error" id="password-error">Password must be between 8 and 128 characters</p>"#,
        r#"id="reset-password-form""#,
    ]);

    let done = submit(NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/reset-password/done");
    assert!(
        done.set_cookies()
            .iter()
            .any(|c| c.starts_with("reset_token=;") && c.contains("Max-Age=0")),
        "the cookie is removed: {:?}",
        done.set_cookies()
    );
    let notice = browser.get(done.location()).await;
    assert_eq!(notice.status, 200);
    notice.assert_has(&[
        "Your password has been changed",
        r#"<a class="button" href="/auth/signin" id="notice-link">Sign in</a>"#,
    ]);

    let old = app
        .browser()
        .post(
            "/auth/signin",
            &[("email", &email), ("password", "correct horse battery")],
        )
        .await;
    assert_eq!(old.status, 401);
    let new = app
        .browser()
        .post(
            "/auth/signin",
            &[("email", &email), ("password", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(new.status, 303, "{}", new.body);

    // The link again: the spent token is refused on submit.
    assert_eq!(browser.get(&link).await.status, 303);
    let again = submit(NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(again.status, 400);
    again.assert_has(&[
        "This password reset link has expired or has already been used.",
        r#"href="/forgot-password" id="request-new-link""#,
    ]);
    again.assert_lacks(&["id=\"reset-password-form\""]);
    assert_eq!(
        browser.get("/reset-password").await.status,
        400,
        "and its cookie removed"
    );
}

#[tokio::test]
async fn a_form_from_before_the_cookie_still_sends_its_hidden_token() {
    let app = spawn_app().await;
    let (_, email) = app.signed_in_browser().await;
    let browser = app.browser();
    browser.post("/forgot-password", &[("email", &email)]).await;
    let token = reset_token(&app, 1).await;
    let done = browser
        .post(
            "/reset-password",
            &[
                ("token", token.as_str()),
                ("password", NEW_PASSWORD),
                ("password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/reset-password/done");
}

#[tokio::test]
async fn a_link_without_a_usable_token_offers_a_new_one() {
    let app = spawn_app().await;
    let browser = app.browser();
    for path in [
        "/reset-password",
        "/reset-password?token=",
        "/reset-password?token=a%20b",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 400, "{path}");
        assert_eq!(page.header("referrer-policy"), "no-referrer");
        page.assert_has(&[
            "This password reset link is incomplete",
            r#"id="request-new-link""#,
        ]);
        page.assert_lacks(&["id=\"password\""]);
    }
    // A well-formed token auth never issued: refused on submit.
    let token = "A".repeat(43);
    let page = browser
        .post(
            "/reset-password",
            &[
                ("token", token.as_str()),
                ("password", NEW_PASSWORD),
                ("password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 400);
    page.assert_has(&["has expired or has already been used"]);
}

#[tokio::test]
async fn each_visitor_has_the_reset_allowance_of_an_address_and_a_refusal_is_shown_on_the_form() {
    let app = spawn_app().await;
    let forgot = |from: &'static str, email: String| {
        let app = &app;
        async move {
            let response = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .post(format!("{}/forgot-password", app.address))
                .header("sec-fetch-site", "same-origin")
                // As the ingress in front of the client appends it.
                .header("x-forwarded-for", from)
                .form(&[("email", email)])
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    // Auth's default: 20 an hour per address. The client passes each visitor's address
    // on, so one visitor using theirs up leaves the others theirs.
    for i in 0..20 {
        let (status, body) = forgot("1.2.3.4", format!("u{i}@example.com")).await;
        assert_eq!(status, 303, "{body}");
    }
    let (status, body) = forgot("1.2.3.4", "u20@example.com".into()).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains(r#"<div class="alert" role="alert">"#)
            && body.contains("Too many password reset requests"),
        "{body}"
    );
    assert!(
        body.contains(r#"value="u20@example.com""#),
        "the email is kept"
    );
    let (status, _) = forgot("5.6.7.8", "u20@example.com".into()).await;
    assert_eq!(status, 303, "another visitor is not limited");
}
