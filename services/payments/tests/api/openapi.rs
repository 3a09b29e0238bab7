//! The OpenAPI document at `/api/payments/openapi.json` describes exactly the routes the
//! service answers.

use testkit::openapi::{
    assert_router_matches_document, assert_routes_only_through_the_document, fetch_document,
    operation_names,
};
use testkit::{new_user_id, session_cookie};

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_document_and_the_router_describe_the_same_routes() {
    let app = spawn_app().await;
    let doc = fetch_document(&app.address, "/api/payments/openapi.json").await;
    let listed = operation_names(&doc);
    assert_eq!(
        listed,
        [
            "GET /api/payments",
            "GET /api/payments/openapi.json",
            "POST /api/payments",
            "POST /api/payments/webhook",
        ]
    );
    assert_router_matches_document(&app.address, &doc, &session_cookie(&new_user_id())).await;
    assert_routes_only_through_the_document(&[
        ("http/mod.rs", include_str!("../../src/http/mod.rs")),
        ("http/openapi.rs", include_str!("../../src/http/openapi.rs")),
    ]);
    let pay = &doc["paths"]["/api/payments"]["post"]["responses"];
    for status in ["201", "202"] {
        assert!(
            pay[status]["content"]["application/json"]["schema"].is_object(),
            "{status}"
        );
    }
}
