//! Each email is sent once per event (at most once): redeliveries, restarts and a crash
//! between the send and its record never send it twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bson::doc;
use notifications::store::{Claim, ClaimId, Delivery, DeliveryState, Store};
use notifications::templates::{self, Template};
use notifications::transport::{Email, Mailer, SendError, Smtp};
use testkit::{TestDatabase, eventually, new_user_id};

use crate::helpers::{
    TestApp, mail, recipient, settled_count, smtp, spawn_app_with, spawn_app_with_mailer,
    test_config,
};

#[tokio::test]
async fn a_redelivered_event_sends_its_email_once_even_across_a_restart() {
    let db = TestDatabase::new("notifications");
    let config = test_config(&db);
    let first = spawn_app_with(config.clone()).await;
    let email = recipient();
    let event = first.user(&new_user_id(), &email).await;
    mail(&email, "Welcome").await;
    first.redeliver(&event).await;
    first.redeliver(&event).await;
    assert_eq!(settled_count(&email).await, 1, "redeliveries send nothing");
    let key = Delivery::key(&event.id.to_string(), Template::Welcome);
    assert_eq!(
        first.delivery(&key).await.unwrap().get_str("state"),
        Ok("sent")
    );

    // Counted by template (the test process shares one recorder: at least these).
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", first.port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        r#"emails_sent_total{template="welcome"}"#,
        r#"emails_suppressed_total{template="welcome"}"#,
    ] {
        let line = metrics.lines().find(|l| l.starts_with(series));
        let value: f64 = line
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"));
        assert!(value >= 1.0, "{series} {value}");
    }

    first.stop().await;
    let second = spawn_app_with(config).await;
    second.redeliver(&event).await;
    assert_eq!(settled_count(&email).await, 1, "nor after a restart");
}

/// The real SMTP transport, then a crash before the send could be recorded: the
/// provider has the message, the record says only "claimed".
struct CrashAfterSending {
    smtp: Smtp,
    sends: AtomicUsize,
}

#[async_trait::async_trait]
impl Mailer for CrashAfterSending {
    fn name(&self) -> &'static str {
        "crash-after-sending"
    }

    async fn send(&self, email: &Email) -> Result<(), SendError> {
        self.sends.fetch_add(1, Ordering::SeqCst);
        self.smtp.send(email).await?;
        panic!("crashed after the provider accepted the message");
    }
}

#[tokio::test]
async fn a_crash_between_the_send_and_its_record_never_sends_twice() {
    let db = TestDatabase::new("notifications");
    let config = test_config(&db);
    let crashing = Arc::new(CrashAfterSending {
        smtp: smtp(),
        sends: AtomicUsize::new(0),
    });
    let first =
        spawn_app_with_mailer(config.clone(), crashing.clone(), templates::embedded()).await;
    let email = recipient();
    let event = first.user(&new_user_id(), &email).await;
    mail(&email, "Welcome").await;
    // The panic is a retry: the event comes again, finds the claim and sends nothing.
    let key = Delivery::key(&event.id.to_string(), Template::Welcome);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(crashing.sends.load(Ordering::SeqCst), 1, "one attempt only");
    assert_eq!(
        first.delivery(&key).await.unwrap().get_str("state"),
        Ok("claimed"),
        "the send was never recorded"
    );

    // A new replica on the same database, and the event delivered once more.
    first.stop().await;
    let second = spawn_app_with(config).await;
    second.redeliver(&event).await;
    assert_eq!(settled_count(&email).await, 1);
    assert_eq!(
        second.delivery(&key).await.unwrap().get_str("state"),
        Ok("claimed")
    );
}

#[tokio::test]
async fn a_claim_left_by_a_crash_before_the_send_loses_that_email_and_only_that_one() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let lost = recipient();
    let event = common::events::Envelope::new(common::events::UserCreated {
        id: new_user_id(),
        email: lost.clone(),
        version: 0,
    });
    // A process claimed the email and died before sending it.
    let store = Store::new(&app.db().await);
    let key = Delivery::key(&event.id.to_string(), Template::Welcome);
    assert!(matches!(
        store
            .claim(&key, &event.id.to_string(), Template::Welcome)
            .await
            .unwrap(),
        Claim::Won(_)
    ));
    app.redeliver(&event).await;
    let other = recipient();
    app.user(&new_user_id(), &other).await;
    mail(&other, "Welcome").await;
    assert_eq!(settled_count(&lost).await, 0, "at most once: never sent");
}

/// Refuses the first `refusals` sends as a refused connection would (proof the message
/// was not accepted), then sends through SMTP.
struct RefusingFirst {
    smtp: Smtp,
    refusals: usize,
    attempts: AtomicUsize,
}

#[async_trait::async_trait]
impl Mailer for RefusingFirst {
    fn name(&self) -> &'static str {
        "refusing-first"
    }

    async fn send(&self, email: &Email) -> Result<(), SendError> {
        if self.attempts.fetch_add(1, Ordering::SeqCst) < self.refusals {
            return Err(SendError::Transient {
                reason: "connection refused".into(),
                after: Some(Duration::from_millis(100)),
            });
        }
        self.smtp.send(email).await
    }
}

#[tokio::test]
async fn an_email_the_provider_did_not_accept_is_released_and_sent_on_a_later_delivery() {
    let db = TestDatabase::new("notifications");
    let mailer = Arc::new(RefusingFirst {
        smtp: smtp(),
        refusals: 2,
        attempts: AtomicUsize::new(0),
    });
    let app = spawn_app_with_mailer(test_config(&db), mailer.clone(), templates::embedded()).await;
    let email = recipient();
    app.user(&new_user_id(), &email).await;
    mail(&email, "Welcome").await;
    assert_eq!(mailer.attempts.load(Ordering::SeqCst), 3);
    assert_eq!(settled_count(&email).await, 1);
}

#[tokio::test]
async fn a_refused_connection_proves_the_message_was_not_accepted() {
    // A port nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let closed = Smtp::new("127.0.0.1", port, Duration::from_secs(2));
    let email = Email {
        from: "GitTix <no-reply@gittix.dev>".parse().unwrap(),
        to: recipient(),
        subject: "x".into(),
        html: "<p>x</p>".into(),
        text: "x".into(),
        id: "e.welcome".into(),
    };
    let err = closed.send(&email).await.unwrap_err();
    assert!(matches!(err, SendError::Transient { .. }), "{err:?}");
    // A recipient that is no address is refused for good, before any connection.
    let bad = Email {
        to: "not-an-address".into(),
        ..email
    };
    assert!(matches!(
        smtp().send(&bad).await.unwrap_err(),
        SendError::Refused(_)
    ));
}

/// A `counter{labels}` of the service's metrics (0 when absent).
async fn counter(app: &TestApp, series: &str) -> f64 {
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", app.port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

fn welcome_event(email: &str) -> common::events::Envelope<common::events::UserCreated> {
    common::events::Envelope::new(common::events::UserCreated {
        id: new_user_id(),
        email: email.to_owned(),
        version: 0,
    })
}

/// Two copies of one event handled at once (a redelivery to another replica while the
/// first is still at work): the second finds the first's claim, which is young, and must
/// not ack — the first may yet be refused and give the email back.
#[tokio::test]
async fn a_redelivery_finding_a_young_claim_retries_and_sends_if_the_holder_gives_it_back() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let email = recipient();
    let event = welcome_event(&email);
    let store = Store::new(&app.db().await);
    let key = Delivery::key(&event.id.to_string(), Template::Welcome);
    // The first copy claims the email and is still sending…
    let Claim::Won(holder) = store
        .claim(&key, &event.id.to_string(), Template::Welcome)
        .await
        .unwrap()
    else {
        panic!("the first claim wins")
    };
    // …when the second copy arrives.
    app.redeliver(&event).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(settled_count(&email).await, 0, "not sent while claimed");
    // The provider refused the first copy's send: it gives the claim back.
    assert!(store.release(&key, &holder).await.unwrap());
    mail(&email, "Welcome").await;
    assert_eq!(settled_count(&email).await, 1);
    assert_eq!(
        app.delivery(&key).await.unwrap().get_str("state"),
        Ok("sent")
    );
}

/// A claim older than any handler runs: its holder died between claim and send. The
/// email is given up (at most once), counted as possibly lost, and the event acked.
#[tokio::test]
async fn an_old_claim_is_suppressed_and_counted_as_possibly_lost() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let lost = recipient();
    let event = welcome_event(&lost);
    let key = Delivery::key(&event.id.to_string(), Template::Welcome);
    let ten_minutes_ago =
        bson::DateTime::from_millis(bson::DateTime::now().timestamp_millis() - 600_000);
    // As claimed before claims had ids.
    app.db()
        .await
        .collection::<bson::Document>("deliveries")
        .insert_one(doc! {
            "_id": &key,
            "eventId": event.id.to_string(),
            "template": "welcome",
            "state": "claimed",
            "claimedAt": ten_minutes_ago,
        })
        .await
        .unwrap();
    let series = r#"emails_possibly_lost_total{template="welcome"}"#;
    let before = counter(&app, series).await;
    app.redeliver(&event).await;
    eventually(
        "counted as possibly lost",
        Duration::from_secs(10),
        || async { (counter(&app, series).await > before).then_some(()) },
    )
    .await;
    let other = recipient();
    app.user(&new_user_id(), &other).await;
    mail(&other, "Welcome").await;
    assert_eq!(settled_count(&lost).await, 0, "at most once: never sent");
    let record = app.delivery(&key).await.unwrap();
    assert_eq!(record.get_str("state"), Ok("claimed"));
    assert_eq!(record.get_datetime("claimedAt"), Ok(&ten_minutes_ago));
}

#[tokio::test]
async fn only_the_holder_of_a_claim_can_release_it_or_record_its_outcome() {
    let db = TestDatabase::new("notifications");
    let database = mongodb::Client::with_uri_str(&db.config().url)
        .await
        .unwrap()
        .database(&db.config().database);
    let store = Store::new(&database);
    let key = Delivery::key("event-1", Template::Receipt);
    let Claim::Won(holder) = store
        .claim(&key, "event-1", Template::Receipt)
        .await
        .unwrap()
    else {
        panic!("the first claim wins")
    };
    let stranger = ClaimId::new();
    assert!(!store.release(&key, &stranger).await.unwrap());
    assert!(!store.mark_sent(&key, &stranger).await.unwrap());
    assert!(!store.mark_unknown(&key, &stranger, "x").await.unwrap());
    let record = store.delivery(&key).await.unwrap().unwrap();
    assert_eq!(record.state, DeliveryState::Claimed);
    assert_eq!(record.claim_id.as_deref(), Some(holder.0.as_str()));
    // Another delivery finds it taken, with the holder's record.
    let Claim::Taken(found) = store
        .claim(&key, "event-1", Template::Receipt)
        .await
        .unwrap()
    else {
        panic!("taken")
    };
    assert_eq!(found, record);

    // Released by its holder, claimed anew: the old holder cannot touch the new claim.
    assert!(store.release(&key, &holder).await.unwrap());
    let Claim::Won(next) = store
        .claim(&key, "event-1", Template::Receipt)
        .await
        .unwrap()
    else {
        panic!("claimed again once released")
    };
    assert_ne!(next, holder);
    assert!(
        !store.release(&key, &holder).await.unwrap(),
        "a stale holder"
    );
    assert!(
        !store.mark_sent(&key, &holder).await.unwrap(),
        "a stale holder"
    );
    assert_eq!(
        store.delivery(&key).await.unwrap().unwrap().state,
        DeliveryState::Claimed
    );
    assert!(store.mark_sent(&key, &next).await.unwrap());
    assert_eq!(
        store.delivery(&key).await.unwrap().unwrap().state,
        DeliveryState::Sent
    );
    // Sent is final: not released, even by its holder.
    assert!(!store.release(&key, &next).await.unwrap());
}
