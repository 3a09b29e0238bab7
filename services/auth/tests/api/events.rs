use std::time::Duration;

use testkit::{TestDatabase, bus_config, eventually, stored_events};

use crate::helpers::{spawn_app_with, test_config_with_bus};

#[tokio::test]
async fn signup_publishes_user_created_once() {
    let db = TestDatabase::new("auth");
    let bus = bus_config("auth");
    let app = spawn_app_with(test_config_with_bus(db.config(), bus.clone()), db).await;
    let user = app.signup("ann@example.com", "correct horse").await;
    assert_eq!(
        app.signup("ann@example.com", "correct horse").await.status,
        409
    );

    let events = eventually(
        "user.created on the stream",
        Duration::from_secs(10),
        || async {
            let events = stored_events(&bus, "user.created").await;
            (!events.is_empty()).then_some(events)
        },
    )
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "user.created");
    assert_eq!(events[0]["data"]["id"], user.body["id"]);
    assert_eq!(events[0]["data"]["email"], "ann@example.com");
    assert_eq!(events[0]["data"]["version"], 0);
}
