use reqwest::Method;
use serde_json::json;
use testkit::new_user_id;

use crate::helpers::spawn_apps;

#[tokio::test]
async fn an_order_shows_its_tickets_venue_date_and_seat() {
    let apps = spawn_apps().await;
    let (_, ticket) = apps
        .listed_ticket_with(json!({
            "title": "Concert", "price": 20, "venue": "Arena", "city": "Lyon",
            "startsAt": "2099-05-01T20:00:00Z", "section": "A", "row": "3", "seat": "12",
            "description": "Front row",
        }))
        .await;
    let buyer = new_user_id();
    let order = apps.place(&buyer, &ticket).await;
    let shown = apps
        .orders_api(
            Method::GET,
            &format!("/api/orders/{order}"),
            Some(&buyer),
            None,
        )
        .await;
    let t = &shown.body["ticket"];
    assert_eq!(t["venue"], "Arena", "{t}");
    assert_eq!(t["city"], "Lyon");
    assert_eq!(t["startsAt"], "2099-05-01T20:00:00.000Z");
    assert_eq!(
        (&t["section"], &t["row"], &t["seat"]),
        (&json!("A"), &json!("3"), &json!("12"))
    );
    assert_eq!(t["description"], "Front row");

    // A ticket listed with a title and a price only: the details are null.
    let (_, plain) = apps.listed_ticket(10.0).await;
    let placed = apps.order(&buyer, &plain).await;
    assert_eq!(placed.status, 201);
    for field in [
        "venue",
        "city",
        "startsAt",
        "section",
        "row",
        "seat",
        "description",
    ] {
        assert!(
            placed.body["ticket"][field].is_null(),
            "{field}: {}",
            placed.body
        );
    }
}
