//! The password-reset email goes to the address its event carries, so it does not wait for
//! (or depend on) the user's replica; older events without it use the replica.

use chrono::Utc;
use common::events::UserPasswordResetRequested;
use testkit::{TestDatabase, new_user_id};

use crate::helpers::{mail, recipient, settled_count, spawn_app_with, test_config};

#[tokio::test]
async fn a_reset_link_reaches_a_user_this_service_has_no_record_of() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let email = recipient();
    // No user.created for this user, ever.
    app.publish(UserPasswordResetRequested {
        user_id: new_user_id(),
        token: "carried-token".into(),
        expires_at: Utc::now() + chrono::Duration::minutes(30),
        email: Some(email.clone()),
    })
    .await;
    let reset = mail(&email, "Reset your GitTix password").await;
    assert_eq!(reset.to, std::slice::from_ref(&email));
    assert!(reset.text.contains("token=carried-token"), "{}", reset.text);
    assert_eq!(settled_count(&email).await, 1);
}

#[tokio::test]
async fn the_address_in_the_event_wins_over_the_replica() {
    let db = TestDatabase::new("notifications");
    let app = spawn_app_with(test_config(&db)).await;
    let user_id = new_user_id();
    let old = recipient();
    let new = recipient();
    // The replica has an older address; auth's event carries the current one.
    app.user(&user_id, &old).await;
    mail(&old, "Welcome").await;
    app.publish(UserPasswordResetRequested {
        user_id,
        token: "t".into(),
        expires_at: Utc::now() + chrono::Duration::minutes(30),
        email: Some(new.clone()),
    })
    .await;
    mail(&new, "Reset your GitTix password").await;
    assert_eq!(settled_count(&old).await, 1, "only the welcome");
}
