use reqwest::Method;
use serde_json::json;

use crate::helpers::{cookie_pair, spawn_app};

#[tokio::test]
async fn refresh_rotates_the_token_and_a_reused_one_revokes_the_session() {
    let app = spawn_app().await;
    let ann = app.browser();
    let signup = app.signup_in(&ann, "ann@example.com").await;
    let first = cookie_pair(&signup, "refresh").expect("a refresh cookie at sign-up");
    let refresh_cookie = signup
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("refresh="))
        .unwrap();
    assert!(
        refresh_cookie.contains("Path=/api/users"),
        "{refresh_cookie}"
    );
    assert!(refresh_cookie.contains("HttpOnly"), "{refresh_cookie}");

    let refreshed = ann
        .request(Method::POST, "/api/users/refresh", None, None)
        .await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    assert_eq!(refreshed.body["email"], "ann@example.com");
    let second = cookie_pair(&refreshed, "refresh").unwrap();
    assert_ne!(first, second, "rotated on every use");
    assert!(
        cookie_pair(&refreshed, "session").is_some(),
        "a new access token"
    );

    // Someone replays the first token: refused, and the whole session ends.
    let thief = app.browser();
    let replay = testkit::send(
        thief
            .builder(Method::POST, "/api/users/refresh")
            .header("cookie", &first),
    )
    .await;
    assert_eq!(replay.status, 401);
    let after = ann
        .request(Method::POST, "/api/users/refresh", None, None)
        .await;
    assert_eq!(after.status, 401, "the rotated token died with its session");
}

#[tokio::test]
async fn signout_revokes_the_refresh_token_and_everywhere_ends_every_session() {
    let app = spawn_app().await;
    let (laptop, phone) = (app.browser(), app.browser());
    let signup = app.signup_in(&laptop, "ann@example.com").await;
    let laptop_refresh = cookie_pair(&signup, "refresh").unwrap();
    assert_eq!(
        laptop
            .request(Method::POST, "/api/users/signout", None, None)
            .await
            .status,
        204
    );
    let stolen = testkit::send(
        app.browser()
            .builder(Method::POST, "/api/users/refresh")
            .header("cookie", &laptop_refresh),
    )
    .await;
    assert_eq!(
        stolen.status, 401,
        "signing out ends the session, not just the cookie"
    );

    let signin = json!({"email": "ann@example.com", "password": "correct horse"});
    for device in [&laptop, &phone] {
        let signed_in = device.post("/api/users/signin", signin.clone()).await;
        assert_eq!(signed_in.status, 200);
    }
    assert_eq!(
        phone
            .request(Method::POST, "/api/users/signout-everywhere", None, None)
            .await
            .status,
        204
    );
    assert_eq!(
        laptop
            .request(Method::POST, "/api/users/refresh", None, None)
            .await
            .status,
        401
    );
    assert_eq!(
        app.browser()
            .request(Method::POST, "/api/users/signout-everywhere", None, None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    let (laptop, phone) = (app.browser(), app.browser());
    app.signup_in(&laptop, "ann@example.com").await;
    let signin = json!({"email": "ann@example.com", "password": "correct horse"});
    phone.post("/api/users/signin", signin).await;

    let change = |current: &str, new: &str| json!({"currentPassword": current, "newPassword": new});
    let invalid = laptop
        .post("/api/users/password", change("", "short"))
        .await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.error_fields(), ["currentPassword", "newPassword"]);
    let wrong = laptop
        .post(
            "/api/users/password",
            change("wrong horse", "battery staple"),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let changed = laptop
        .post(
            "/api/users/password",
            change("correct horse", "battery staple"),
        )
        .await;
    assert_eq!(changed.status, 204);

    assert_eq!(
        phone
            .request(Method::POST, "/api/users/refresh", None, None)
            .await
            .status,
        401,
        "the other device's session ended"
    );
    assert_eq!(
        laptop
            .request(Method::POST, "/api/users/refresh", None, None)
            .await
            .status,
        200,
        "the caller has a new session"
    );
    let old = json!({"email": "ann@example.com", "password": "correct horse"});
    let new = json!({"email": "ann@example.com", "password": "battery staple"});
    assert_eq!(
        app.browser().post("/api/users/signin", old).await.status,
        401
    );
    assert_eq!(
        app.browser().post("/api/users/signin", new).await.status,
        200
    );
}

#[tokio::test]
async fn a_page_refresh_redirects_back_to_local_paths_only() {
    let app = spawn_app().await;
    let ann = app.browser();
    app.signup_in(&ann, "ann@example.com").await;
    let back = ann.get("/api/users/refresh?redirect=/orders/1?x=2").await;
    assert_eq!(back.status, 303);
    assert_eq!(back.headers["location"], "/orders/1?x=2");
    assert!(cookie_pair(&back, "session").is_some());

    for evil in [
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
    ] {
        let response = ann
            .get(&format!("/api/users/refresh?redirect={}", urlencode(evil)))
            .await;
        assert_eq!(response.headers["location"], "/", "{evil}");
    }

    // Without a session: back to the page, cookies cleared, so it shows "signed out".
    let stranger = app
        .browser()
        .get("/api/users/refresh?redirect=/tickets")
        .await;
    assert_eq!(stranger.status, 303);
    assert_eq!(stranger.headers["location"], "/tickets");
    assert!(
        stranger
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("session=;") && c.contains("Max-Age=0"))
    );

    // A query that cannot be read is a 400 in the JSON error shape, not axum's plain text.
    let twice = app
        .browser()
        .get("/api/users/refresh?redirect=/a&redirect=/b")
        .await;
    assert_eq!(twice.status, 400);
    assert!(
        twice.error_message().contains("redirect"),
        "{:?}",
        twice.body
    );
}

fn urlencode(raw: &str) -> String {
    raw.bytes().map(|b| format!("%{b:02X}")).collect()
}
