use reqwest::Method;
use testkit::new_user_id;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_buyer_sees_only_their_orders_newest_first_in_pages() {
    let app = spawn_app().await;
    let buyer = new_user_id();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, ticket) = app.listed_ticket(10.0).await;
        ids.push(app.place(&buyer, &ticket).await);
    }
    let (_, other_ticket) = app.listed_ticket(10.0).await;
    app.order(&new_user_id(), &other_ticket).await;
    ids.reverse();

    let first = app
        .request(Method::GET, "/api/orders?limit=2", Some(&buyer), None)
        .await;
    assert_eq!(first.status, 200);
    let page: Vec<&str> = first
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(page, ids[..2]);
    assert_eq!(first.body[0]["ticket"]["title"], "Concert");
    let link = first
        .headers
        .get("link")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let second = app.request(Method::GET, next, Some(&buyer), None).await;
    let page: Vec<&str> = second
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(page, ids[2..]);
    assert_eq!(app.get("/api/orders").await.status, 401);
}

#[tokio::test]
async fn an_order_is_404_when_unknown_and_403_for_another_user() {
    let app = spawn_app().await;
    let (_, ticket) = app.listed_ticket(10.0).await;
    let buyer = new_user_id();
    let order = app.place(&buyer, &ticket).await;
    let path = format!("/api/orders/{order}");
    assert_eq!(
        app.request(Method::GET, &path, Some(&buyer), None)
            .await
            .status,
        200
    );
    let stranger = app
        .request(Method::GET, &path, Some(&new_user_id()), None)
        .await;
    assert_eq!(
        (stranger.status, stranger.error_message()),
        (403, "Not your order")
    );
    for missing in ["/api/orders/507f1f77bcf86cd799439011", "/api/orders/x"] {
        let response = app.request(Method::GET, missing, Some(&buyer), None).await;
        assert_eq!(
            (response.status, response.error_message()),
            (404, "Order not found")
        );
    }
}
