//! A ban reaches every service: the real auth, tickets, orders and payments on one event
//! stream, called directly as the browser's scripts and the ingress would.

use std::time::{Duration, Instant};

use reqwest::{Client, Method, Url};
use serde_json::{Value, json};
use testkit::JsonResponse;

use crate::helpers::{ADMIN_EMAIL, spawn_app};

/// A browser-like client with a cookie store, calling one service.
async fn call(
    client: &Client,
    base: &Url,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> JsonResponse {
    let mut request = client.request(method, base.join(path).unwrap());
    if let Some(body) = body {
        request = request.json(&body);
    }
    JsonResponse::from(request.send().await.unwrap()).await
}

fn browser() -> Client {
    Client::builder().cookie_store(true).build().unwrap()
}

#[tokio::test]
async fn within_a_second_of_a_ban_every_service_refuses_the_user_and_hides_their_listings() {
    let app = spawn_app().await;
    let urls = &app.services;
    let (admin, ann) = (browser(), browser());
    let credentials = |email: &str| Some(json!({"email": email, "password": "correct horse"}));
    let signup = |client, email: &'static str| async move {
        let response = call(
            client,
            &urls.auth,
            Method::POST,
            "api/users/signup",
            credentials(email),
        )
        .await;
        assert_eq!(response.status, 201, "{:?}", response.body);
        response.body["id"].as_str().unwrap().to_owned()
    };
    signup(&admin, ADMIN_EMAIL).await;
    let ann_id = signup(&ann, "ann@example.com").await;
    let listed = call(
        &ann,
        &urls.tickets,
        Method::POST,
        "api/tickets",
        Some(json!({"title": "Ann's concert", "price": 20})),
    )
    .await;
    assert_eq!(listed.status, 201);
    let ticket_id = listed.body["id"].as_str().unwrap().to_owned();

    let banned = call(
        &admin,
        &urls.auth,
        Method::POST,
        &format!("api/users/{ann_id}/ban"),
        None,
    )
    .await;
    assert_eq!(banned.status, 204);
    let answered = Instant::now();

    // Each service, with a request Ann's still unexpired token would have been allowed.
    let checks: [(&Url, Method, &str, Option<Value>); 4] = [
        (
            &urls.auth,
            Method::POST,
            "api/users/password",
            Some(json!({})),
        ),
        (
            &urls.tickets,
            Method::POST,
            "api/tickets",
            Some(json!({"title": "More", "price": 5})),
        ),
        (&urls.orders, Method::GET, "api/orders", None),
        (
            &urls.payments,
            Method::GET,
            "api/payments?orderId=507f1f77bcf86cd799439011",
            None,
        ),
    ];
    let mut refused = [false; 4];
    while !refused.iter().all(|r| *r) {
        assert!(
            answered.elapsed() < Duration::from_secs(1),
            "a second after the ban, refused by {refused:?} (auth, tickets, orders, payments)"
        );
        for (i, (base, method, path, body)) in checks.iter().enumerate() {
            if !refused[i] {
                let response = call(&ann, base, method.clone(), path, body.clone()).await;
                if response.status == 403 {
                    assert_eq!(response.error_message(), "Account suspended");
                    refused[i] = true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listing = call(&admin, &urls.tickets, Method::GET, "api/tickets", None).await;
    assert!(
        listing
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["id"] != ticket_id.as_str()),
        "a banned seller's tickets leave the listing"
    );

    // Unbanned: back in the listing and allowed again.
    let unbanned = call(
        &admin,
        &urls.auth,
        Method::DELETE,
        &format!("api/users/{ann_id}/ban"),
        None,
    )
    .await;
    assert_eq!(unbanned.status, 204);
    testkit::eventually("ann allowed again", Duration::from_secs(5), || async {
        let orders = call(&ann, &urls.orders, Method::GET, "api/orders", None).await;
        let listing = call(&admin, &urls.tickets, Method::GET, "api/tickets", None).await;
        let back = listing
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == ticket_id.as_str());
        (orders.status == 200 && back).then_some(())
    })
    .await;
}
