//! Resetting a forgotten password: `POST /api/users/password-reset` answers alike for every
//! email and, for an account, stores a token's hash with the event that carries the token;
//! `POST /api/users/password-reset/confirm` spends the token once.

use std::time::Duration;

use auth::LimitsConfig;
use bson::{Document, doc};
use common::bus::BusConfig;
use common::config::MongoConfig;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use testkit::{JsonResponse, TestClient, TestDatabase, bus_config, eventually, stored_events};

use crate::helpers::{TestApp, generous_limits, spawn_app_with, test_config_with_bus};

const EVENT: &str = "user.password_reset_requested";

struct ResetApp {
    app: TestApp,
    bus: BusConfig,
    mongo: MongoConfig,
}

async fn spawn_reset(limits: LimitsConfig) -> ResetApp {
    let db = TestDatabase::new("auth");
    let bus = bus_config("auth");
    let mongo = db.config();
    let mut config = test_config_with_bus(db.config(), bus.clone());
    config.limits = limits;
    let app = spawn_app_with(config, db).await;
    ResetApp { app, bus, mongo }
}

impl ResetApp {
    async fn users(&self) -> mongodb::Collection<Document> {
        mongodb::Client::with_uri_str(&self.mongo.url)
            .await
            .unwrap()
            .database(&self.mongo.database)
            .collection("users")
    }

    async fn request(&self, email: &str) -> JsonResponse {
        self.request_from("10.0.0.1", email).await
    }

    async fn request_from(&self, address: &str, email: &str) -> JsonResponse {
        let request = self
            .app
            .browser()
            .builder(Method::POST, "/api/users/password-reset")
            .header("x-forwarded-for", address)
            .json(&json!({ "email": email }));
        testkit::send(request).await
    }

    async fn confirm(&self, token: &str, password: &str) -> JsonResponse {
        self.app
            .browser()
            .post(
                "/api/users/password-reset/confirm",
                json!({"token": token, "password": password}),
            )
            .await
    }

    /// The events published so far, once there are `count` of them.
    async fn events(&self, count: usize) -> Vec<Value> {
        eventually(
            &format!("{count} {EVENT} events"),
            Duration::from_secs(10),
            || async {
                let events = stored_events(&self.bus, EVENT).await;
                (events.len() >= count).then_some(events)
            },
        )
        .await
    }

    /// Asks for a reset of `email` and returns the token of the event it caused (the
    /// `nth` such event of the test, from 1).
    async fn token_for(&self, email: &str, nth: usize) -> String {
        assert_eq!(self.request(email).await.status, 202);
        self.events(nth).await[nth - 1]["data"]["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn signin(&self, email: &str, password: &str) -> u16 {
        self.app
            .browser()
            .post(
                "/api/users/signin",
                json!({"email": email, "password": password}),
            )
            .await
            .status
    }
}

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[tokio::test]
async fn known_and_unknown_emails_get_the_same_202_and_only_an_account_gets_a_token() {
    let reset = spawn_reset(generous_limits()).await;
    let ann_id = reset
        .app
        .signup_in(&reset.app.browser(), "ann@example.com")
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let unknown = reset.request("nobody@example.com").await;
    let known = reset.request("ANN@example.com ").await;
    for response in [&unknown, &known] {
        assert_eq!(response.status, 202, "{:?}", response.body);
    }
    assert_eq!(known.body, unknown.body, "the answer tells nothing");
    assert!(
        known.body["message"]
            .as_str()
            .unwrap()
            .starts_with("If an account exists")
    );

    let events = reset.events(1).await;
    let data = &events[0]["data"];
    assert_eq!(data["userId"], ann_id.as_str());
    assert_eq!(
        data["email"], "ann@example.com",
        "notifications can email a user it has no replica of"
    );
    let token = data["token"].as_str().unwrap();
    assert_eq!(token.len(), 43, "32 bytes in base64url: {token}");
    let expires_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(data["expiresAt"].clone()).unwrap();
    let left = expires_at - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(29) && left <= chrono::Duration::minutes(30),
        "valid 30 minutes by default: {left}"
    );

    let users = reset.users().await;
    // Once published, the event leaves the user's outbox: then only the hash is stored.
    let ann = eventually("the outbox emptied", Duration::from_secs(10), || async {
        let ann = users
            .find_one(doc! {"email": "ann@example.com"})
            .await
            .unwrap()
            .unwrap();
        let published = ann
            .get_array("pendingEvents")
            .ok()
            .is_none_or(|pending| pending.is_empty());
        published.then_some(ann)
    })
    .await;
    let pending = ann.get_document("passwordReset").unwrap();
    assert_eq!(pending.get_str("tokenHash").unwrap(), sha256_hex(token));
    assert_eq!(
        pending
            .get_datetime("expiresAt")
            .unwrap()
            .timestamp_millis(),
        expires_at.timestamp_millis()
    );
    assert!(
        !ann.to_string().contains(token),
        "only the hash is stored: {ann}"
    );
    // The unknown email caused nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stored_events(&reset.bus, EVENT).await.len(), 1);
    assert_eq!(
        users.count_documents(doc! {}).await.unwrap(),
        1,
        "no record for the unknown email"
    );
}

#[tokio::test]
async fn malformed_requests_are_400_with_their_fields() {
    let reset = spawn_reset(generous_limits()).await;
    let invalid = reset.request("not-an-email").await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.error_fields(), ["email"]);

    let empty = reset.confirm("", "").await;
    assert_eq!(empty.status, 400);
    assert_eq!(empty.error_fields(), ["token", "password"]);
    let unknown = reset.confirm(&"A".repeat(43), "battery staple").await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.error_fields(), ["token"]);
    let typed = reset
        .app
        .post(
            "/api/users/password-reset/confirm",
            json!({"token": 42, "password": ["x"]}),
        )
        .await;
    assert_eq!(typed.status, 400);
    assert_eq!(typed.error_fields(), ["token", "password"]);
}

#[tokio::test]
async fn a_confirm_sets_the_password_ends_every_session_and_spends_the_token() {
    let reset = spawn_reset(generous_limits()).await;
    let laptop = reset.app.browser();
    reset.app.signup_in(&laptop, "ann@example.com").await;
    let token = reset.token_for("ann@example.com", 1).await;

    let weak = reset.confirm(&token, "short").await;
    assert_eq!(weak.status, 400);
    assert_eq!(weak.error_fields(), ["password"]);

    let done = reset.confirm(&token, "battery staple").await;
    assert_eq!(done.status, 204, "{:?}", done.body);
    assert!(done.set_cookies().is_empty(), "nobody is signed in");

    let refresh = laptop
        .request(Method::POST, "/api/users/refresh", None, None)
        .await;
    assert_eq!(
        refresh.status, 401,
        "the session from before the reset ended"
    );
    assert_eq!(reset.signin("ann@example.com", "correct horse").await, 401);
    assert_eq!(reset.signin("ann@example.com", "battery staple").await, 200);

    let again = reset.confirm(&token, "another password").await;
    assert_eq!(again.status, 400);
    assert_eq!(again.error_fields(), ["token"]);
    assert_eq!(
        reset.signin("ann@example.com", "another password").await,
        401
    );
    let ann = reset
        .users()
        .await
        .find_one(doc! {"email": "ann@example.com"})
        .await
        .unwrap()
        .unwrap();
    assert!(!ann.contains_key("passwordReset"), "{ann}");
}

#[tokio::test]
async fn a_new_request_replaces_the_token_and_an_expired_one_is_refused() {
    let reset = spawn_reset(generous_limits()).await;
    reset
        .app
        .signup_in(&reset.app.browser(), "ann@example.com")
        .await;
    let first = reset.token_for("ann@example.com", 1).await;
    let second = reset.token_for("ann@example.com", 2).await;
    assert_ne!(first, second);

    let replaced = reset.confirm(&first, "battery staple").await;
    assert_eq!(replaced.status, 400);
    assert_eq!(replaced.error_fields(), ["token"]);

    let past = bson::DateTime::from_millis(bson::DateTime::now().timestamp_millis() - 1_000);
    let updated = reset
        .users()
        .await
        .update_one(
            doc! {"email": "ann@example.com"},
            doc! {"$set": {"passwordReset.expiresAt": past}},
        )
        .await
        .unwrap();
    assert_eq!(updated.matched_count, 1);
    let expired = reset.confirm(&second, "battery staple").await;
    assert_eq!(expired.status, 400);
    assert_eq!(expired.error_fields(), ["token"]);
    assert_eq!(reset.signin("ann@example.com", "correct horse").await, 200);
}

#[tokio::test]
async fn a_short_lived_token_expires_on_its_own() {
    let reset = spawn_reset(LimitsConfig {
        reset_ttl: Duration::from_millis(300),
        ..generous_limits()
    })
    .await;
    reset
        .app
        .signup_in(&reset.app.browser(), "ann@example.com")
        .await;
    let token = reset.token_for("ann@example.com", 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(reset.confirm(&token, "battery staple").await.status, 400);
}

#[tokio::test]
async fn of_concurrent_confirms_with_one_token_exactly_one_succeeds() {
    let reset = spawn_reset(generous_limits()).await;
    reset
        .app
        .signup_in(&reset.app.browser(), "ann@example.com")
        .await;
    let token = reset.token_for("ann@example.com", 1).await;
    let passwords: Vec<String> = (0..4).map(|i| format!("new password {i}")).collect();
    let answers = futures::future::join_all(
        passwords
            .iter()
            .map(|password| reset.confirm(&token, password)),
    )
    .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 204 || *s == 400),
        "{statuses:?}"
    );
    let winner = statuses.iter().position(|s| *s == 204).unwrap();
    for (i, password) in passwords.iter().enumerate() {
        let expected = if i == winner { 200 } else { 401 };
        assert_eq!(reset.signin("ann@example.com", password).await, expected);
    }
}

#[tokio::test]
async fn a_reset_lifts_a_sign_in_lock() {
    let reset = spawn_reset(LimitsConfig {
        lock_failures: 3,
        ..generous_limits()
    })
    .await;
    reset
        .app
        .signup_in(&reset.app.browser(), "ann@example.com")
        .await;
    for _ in 0..3 {
        assert_eq!(reset.signin("ann@example.com", "wrong horse").await, 401);
    }
    assert_eq!(reset.signin("ann@example.com", "correct horse").await, 429);
    let token = reset.token_for("ann@example.com", 1).await;
    assert_eq!(reset.confirm(&token, "battery staple").await.status, 204);
    assert_eq!(reset.signin("ann@example.com", "battery staple").await, 200);
}

#[tokio::test]
async fn requests_beyond_the_rate_of_an_address_or_an_email_are_429() {
    let reset = spawn_reset(LimitsConfig {
        reset_per_hour: 3,
        reset_per_email_per_hour: 2,
        ..generous_limits()
    })
    .await;
    reset
        .app
        .signup_in(&reset.app.browser(), "ann@example.com")
        .await;

    // Per address: three emails, then 429, whatever the email; another address is free.
    for i in 0..3 {
        let response = reset
            .request_from("1.2.3.4", &format!("u{i}@example.com"))
            .await;
        assert_eq!(response.status, 202);
    }
    let limited = reset.request_from("1.2.3.4", "u9@example.com").await;
    assert_eq!(limited.status, 429);
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((60..=3600).contains(&retry_after), "{retry_after}");
    assert!(
        limited
            .error_message()
            .contains("Too many password reset requests")
    );
    assert_eq!(
        reset.request_from("5.6.7.8", "u9@example.com").await.status,
        202
    );

    // Per email, from any address, account or not: the same answer.
    let mut answers = Vec::new();
    for email in ["ann@example.com", "nobody@example.com"] {
        for address in ["10.0.0.1", "10.0.0.2"] {
            assert_eq!(reset.request_from(address, email).await.status, 202);
        }
        let limited = reset.request_from("10.0.0.3", email).await;
        assert_eq!(limited.status, 429, "{email}");
        answers.push(limited.body);
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn the_document_describes_both_routes_and_every_answer_they_give() {
    let reset = spawn_reset(generous_limits()).await;
    let doc = testkit::openapi::fetch_document(&reset.app.address, "/api/users/openapi.json").await;
    let statuses = |path: &str| {
        let operation = &doc["paths"][path]["post"];
        assert!(
            operation["requestBody"]["content"]["application/json"]["schema"].is_object(),
            "{path} has no request body: {operation}"
        );
        let mut statuses: Vec<String> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        statuses.sort();
        statuses
    };
    assert_eq!(
        statuses("/api/users/password-reset"),
        ["202", "400", "413", "415", "429", "503"]
    );
    assert_eq!(
        statuses("/api/users/password-reset/confirm"),
        ["204", "400", "403", "413", "415", "503"]
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ResetRequestBody"]["required"],
        json!(["email"]),
        "{}",
        schemas["ResetRequestBody"]
    );
    assert_eq!(
        schemas["ResetConfirmBody"]["required"],
        json!(["token", "password"])
    );
    assert_eq!(schemas["ResetRequested"]["required"], json!(["message"]));
}

impl ResetApp {
    async fn sessions(&self) -> mongodb::Collection<Document> {
        mongodb::Client::with_uri_str(&self.mongo.url)
            .await
            .unwrap()
            .database(&self.mongo.database)
            .collection("sessions")
    }

    /// Undoes the eager ending of every session, as if it had failed after the new
    /// password was written.
    async fn unrevoke_sessions(&self) {
        let undone = self
            .sessions()
            .await
            .update_many(doc! {}, doc! {"$set": {"revoked": false}})
            .await
            .unwrap();
        assert!(undone.modified_count >= 1, "a session had been ended");
    }

    async fn refresh(&self, browser: &TestClient) -> u16 {
        browser
            .request(Method::POST, "/api/users/refresh", None, None)
            .await
            .status
    }
}

#[tokio::test]
async fn a_session_from_before_a_reset_cannot_refresh_even_if_it_was_not_ended() {
    let reset = spawn_reset(generous_limits()).await;
    let laptop = reset.app.browser();
    reset.app.signup_in(&laptop, "ann@example.com").await;
    let token = reset.token_for("ann@example.com", 1).await;
    assert_eq!(reset.confirm(&token, "battery staple").await.status, 204);
    reset.unrevoke_sessions().await;

    assert_eq!(
        reset.refresh(&laptop).await,
        401,
        "refused: an old password"
    );
    let session = reset
        .sessions()
        .await
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        session.get_bool("revoked"),
        Ok(true),
        "and ended: {session}"
    );

    // A session started after the reset refreshes.
    let phone = reset.app.browser();
    let signin = phone
        .post(
            "/api/users/signin",
            json!({"email": "ann@example.com", "password": "battery staple"}),
        )
        .await;
    assert_eq!(signin.status, 200);
    assert_eq!(reset.refresh(&phone).await, 200);
    assert_eq!(reset.refresh(&phone).await, 200);
}

#[tokio::test]
async fn after_a_change_of_password_only_the_new_session_refreshes_even_if_the_others_were_not_ended()
 {
    let reset = spawn_reset(generous_limits()).await;
    let (laptop, phone) = (reset.app.browser(), reset.app.browser());
    reset.app.signup_in(&laptop, "ann@example.com").await;
    let signin = phone
        .post(
            "/api/users/signin",
            json!({"email": "ann@example.com", "password": "correct horse"}),
        )
        .await;
    assert_eq!(signin.status, 200);
    let changed = phone
        .post(
            "/api/users/password",
            json!({"currentPassword": "correct horse", "newPassword": "battery staple"}),
        )
        .await;
    assert_eq!(changed.status, 204, "{:?}", changed.body);
    reset.unrevoke_sessions().await;

    assert_eq!(reset.refresh(&laptop).await, 401, "the laptop's is refused");
    assert_eq!(
        reset.refresh(&phone).await,
        200,
        "the one it started is not"
    );
    assert_eq!(reset.refresh(&phone).await, 200);
}

#[tokio::test]
async fn a_token_issued_before_a_ban_sets_no_password() {
    let reset = spawn_reset(generous_limits()).await;
    let admin = reset.app.browser();
    reset
        .app
        .signup_in(&admin, crate::helpers::ADMIN_EMAIL)
        .await;
    let ann_id = reset
        .app
        .signup_in(&reset.app.browser(), "ann@example.com")
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = reset.token_for("ann@example.com", 1).await;
    let ban_path = format!("/api/users/{ann_id}/ban");
    let banned = admin.request(Method::POST, &ban_path, None, None).await;
    assert_eq!(banned.status, 204);

    let refused = reset.confirm(&token, "battery staple").await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert_eq!(refused.body["errors"][0]["message"], "Account suspended");
    let ann = reset
        .users()
        .await
        .find_one(doc! {"email": "ann@example.com"})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.get_i64("credentialsVersion"), Ok(0), "unchanged: {ann}");

    // Once unbanned, the password is still the old one.
    let unbanned = admin.delete(&ban_path).await;
    assert_eq!(unbanned.status, 204);
    assert_eq!(reset.signin("ann@example.com", "battery staple").await, 401);
    assert_eq!(reset.signin("ann@example.com", "correct horse").await, 200);
}

/// A sign-in whose password check ends after a reset: it read the user, and checked the
/// password against the hash, from before. The old hash is made slow (many argon2 passes)
/// so that the reset happens entirely during that check.
#[tokio::test]
async fn a_sign_in_checked_against_the_password_a_reset_replaced_starts_no_session() {
    use argon2::password_hash::PasswordHasher;
    let reset = spawn_reset(LimitsConfig {
        hash_concurrency: 2,
        ..generous_limits()
    })
    .await;
    reset
        .app
        .signup_in(&reset.app.browser(), "ann@example.com")
        .await;
    let token = reset.token_for("ann@example.com", 1).await;
    let slow = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(19_456, 150, 1, None).unwrap(),
    );
    let started = std::time::Instant::now();
    let slow_hash = slow.hash_password(b"correct horse").unwrap().to_string();
    let check_takes = started.elapsed();
    reset
        .users()
        .await
        .update_one(
            doc! {"email": "ann@example.com"},
            doc! {"$set": {"passwordHash": slow_hash}},
        )
        .await
        .unwrap();

    let late = reset.app.browser();
    let signin = {
        let late = late.clone();
        tokio::spawn(async move {
            let body = json!({"email": "ann@example.com", "password": "correct horse"});
            late.post("/api/users/signin", body).await
        })
    };
    // The sign-in reads the user at once, then checks the password for `check_takes`.
    tokio::time::sleep(check_takes / 4).await;
    assert!(!signin.is_finished(), "still checking the password");
    assert_eq!(reset.confirm(&token, "battery staple").await.status, 204);
    assert!(
        !signin.is_finished(),
        "the reset was done while the sign-in still checked the password (it took {check_takes:?})"
    );

    let signin = signin.await.unwrap();
    assert_eq!(signin.status, 401, "{:?}", signin.body);
    assert!(
        signin
            .set_cookies()
            .iter()
            .all(|c| !c.starts_with("refresh=") || c.starts_with("refresh=;")),
        "{:?}",
        signin.set_cookies()
    );
    assert_eq!(reset.refresh(&late).await, 401);
    reset.unrevoke_sessions().await;
    assert_eq!(
        reset.refresh(&late).await,
        401,
        "its session is refused anyway"
    );
}

/// A ban that lands while a confirm hashes the new password, after the confirm read the
/// user: the write itself is conditioned on no ban. One hashing thread, kept busy by a
/// slow sign-in of another user, holds the confirm between its read and its write.
#[tokio::test]
async fn a_ban_while_the_new_password_is_hashed_sets_no_password() {
    use argon2::password_hash::PasswordHasher;
    let reset = spawn_reset(LimitsConfig {
        hash_concurrency: 1,
        ..generous_limits()
    })
    .await;
    let admin = reset.app.browser();
    reset
        .app
        .signup_in(&admin, crate::helpers::ADMIN_EMAIL)
        .await;
    let ann_id = reset
        .app
        .signup_in(&reset.app.browser(), "ann@example.com")
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    reset
        .app
        .signup_in(&reset.app.browser(), "bob@example.com")
        .await;
    let token = reset.token_for("ann@example.com", 1).await;
    let slow = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(19_456, 150, 1, None).unwrap(),
    );
    let started = std::time::Instant::now();
    let slow_hash = slow.hash_password(b"correct horse").unwrap().to_string();
    let busy_for = started.elapsed();
    reset
        .users()
        .await
        .update_one(
            doc! {"email": "bob@example.com"},
            doc! {"$set": {"passwordHash": slow_hash}},
        )
        .await
        .unwrap();

    let post = |path: &'static str, body: Value| {
        let browser = reset.app.browser();
        tokio::spawn(async move { browser.post(path, body).await })
    };
    let signin = post(
        "/api/users/signin",
        json!({"email": "bob@example.com", "password": "correct horse"}),
    );
    tokio::time::sleep(busy_for / 8).await;
    let confirm = post(
        "/api/users/password-reset/confirm",
        json!({"token": token, "password": "battery staple"}),
    );
    tokio::time::sleep(busy_for / 8).await;
    let ban_path = format!("/api/users/{ann_id}/ban");
    let banned = admin.request(Method::POST, &ban_path, None, None).await;
    assert_eq!(banned.status, 204);
    assert!(
        !confirm.is_finished() && !signin.is_finished(),
        "the ban came while the confirm waited for its hash (the slow one took {busy_for:?})"
    );

    let confirm = confirm.await.unwrap();
    assert_eq!(confirm.status, 403, "{:?}", confirm.body);
    assert_eq!(signin.await.unwrap().status, 200);
    let ann = reset
        .users()
        .await
        .find_one(doc! {"email": "ann@example.com"})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.get_i64("credentialsVersion"), Ok(0), "unchanged: {ann}");
    assert!(ann.contains_key("passwordReset"), "the token is not spent");
}
