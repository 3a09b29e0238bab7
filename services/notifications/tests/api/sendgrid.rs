//! The SendGrid transport against a stand-in that records requests and answers what the
//! test tells it to.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use common::config::Secret;
use notifications::TransportConfig;
use notifications::store::Delivery;
use notifications::templates::Template;
use notifications::transport::{Email, Mailer, SendError, SendGrid};
use serde_json::Value;
use testkit::{TestDatabase, eventually, new_user_id};

use crate::helpers::{recipient, spawn_app_with, test_config};

/// What the stand-in received.
#[derive(Debug, Clone)]
struct Received {
    authorization: String,
    content_type: String,
    body: Value,
}

#[derive(Clone, Default)]
struct StandIn {
    received: Arc<Mutex<Vec<Received>>>,
    /// Answers to give, in order; 202 once they run out.
    answers: Arc<Mutex<VecDeque<(StatusCode, &'static str)>>>,
}

impl StandIn {
    async fn serve(answers: &[(StatusCode, &'static str)]) -> (Self, String) {
        let stand_in = Self::default();
        stand_in
            .answers
            .lock()
            .unwrap()
            .extend(answers.iter().copied());
        let app = Router::new()
            .route("/v3/mail/send", post(mail_send))
            .with_state(stand_in.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (stand_in, url)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn mail_send(
    State(stand_in): State<StandIn>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, [(&'static str, &'static str); 1], &'static str) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    stand_in.received.lock().unwrap().push(Received {
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    let (status, answer) = stand_in
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((StatusCode::ACCEPTED, ""));
    (status, [("retry-after", "0")], answer)
}

fn sendgrid_config(db: &TestDatabase, url: &str) -> notifications::Config {
    notifications::Config {
        transport: TransportConfig::SendGrid {
            api_key: Secret::new("SG.test-key"),
            api_url: url.to_owned(),
        },
        ..test_config(db)
    }
}

async fn requests(stand_in: &StandIn, count: usize) -> Vec<Received> {
    eventually(
        &format!("{count} SendGrid requests"),
        Duration::from_secs(20),
        || async {
            let received = stand_in.received();
            (received.len() >= count).then_some(received)
        },
    )
    .await
}

#[tokio::test]
async fn an_email_is_posted_to_sendgrid_in_the_api_shape() {
    let db = TestDatabase::new("notifications");
    let (stand_in, url) = StandIn::serve(&[]).await;
    let app = spawn_app_with(sendgrid_config(&db, &url)).await;
    let email = recipient();
    let event = app.user(&new_user_id(), &email).await;
    let request = requests(&stand_in, 1).await.remove(0);
    assert_eq!(request.authorization, "Bearer SG.test-key");
    assert_eq!(request.content_type, "application/json");
    let body = &request.body;
    assert_eq!(
        body["personalizations"][0]["to"][0]["email"],
        email.as_str()
    );
    assert_eq!(body["from"]["email"], "no-reply@gittix.dev");
    assert_eq!(body["from"]["name"], "GitTix");
    assert_eq!(body["subject"], "Welcome to GitTix");
    assert_eq!(body["content"][0]["type"], "text/plain");
    assert!(
        body["content"][0]["value"]
            .as_str()
            .unwrap()
            .contains(&email)
    );
    assert_eq!(body["content"][1]["type"], "text/html");
    assert!(
        body["content"][1]["value"]
            .as_str()
            .unwrap()
            .contains("<html")
    );
    let key = Delivery::key(&event.id.to_string(), Template::Welcome);
    assert_eq!(
        body["custom_args"]["gittix_email_id"],
        key.replace(':', ".")
    );
    eventually("the send recorded", Duration::from_secs(5), || async {
        (app.delivery(&key).await?.get_str("state").ok()? == "sent").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stand_in.received().len(), 1);
}

#[tokio::test]
async fn too_many_requests_and_server_errors_are_retried_until_accepted() {
    let db = TestDatabase::new("notifications");
    let (stand_in, url) = StandIn::serve(&[
        (
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"errors":[{"message":"slow down"}]}"#,
        ),
        (StatusCode::SERVICE_UNAVAILABLE, ""),
    ])
    .await;
    let app = spawn_app_with(sendgrid_config(&db, &url)).await;
    let event = app.user(&new_user_id(), &recipient()).await;
    let received = requests(&stand_in, 3).await;
    assert!(
        received.iter().all(|r| r.body == received[0].body),
        "the same email each time"
    );
    let key = Delivery::key(&event.id.to_string(), Template::Welcome);
    eventually("the send recorded", Duration::from_secs(5), || async {
        (app.delivery(&key).await?.get_str("state").ok()? == "sent").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        stand_in.received().len(),
        3,
        "nothing after it was accepted"
    );
}

#[tokio::test]
async fn a_request_sendgrid_refuses_is_dead_lettered_with_the_reason() {
    let db = TestDatabase::new("notifications");
    let (stand_in, url) = StandIn::serve(&[(
        StatusCode::BAD_REQUEST,
        r#"{"errors":[{"message":"The from address does not match a verified Sender Identity"}]}"#,
    )])
    .await;
    let app = spawn_app_with(sendgrid_config(&db, &url)).await;
    let event = app.user(&new_user_id(), &recipient()).await;
    requests(&stand_in, 1).await;
    let dead = app
        .bus
        .dead_letter_subject(notifications_service(), "user.created");
    let letters = eventually("the dead letter", Duration::from_secs(10), || async {
        let letters = testkit::stored_messages(&app.bus, &dead).await;
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    let reason = letters[0]
        .headers
        .as_ref()
        .and_then(|h| h.get("GitTix-Dead-Reason"))
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default();
    assert!(reason.contains("400"), "{reason}");
    assert!(reason.contains("verified Sender Identity"), "{reason}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(stand_in.received().len(), 1, "never retried");
    let key = Delivery::key(&event.id.to_string(), Template::Welcome);
    assert!(
        app.delivery(&key).await.is_none(),
        "the claim is released: a redrive may send it"
    );
}

fn notifications_service() -> &'static str {
    "notifications"
}

/// A SendGrid whose connection never comes up: TCP is accepted, the TLS handshake never
/// answered. Nothing was sent, so the email is not accepted (retried), not "unknown".
#[tokio::test]
async fn a_connection_that_does_not_come_up_proves_nothing_was_sent() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let send_timeout = Duration::from_secs(4);
    let sendgrid = SendGrid::new(&url, Secret::new("SG.test-key"), send_timeout).unwrap();
    let email = Email {
        from: "GitTix <no-reply@gittix.dev>".parse().unwrap(),
        to: recipient(),
        subject: "x".into(),
        html: "<p>x</p>".into(),
        text: "x".into(),
        id: "e.welcome".into(),
    };
    let started = Instant::now();
    let err = sendgrid.send(&email).await.unwrap_err();
    assert!(matches!(err, SendError::Transient { .. }), "{err:?}");
    assert!(started.elapsed() < send_timeout, "{:?}", started.elapsed());
}

/// A stand-in answering with what `answer(n)` builds for its `n`th request (from 0), and
/// recording when each came.
async fn serve_with(
    answer: impl Fn(usize) -> Response + Clone + Send + Sync + 'static,
) -> (Arc<Mutex<Vec<Instant>>>, String) {
    let times: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let recorded = times.clone();
    let app = Router::new().route(
        "/v3/mail/send",
        post(move || {
            let recorded = recorded.clone();
            let answer = answer.clone();
            async move {
                let n = {
                    let mut times = recorded.lock().unwrap();
                    times.push(Instant::now());
                    times.len() - 1
                };
                answer(n)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (times, url)
}

async fn sent(app: &crate::helpers::TestApp, key: &str) {
    eventually("the send recorded", Duration::from_secs(20), || async {
        (app.delivery(key).await?.get_str("state").ok()? == "sent").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_until_its_reset() {
    let db = TestDatabase::new("notifications");
    let (times, url) = serve_with(|n| {
        if n > 0 {
            return StatusCode::ACCEPTED.into_response();
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-ratelimit-reset", (now + 4).to_string())],
            "",
        )
            .into_response()
    })
    .await;
    let app = spawn_app_with(sendgrid_config(&db, &url)).await;
    let event = app.user(&new_user_id(), &recipient()).await;
    let key = Delivery::key(&event.id.to_string(), Template::Welcome);
    sent(&app, &key).await;
    let times = times.lock().unwrap().clone();
    assert_eq!(times.len(), 2);
    let waited = times[1] - times[0];
    assert!(waited >= Duration::from_millis(2500), "{waited:?}");
}

/// An answer whose body never ends: read up to a limit, so the answer (503, retry) still
/// counts, instead of the send running into its timeout (outcome unknown, never retried).
#[tokio::test]
async fn an_endless_answer_is_read_up_to_a_limit() {
    let db = TestDatabase::new("notifications");
    let (times, url) = serve_with(|n| {
        if n > 0 {
            return StatusCode::ACCEPTED.into_response();
        }
        let endless = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(vec![b'x'; 8192])),
                (),
            ))
        });
        (StatusCode::SERVICE_UNAVAILABLE, Body::from_stream(endless)).into_response()
    })
    .await;
    let app = spawn_app_with(sendgrid_config(&db, &url)).await;
    let event = app.user(&new_user_id(), &recipient()).await;
    let key = Delivery::key(&event.id.to_string(), Template::Welcome);
    sent(&app, &key).await;
    assert_eq!(times.lock().unwrap().len(), 2);
}

/// 401/403: the API key is wrong or lacks permission. A configuration error: retried until
/// fixed, not every email dead-lettered.
#[tokio::test]
async fn a_refused_api_key_is_retried_not_dead_lettered() {
    let db = TestDatabase::new("notifications");
    let (stand_in, url) = StandIn::serve(&[
        (
            StatusCode::UNAUTHORIZED,
            r#"{"errors":[{"message":"The provided authorization grant is invalid"}]}"#,
        ),
        (
            StatusCode::FORBIDDEN,
            r#"{"errors":[{"message":"access forbidden"}]}"#,
        ),
    ])
    .await;
    let app = spawn_app_with(sendgrid_config(&db, &url)).await;
    let event = app.user(&new_user_id(), &recipient()).await;
    let key = Delivery::key(&event.id.to_string(), Template::Welcome);
    sent(&app, &key).await;
    assert_eq!(stand_in.received().len(), 3);
    let dead = app
        .bus
        .dead_letter_subject(notifications_service(), "user.created");
    assert!(testkit::stored_messages(&app.bus, &dead).await.is_empty());
}
