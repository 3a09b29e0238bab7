use serde_json::json;

use crate::helpers::{session_pair, spawn_app};

#[tokio::test]
async fn signup_returns_201_with_the_user_and_a_session_cookie() {
    let app = spawn_app().await;
    let response = app.signup("  Ann@Example.com ", "correct horse").await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    assert_eq!(response.body["email"], "ann@example.com");
    assert_eq!(response.body["id"].as_str().unwrap().len(), 24);
    let cookies = response.set_cookies();
    assert_eq!(
        cookies.len(),
        2,
        "the access and refresh cookies: {cookies:?}"
    );
    let cookie = cookies.iter().find(|c| c.starts_with("session=")).unwrap();
    for attr in [
        "session=",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Secure",
        // The cookie lasts as long as the session (the refresh token), the token inside
        // 15 minutes: an expired token still reaches the pages, which then refresh it.
        "Max-Age=1209600",
    ] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let user = app.current_user_with_cookie(&session_pair(cookie)).await;
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(user["id"], response.body["id"]);
}

#[tokio::test]
async fn signup_rejects_invalid_input_listing_every_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"email": "nope", "password": "long enough"}),
            vec!["email"],
            "invalid email",
        ),
        (
            json!({"email": "a@b.co", "password": "short"}),
            vec!["password"],
            "short password",
        ),
        (
            json!({"email": "a@b.co", "password": "x".repeat(129)}),
            vec!["password"],
            "long password",
        ),
        (json!({}), vec!["email", "password"], "missing both"),
        (
            json!({"email": 5, "password": ["x"]}),
            vec!["email", "password"],
            "wrong types",
        ),
    ];
    for (body, fields, why) in cases {
        let response = app.post("/api/users/signup", body).await;
        assert_eq!(response.status, 400, "{why}");
        assert_eq!(response.error_fields(), fields, "{why}");
    }
    let response = app.signup("nope", "long enough").await;
    assert_eq!(response.error_message(), "Email must be valid");
}

#[tokio::test]
async fn signup_with_a_taken_email_is_409_whatever_its_case() {
    let app = spawn_app().await;
    assert_eq!(
        app.signup("ann@example.com", "correct horse").await.status,
        201
    );
    let response = app.signup("ANN@example.com", "other password").await;
    assert_eq!(response.status, 409);
    assert_eq!(response.error_message(), "Email is already in use");
}

#[tokio::test]
async fn concurrent_signups_with_one_email_create_exactly_one_user() {
    let app = spawn_app().await;
    let attempts = (0..20).map(|i| {
        let browser = app.browser();
        async move {
            let body = json!({"email": "race@example.com", "password": format!("password-{i}")});
            browser.post("/api/users/signup", body).await.status
        }
    });
    let mut statuses = futures::future::join_all(attempts).await;
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
}
