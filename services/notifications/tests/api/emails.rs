//! Each email for its event: subject, recipient, and what it says in HTML and in text.

use chrono::{TimeZone, Utc};
use common::events::{
    CancelReason, OrderCancelled, OrderCompleted, OrderCreated, OrderTicket, OrderTicketRef,
    PaymentCreated, PaymentRefunded, TicketUpdated, UserPasswordResetRequested,
};
use testkit::{TestDatabase, new_user_id};

use crate::helpers::{PUBLIC_URL, TestApp, mail, recipient, spawn_app_with, test_config};

/// A user with an address of their own, a ticket and an order of theirs for it.
struct Buyer {
    user_id: String,
    email: String,
    ticket_id: String,
    order_id: String,
}

impl Buyer {
    fn new() -> Self {
        Self {
            user_id: new_user_id(),
            email: recipient(),
            ticket_id: new_user_id(),
            order_id: new_user_id(),
        }
    }

    fn order_created(&self) -> OrderCreated {
        OrderCreated {
            id: self.order_id.clone(),
            user_id: self.user_id.clone(),
            expires_at: Utc.with_ymd_and_hms(2030, 5, 17, 18, 45, 0).unwrap(),
            ticket: OrderTicket {
                id: self.ticket_id.clone(),
                price_cents: 1250,
            },
            version: 0,
        }
    }

    /// User, ticket and order published, the reservation email received.
    async fn with_order(&self, app: &TestApp, title: &str) {
        app.user(&self.user_id, &self.email).await;
        app.ticket(&self.ticket_id, title, 1250).await;
        app.publish(self.order_created()).await;
        mail(&self.email, "Your reservation").await;
    }

    fn order_url(&self) -> String {
        format!("{PUBLIC_URL}/orders/{}", self.order_id)
    }
}

#[tokio::test]
async fn a_new_user_is_welcomed_at_their_address() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let email = recipient();
    app.user(&new_user_id(), &email).await;
    let welcome = mail(&email, "Welcome to GitTix").await;
    assert_eq!(welcome.to, [email.as_str()]);
    assert_eq!(welcome.from, "no-reply@gittix.dev");
    assert!(welcome.html.contains(&email), "{}", welcome.html);
    assert!(welcome.html.contains("<html"), "compiled MJML");
    assert!(
        welcome
            .text
            .contains(&format!("Your account {email} is ready"))
    );
    assert!(welcome.text.contains(&format!("{PUBLIC_URL}/")));
}

#[tokio::test]
async fn a_reservation_names_the_ticket_price_deadline_and_order_page_whatever_arrived_first() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let buyer = Buyer::new();
    // The order before the user and the ticket it needs: retried until they are here.
    app.publish(buyer.order_created()).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.user(&buyer.user_id, &buyer.email).await;
    app.ticket(&buyer.ticket_id, "Jazz <Night> & \"Friends\"", 1250)
        .await;
    let reservation = mail(&buyer.email, "Your reservation of").await;
    assert_eq!(
        reservation.subject,
        "Your reservation of Jazz <Night> & \"Friends\": pay by Fri, 17 May 2030 18:45 UTC"
    );
    assert_eq!(reservation.to, [buyer.email.as_str()]);
    // The title is escaped in HTML, as it is in text.
    assert!(
        reservation
            .html
            .contains("Jazz &lt;Night&gt; &amp; &quot;Friends&quot;"),
        "{}",
        reservation.html
    );
    assert!(!reservation.html.contains("<Night>"));
    assert!(reservation.html.contains("$12.50"));
    assert!(reservation.html.contains("Fri, 17 May 2030 18:45 UTC"));
    assert!(
        reservation
            .html
            .contains(&format!("href=\"{}\"", buyer.order_url())),
        "the link as it is, not escaped: {}",
        reservation.html
    );
    let text = &reservation.text;
    assert!(text.contains("Jazz <Night> & \"Friends\""), "{text}");
    assert!(text.contains("$12.50"));
    assert!(text.contains("Pay by Fri, 17 May 2030 18:45 UTC"));
    assert!(text.contains(&buyer.order_url()), "{text}");
}

#[tokio::test]
async fn a_ticket_title_is_the_newest_version_seen() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let buyer = Buyer::new();
    app.user(&buyer.user_id, &buyer.email).await;
    let updated = |title: &str, version| TicketUpdated {
        id: buyer.ticket_id.clone(),
        title: title.into(),
        price_cents: 1250,
        user_id: "seller".into(),
        order_id: None,
        version,
        details: Default::default(),
        sold: false,
    };
    app.publish(updated("Renamed gig", 2)).await;
    // Older versions arriving late change nothing.
    app.ticket(&buyer.ticket_id, "Original gig", 1250).await;
    app.publish(updated("First rename", 1)).await;
    let store = notifications::store::Store::new(&app.db().await);
    testkit::eventually(
        "the ticket replica",
        std::time::Duration::from_secs(10),
        || async { store.ticket(&buyer.ticket_id).await.unwrap() },
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    app.publish(buyer.order_created()).await;
    let reservation = mail(&buyer.email, "Your reservation of").await;
    assert!(
        reservation
            .subject
            .starts_with("Your reservation of Renamed gig"),
        "{}",
        reservation.subject
    );
}

#[tokio::test]
async fn a_receipt_shows_the_ticket_payment_order_and_date_once_the_payment_is_known() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let buyer = Buyer::new();
    buyer.with_order(&app, "Opera gala").await;
    let payment_id = new_user_id();
    // Completed before payments' event arrived: retried until it has.
    let completed = app
        .publish(OrderCompleted {
            id: buyer.order_id.clone(),
            ticket: OrderTicketRef {
                id: buyer.ticket_id.clone(),
            },
            version: 1,
            payment_id: Some(payment_id.clone()),
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.publish(PaymentCreated {
        id: payment_id,
        order_id: buyer.order_id.clone(),
        stripe_id: "pi_1".into(),
        amount_cents: 1250,
        currency: "usd".into(),
        version: 0,
    })
    .await;
    let receipt = mail(&buyer.email, "Your receipt").await;
    assert_eq!(receipt.subject, "Your receipt for Opera gala");
    let date = completed
        .occurred_at
        .format("%a, %d %b %Y %H:%M UTC")
        .to_string();
    for part in [&receipt.html, &receipt.text] {
        assert!(part.contains("Opera gala"), "{part}");
        assert!(part.contains("$12.50"), "{part}");
        assert!(part.contains(&buyer.order_id), "{part}");
        assert!(part.contains(&date), "{part}");
    }
}

#[tokio::test]
async fn a_cancelled_order_says_why() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let cases = [
        (
            Some(CancelReason::Expired),
            "Your reservation of Gig expired",
            "was not paid for before its payment deadline",
        ),
        (
            Some(CancelReason::Buyer),
            "Your order for Gig was cancelled",
            "you cancelled it",
        ),
        (
            Some(CancelReason::Banned),
            "Your order for Gig was cancelled",
            "your account was suspended",
        ),
        (
            None,
            "Your order for Gig was cancelled",
            "can no longer be paid for",
        ),
    ];
    for (reason, subject, why) in cases {
        let buyer = Buyer::new();
        buyer.with_order(&app, "Gig").await;
        app.publish(OrderCancelled {
            id: buyer.order_id.clone(),
            ticket: OrderTicketRef {
                id: buyer.ticket_id.clone(),
            },
            version: 1,
            reason,
        })
        .await;
        let cancelled = mail(&buyer.email, subject).await;
        assert_eq!(cancelled.subject, subject, "{reason:?}");
        for part in [&cancelled.html, &cancelled.text] {
            assert!(part.contains(why), "{reason:?}: {part}");
            assert!(part.contains(&buyer.order_id), "{reason:?}: {part}");
        }
        let expired_heading = "Your reservation expired";
        assert_eq!(
            cancelled.text.contains(expired_heading),
            reason == Some(CancelReason::Expired),
            "{reason:?}: {}",
            cancelled.text
        );
    }
}

#[tokio::test]
async fn a_refund_names_the_amount_and_why() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let buyer = Buyer::new();
    buyer.with_order(&app, "Stand-up night").await;
    app.publish(PaymentRefunded {
        id: new_user_id(),
        payment_id: new_user_id(),
        order_id: buyer.order_id.clone(),
        stripe_id: "pi_2".into(),
        refund_id: "re_1".into(),
        amount_cents: 1999,
        currency: "eur".into(),
        reason: "duplicate".into(),
    })
    .await;
    let refund = mail(&buyer.email, "Your refund").await;
    assert_eq!(
        refund.subject,
        "Your refund of 19.99 EUR for Stand-up night"
    );
    for part in [&refund.html, &refund.text] {
        assert!(part.contains("19.99 EUR"), "{part}");
        assert!(
            part.contains("already been paid by another payment"),
            "{part}"
        );
        assert!(part.contains(&buyer.order_id), "{part}");
    }
}

#[tokio::test]
async fn a_password_reset_links_to_the_reset_page_with_the_token_encoded() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let user_id = new_user_id();
    let email = recipient();
    // The request before the user's address is known: retried until it is.
    app.publish(UserPasswordResetRequested {
        user_id: user_id.clone(),
        token: "tok+/=en &x<".into(),
        expires_at: Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 0).unwrap(),
        // An event from before auth filled the address in: the replica's is used.
        email: None,
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.user(&user_id, &email).await;
    let reset = mail(&email, "Reset your GitTix password").await;
    assert_eq!(reset.to, [email]);
    let link = format!("{PUBLIC_URL}/reset-password?token=tok%2B%2F%3Den%20%26x%3C");
    assert!(reset.text.contains(&link), "{}", reset.text);
    assert!(
        reset.html.contains(&format!("href=\"{link}\"")),
        "{}",
        reset.html
    );
    for part in [&reset.html, &reset.text] {
        assert!(part.contains("Wed, 02 Jan 2030 03:04 UTC"), "{part}");
    }
}

#[tokio::test]
async fn an_event_too_old_or_past_its_use_sends_nothing_but_its_records_are_kept() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let buyer = Buyer::new();
    // A user.created from before the service was deployed (read from the stream's history).
    let mut old = common::events::Envelope::new(common::events::UserCreated {
        id: buyer.user_id.clone(),
        email: buyer.email.clone(),
        version: 0,
    });
    old.occurred_at = Utc::now() - chrono::Duration::days(4);
    app.bus.publish(&old).await.unwrap();
    // A reset link that expired, and a reservation whose pay-by time passed, meanwhile.
    let past = Utc::now() - chrono::Duration::minutes(1);
    app.publish(UserPasswordResetRequested {
        user_id: buyer.user_id.clone(),
        token: "expired-token".into(),
        expires_at: past,
        email: None,
    })
    .await;
    app.ticket(&buyer.ticket_id, "Gig", 1250).await;
    app.publish(OrderCreated {
        expires_at: past,
        ..buyer.order_created()
    })
    .await;
    // The address was kept all the same: a fresh request is emailed.
    app.publish(UserPasswordResetRequested {
        user_id: buyer.user_id.clone(),
        token: "fresh-token".into(),
        expires_at: Utc::now() + chrono::Duration::minutes(30),
        email: None,
    })
    .await;
    let reset = mail(&buyer.email, "Reset your GitTix password").await;
    assert!(reset.text.contains("token=fresh-token"), "{}", reset.text);
    assert_eq!(
        crate::helpers::settled_count(&buyer.email).await,
        1,
        "no welcome, no expired link, no lapsed reservation"
    );
}

#[tokio::test]
async fn records_missed_as_events_arrive_as_snapshots() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let buyer = Buyer::new();
    app.user(&buyer.user_id, &buyer.email).await;
    // No ticket.created nor order.created: the owners' snapshots instead.
    app.publish(common::events::TicketSnapshot {
        id: buyer.ticket_id.clone(),
        title: "Snapshot gig".into(),
        price_cents: 1250,
        user_id: "seller".into(),
        order_id: None,
        version: 3,
        details: Default::default(),
        removed: false,
        sold: false,
    })
    .await;
    let order = buyer.order_created();
    app.publish(common::events::OrderSnapshot {
        id: order.id,
        user_id: order.user_id,
        status: "created".into(),
        expires_at: order.expires_at,
        ticket: order.ticket,
        payment_id: None,
        version: 0,
    })
    .await;
    app.publish(OrderCancelled {
        id: buyer.order_id.clone(),
        ticket: OrderTicketRef {
            id: buyer.ticket_id.clone(),
        },
        version: 1,
        reason: Some(CancelReason::Buyer),
    })
    .await;
    let cancelled = mail(&buyer.email, "Your order for").await;
    assert_eq!(
        cancelled.subject,
        "Your order for Snapshot gig was cancelled"
    );
}
