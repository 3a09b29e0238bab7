//! The OpenAPI document at `/api/orders/openapi.json` describes exactly the routes the
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
    let doc = fetch_document(&app.address, "/api/orders/openapi.json").await;
    let listed = operation_names(&doc);
    assert_eq!(
        listed,
        [
            "DELETE /api/orders/{id}",
            "GET /api/orders",
            "GET /api/orders/openapi.json",
            "GET /api/orders/{id}",
            "POST /api/orders",
        ]
    );
    assert_router_matches_document(&app.address, &doc, &session_cookie(&new_user_id())).await;
    assert_routes_only_through_the_document(&[
        ("http/mod.rs", include_str!("../../src/http/mod.rs")),
        ("http/openapi.rs", include_str!("../../src/http/openapi.rs")),
    ]);
    let create = &doc["paths"]["/api/orders"]["post"];
    assert_eq!(create["security"], serde_json::json!([{"session": []}]));
    for status in [
        "400", "401", "403", "404", "409", "413", "415", "429", "503",
    ] {
        assert_eq!(
            create["responses"][status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{status}"
        );
    }
}
