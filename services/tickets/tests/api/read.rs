use serde_json::json;
use testkit::new_user_id;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_ticket_is_public_and_unknown_or_malformed_ids_are_404() {
    let app = spawn_app().await;
    let (_, id) = app.listed_ticket().await;
    let response = app.get(&format!("/api/tickets/{id}")).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body["title"], "Concert");
    for missing in ["507f1f77bcf86cd799439011", "not-an-id"] {
        let response = app.get(&format!("/api/tickets/{missing}")).await;
        assert_eq!(response.status, 404, "{missing}");
        assert_eq!(response.error_message(), "Ticket not found");
    }
    // An id that is not UTF-8 once decoded is a bad request, in the JSON error shape
    // (found by Schemathesis: axum's own answer is plain text).
    let response = app.get("/api/tickets/%FF").await;
    assert_eq!(response.status, 400);
    assert!(
        response.error_message().contains("Invalid UTF-8"),
        "{:?}",
        response.body
    );
}

#[tokio::test]
async fn the_list_pages_through_available_tickets_newest_first() {
    let app = spawn_app().await;
    let seller = new_user_id();
    let mut ids = Vec::new();
    for n in 0..5 {
        let created = app.create(&seller, &format!("T{n}"), 10.0).await;
        ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    ids.reverse();

    let mut seen = Vec::new();
    let mut path = "/api/tickets?limit=2".to_owned();
    loop {
        let page = app.get(&path).await;
        assert_eq!(page.status, 200);
        seen.extend(
            page.body
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned()),
        );
        let Some(link) = page.headers.get("link") else {
            break;
        };
        let link = link.to_str().unwrap();
        assert!(link.ends_with(">; rel=\"next\""), "{link}");
        path = link
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
    }
    assert_eq!(seen, ids);
    assert!(app.get("/api/tickets").await.headers.get("link").is_none());
}

#[tokio::test]
async fn bad_paging_parameters_are_400() {
    let app = spawn_app().await;
    let response = app.get("/api/tickets?limit=0&cursor=zzz").await;
    assert_eq!(response.status, 400);
    assert_eq!(response.error_fields(), ["limit", "cursor"]);
    let response = app.get("/api/tickets?limit=101").await;
    assert_eq!(response.status, 400);
    // A query string that cannot even be read gets the JSON error shape, not text.
    let response = app.get("/api/tickets?limit=1&limit=2").await;
    assert_eq!(response.status, 400);
    assert_eq!(response.headers["content-type"], "application/json");
    assert!(!response.error_message().is_empty(), "{:?}", response.body);
}

#[tokio::test]
async fn reserved_tickets_leave_the_list_which_is_backed_by_an_index() {
    let app = spawn_app().await;
    let (_, reserved) = app.listed_ticket().await;
    let (_, free) = app.listed_ticket().await;
    app.publish(common::events::OrderCreated {
        id: "order-1".into(),
        user_id: new_user_id(),
        expires_at: chrono::Utc::now(),
        ticket: common::events::OrderTicket {
            id: reserved.clone(),
            price_cents: 2000,
        },
        version: 0,
    })
    .await;
    let list = testkit::eventually(
        "the reserved ticket to leave the list",
        std::time::Duration::from_secs(10),
        || async {
            let list = app.get("/api/tickets").await.body;
            (list.as_array().unwrap().len() == 1).then_some(list)
        },
    )
    .await;
    assert_eq!(list[0]["id"], json!(free));

    let client = mongodb::Client::with_uri_str(&app.db.url).await.unwrap();
    let indexes = client
        .database(&app.db.name)
        .collection::<bson::Document>("tickets")
        .list_index_names()
        .await
        .unwrap();
    assert!(
        indexes.contains(&"available_newest_first".to_owned()),
        "{indexes:?}"
    );
}
