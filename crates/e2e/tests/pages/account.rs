//! Sign up, sign in, sign out: forms posted to the client, the auth service behind it,
//! and its session cookie passed through to the browser.

use crate::helpers::{Down, Options, spawn_app, spawn_app_with};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn the_header_offers_sign_up_and_sign_in_when_signed_out() {
    let app = spawn_app().await;
    let page = app.browser().get("/").await;
    assert_eq!(page.status, 200);
    page.assert_has(&[
        "href=\"/auth/signup\"",
        "href=\"/auth/signin\"",
        "Tickets for sale",
    ]);
    page.assert_lacks(&["Sign out", "My orders"]);
}

#[tokio::test]
async fn signup_passes_the_session_cookie_on_and_goes_home_signed_in() {
    let app = spawn_app().await;
    let browser = app.browser();
    let page = browser
        .post(
            "/auth/signup",
            &[("email", "ann@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), "/");
    let cookies = page.set_cookies();
    let cookie = cookies.iter().find(|c| c.starts_with("session=")).unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }

    let home = browser.follow(&page).await;
    home.assert_has(&["ann@example.com", "Sign out", "Sell tickets", "My orders"]);
    home.assert_lacks(&["href=\"/auth/signin\""]);
}

#[tokio::test]
async fn signup_errors_appear_next_to_their_fields() {
    let app = spawn_app().await;
    let page = app
        .browser()
        .post(
            "/auth/signup",
            &[("email", "not-an-email"), ("password", "short")],
        )
        .await;
    assert_eq!(page.status, 400);
    page.assert_has(&[
        r#"<p class="field-error" id="email-error">Email must be valid</p>"#,
        r#"<p class="field-error" id="password-error">Password must be between 8 and 128 characters</p>"#,
        r#"aria-invalid="true" aria-describedby="email-error""#,
        // The email is kept, the password is not.
        r#"value="not-an-email""#,
    ]);
    page.assert_lacks(&["value=\"short\""]);
    assert!(page.set_cookies().is_empty());
}

#[tokio::test]
async fn a_taken_email_is_reported_next_to_the_email() {
    let app = spawn_app().await;
    let (_, email) = app.signed_in_browser().await;
    let page = app
        .browser()
        .post("/auth/signup", &[("email", &email), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, 409);
    page.assert_has(&[r#"id="email-error">Email is already in use</p>"#]);
}

#[tokio::test]
async fn signin_with_a_wrong_password_says_so_above_the_form() {
    let app = spawn_app().await;
    let (_, email) = app.signed_in_browser().await;
    let browser = app.browser();
    let page = browser
        .post(
            "/auth/signin",
            &[("email", &email), ("password", "not the password")],
        )
        .await;
    assert_eq!(page.status, 401);
    page.assert_has(&[
        r#"<div class="alert" role="alert">"#,
        "The email or password is incorrect.",
    ]);
    assert!(browser.session().is_none());

    let page = browser
        .post("/auth/signin", &[("email", &email), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, 303);
    assert!(page.set_cookies().iter().any(|c| c.starts_with("session=")));
    browser.follow(&page).await.assert_has(&[&email]);
}

#[tokio::test]
async fn signin_returns_to_the_page_that_asked_but_never_off_site() {
    let app = spawn_app().await;
    let (_, email) = app.signed_in_browser().await;
    let browser = app.browser();
    let page = browser.get("/tickets/new").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/auth/signin?next=/tickets/new");
    let form = browser.follow(&page).await;
    form.assert_has(&[r#"name="next" value="/tickets/new""#]);

    let page = browser
        .post(
            "/auth/signin",
            &[
                ("email", &email),
                ("password", PASSWORD),
                ("next", "/tickets/new"),
            ],
        )
        .await;
    assert_eq!(page.location(), "/tickets/new");

    let other = app.browser();
    let page = other
        .post(
            "/auth/signin",
            &[
                ("email", &email),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(page.location(), "/");
}

#[tokio::test]
async fn signed_in_visitors_skip_the_sign_in_form() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_browser().await;
    let page = browser.get("/auth/signin").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/");
}

#[tokio::test]
async fn sign_out_is_a_post_that_clears_the_cookie_and_goes_home() {
    let app = spawn_app().await;
    let (browser, email) = app.signed_in_browser().await;
    let home = browser.get("/").await;
    home.assert_has(&[r#"<form method="post" action="/auth/signout""#]);

    let page = browser.post("/auth/signout", &[]).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/");
    page.assert_clears_cookies(&["session", "refresh"]);
    assert!(browser.session().is_none());
    let home = browser.follow(&page).await;
    home.assert_has(&["href=\"/auth/signin\""]);
    home.assert_lacks(&[&email]);

    // A GET of the sign-out address asks, it does not act.
    let (browser, _) = app.signed_in_browser().await;
    let page = browser.get("/auth/signout").await;
    assert_eq!(page.status, 200);
    page.assert_has(&[r#"<form method="post" action="/auth/signout">"#]);
    assert!(browser.session().is_some());
}

#[tokio::test]
async fn sign_out_still_works_when_auth_is_down() {
    let app = spawn_app_with(Options {
        down: vec![Down::Auth],
        ..Options::default()
    })
    .await;
    let browser = app.browser();
    browser.set_session(Some("some.session.token"));
    let page = browser.post("/auth/signout", &[]).await;
    assert_eq!(page.status, 303);
    page.assert_clears_cookies(&["session", "refresh"]);
}

#[tokio::test]
async fn a_page_with_a_lapsed_session_sends_the_browser_to_refresh_it_and_back() {
    let app = spawn_app().await;
    let browser = app.browser();
    let now = chrono::Utc::now().timestamp();
    let lapsed = common::auth::TokenSigner::new(
        &testkit::test_private_key(),
        std::time::Duration::from_secs(60),
    )
    .sign(&common::auth::Claims {
        id: testkit::new_user_id(),
        email: "ann@example.com".into(),
        iat: now - 1000,
        exp: now - 100,
        sid: None,
    })
    .unwrap();
    browser.set_session(Some(&lapsed));
    let page = browser.get("/orders?page=2").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location(),
        "/api/users/refresh?redirect=/orders%3Fpage%3D2"
    );

    // A session that is not lapsed but refused (a forged token) is simply signed out.
    browser.set_session(Some("forged.token.value"));
    let home = browser.get("/").await;
    assert_eq!(home.status, 200);
    home.assert_has(&["href=\"/auth/signin\""]);
}
