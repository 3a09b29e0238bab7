use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::auth::Claims;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::helpers::{cookie_pair, spawn_app};

#[tokio::test]
async fn the_jwks_publishes_the_public_key_that_verifies_issued_tokens() {
    let app = spawn_app().await;
    let response = app.get("/api/users/.well-known/jwks.json").await;
    assert_eq!(response.status, 200);
    let keys = response.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(key["alg"], "EdDSA");
    let public = testkit::test_private_key().public();
    assert_eq!(key["kid"], public.kid());
    assert_eq!(key["x"], URL_SAFE_NO_PAD.encode(public.raw()));

    // A token auth issues names that key, and verifies with the public key alone.
    let signup = app.signup("ann@example.com", "correct horse").await;
    let token = cookie_pair(&signup, "session").unwrap()["session=".len()..].to_owned();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(public.kid()));
    let claims = common::auth::Jwt::new(&[public]).verify(&token).unwrap();
    assert_eq!(claims.email, "ann@example.com");
}

#[tokio::test]
async fn a_token_signed_with_a_shared_secret_is_no_user_even_with_our_kid() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        id: "507f1f77bcf86cd799439011".into(),
        email: "ann@example.com".into(),
        iat: now,
        exp: now + 600,
        sid: None,
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(testkit::test_private_key().public().kid().to_owned());
    // The public key's bytes as an HMAC secret: the classic algorithm-confusion attack.
    let secret = EncodingKey::from_secret(testkit::test_private_key().public().raw());
    let token = jsonwebtoken::encode(&header, &claims, &secret).unwrap();
    assert!(
        app.current_user_with_cookie(&format!("session={token}"))
            .await
            .is_null()
    );
}
