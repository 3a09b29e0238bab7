use auth::LimitsConfig;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{generous_limits as limits, spawn_app_with_limits};

#[tokio::test]
async fn sign_ins_beyond_the_rate_of_an_address_are_429_with_retry_after() {
    let app = spawn_app_with_limits(LimitsConfig {
        signin_per_minute: 3,
        ..limits()
    })
    .await;
    let attempt = |address: &'static str| {
        let app = &app;
        async move {
            let request = app
                .browser()
                .builder(Method::POST, "/api/users/signin")
                .header("x-forwarded-for", address)
                .json(&json!({"email": "ann@example.com", "password": "wrong horse"}));
            testkit::send(request).await
        }
    };
    for _ in 0..3 {
        assert_eq!(attempt("1.2.3.4").await.status, 401);
    }
    let limited = attempt("1.2.3.4").await;
    assert_eq!(limited.status, 429);
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(
        limited
            .error_message()
            .contains("Too many sign-in attempts")
    );
    // Another client (as the trusted ingress reports it) is not affected.
    assert_eq!(attempt("5.6.7.8").await.status, 401);
}

#[tokio::test]
async fn repeated_failures_lock_an_email_whether_or_not_it_has_an_account() {
    let app = spawn_app_with_limits(LimitsConfig {
        lock_failures: 3,
        ..limits()
    })
    .await;
    app.signup_in(&app.browser(), "ann@example.com").await;
    let signin = |email: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.browser()
                .post(
                    "/api/users/signin",
                    json!({"email": email, "password": password}),
                )
                .await
        }
    };
    let mut answers = Vec::new();
    for email in ["ann@example.com", "nobody@example.com"] {
        for _ in 0..3 {
            assert_eq!(signin(email, "wrong horse").await.status, 401);
        }
        let locked = signin(email, "correct horse").await;
        assert_eq!(locked.status, 429, "{email}: even the right password waits");
        assert!(locked.headers.contains_key("retry-after"));
        answers.push(locked.body);
    }
    assert_eq!(
        answers[0], answers[1],
        "the lock does not tell which email exists"
    );
    // Another account is not locked.
    app.signup_in(&app.browser(), "bob@example.com").await;
    assert_eq!(signin("bob@example.com", "correct horse").await.status, 200);
}

#[tokio::test]
async fn concurrent_sign_ins_beyond_the_hash_queue_are_503_with_retry_after() {
    let app = spawn_app_with_limits(LimitsConfig {
        hash_concurrency: 1,
        hash_queue: 1,
        ..limits()
    })
    .await;
    let attempts = (0..12).map(|i| {
        let app = &app;
        async move {
            app.browser()
                .post(
                    "/api/users/signin",
                    json!({"email": format!("u{i}@example.com"), "password": "wrong horse"}),
                )
                .await
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let shed: Vec<_> = answers.iter().filter(|a| a.status == 503).collect();
    assert!(!shed.is_empty(), "12 at once with 2 places: some are shed");
    assert!(answers.iter().all(|a| a.status == 401 || a.status == 503));
    for answer in shed {
        assert_eq!(answer.headers["retry-after"], "1");
        assert!(answer.error_message().contains("Too many sign-ins at once"));
    }
}
