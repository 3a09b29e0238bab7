use std::time::Duration;

use common::auth::keys::PrivateKey;
use common::auth::{Claims, TokenSigner};
use serde_json::json;

use crate::helpers::spawn_app;

fn signer(key: &PrivateKey) -> TokenSigner {
    TokenSigner::new(key, Duration::from_secs(3600))
}

#[tokio::test]
async fn current_user_is_null_without_a_session() {
    let app = spawn_app().await;
    assert!(app.current_user().await.is_null());
}

#[tokio::test]
async fn current_user_has_id_email_iat_and_exp_of_a_short_access_token() {
    let app = spawn_app().await;
    app.signup("ann@example.com", "correct horse").await;
    let user = app.current_user().await;
    let mut keys: Vec<_> = user.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["email", "exp", "iat", "id"]);
    assert_eq!(
        user["exp"].as_i64().unwrap() - user["iat"].as_i64().unwrap(),
        900,
        "access tokens last JWT_TTL_SECONDS (15 minutes by default)"
    );
}

#[tokio::test]
async fn signout_clears_both_cookies_with_204() {
    let app = spawn_app().await;
    app.signup("ann@example.com", "correct horse").await;
    let response = app.post("/api/users/signout", json!({})).await;
    assert_eq!(response.status, 204);
    let cookies = response.set_cookies();
    for name in ["session", "refresh"] {
        let cookie = cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=;")))
            .unwrap_or_else(|| panic!("{name} not cleared: {cookies:?}"));
        assert!(cookie.contains("Max-Age=0"), "{cookie}");
    }
    assert!(app.current_user().await.is_null());
}

#[tokio::test]
async fn tampered_expired_foreign_and_malformed_tokens_are_no_user() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let claims = |iat: i64, exp: i64| Claims {
        id: "507f1f77bcf86cd799439011".into(),
        email: "ann@example.com".into(),
        iat,
        exp,
        sid: None,
    };
    let ours = signer(&testkit::test_private_key());
    let valid = ours.sign(&claims(now, now + 600)).unwrap();
    assert_eq!(
        app.current_user_with_cookie(&format!("session={valid}"))
            .await["email"],
        "ann@example.com",
        "the control token must be accepted"
    );

    let expired = ours.sign(&claims(now - 7200, now - 3600)).unwrap();
    let foreign = signer(&PrivateKey::generate())
        .sign(&claims(now, now + 600))
        .unwrap();
    // Mallory's claims with the signature of Ann's token: a changed payload.
    let mallory = ours
        .sign(&Claims {
            email: "mallory@example.com".into(),
            ..claims(now, now + 600)
        })
        .unwrap();
    let (mallory_unsigned, _) = mallory.rsplit_once('.').unwrap();
    let (_, valid_signature) = valid.rsplit_once('.').unwrap();
    let tampered = format!("{mallory_unsigned}.{valid_signature}");
    for (token, why) in [
        (expired.as_str(), "expired"),
        (foreign.as_str(), "signed with another key"),
        (tampered.as_str(), "payload changed"),
        ("garbage", "malformed"),
        ("", "empty"),
    ] {
        let user = app
            .current_user_with_cookie(&format!("session={token}"))
            .await;
        assert!(user.is_null(), "{why}: {user}");
    }
}
