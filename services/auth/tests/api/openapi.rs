//! The OpenAPI document at `/api/users/openapi.json` describes exactly the routes the
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
    let doc = fetch_document(&app.address, "/api/users/openapi.json").await;
    let listed = operation_names(&doc);
    assert_eq!(
        listed,
        [
            "DELETE /api/users/{id}/ban",
            "GET /api/users/.well-known/jwks.json",
            "GET /api/users/currentuser",
            "GET /api/users/openapi.json",
            "GET /api/users/refresh",
            "POST /api/users/password",
            "POST /api/users/password-reset",
            "POST /api/users/password-reset/confirm",
            "POST /api/users/refresh",
            "POST /api/users/signin",
            "POST /api/users/signout",
            "POST /api/users/signout-everywhere",
            "POST /api/users/signup",
            "POST /api/users/{id}/ban",
        ]
    );
    assert_router_matches_document(&app.address, &doc, &session_cookie(&new_user_id())).await;
    assert_routes_only_through_the_document(&[
        ("http/mod.rs", include_str!("../../src/http/mod.rs")),
        ("http/openapi.rs", include_str!("../../src/http/openapi.rs")),
    ]);
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["session"]["name"], "session");
    assert_eq!(schemes["refresh"]["name"], "refresh");
    assert!(
        doc["components"]["schemas"]["CurrentUserResponse"]["properties"]["currentUser"]
            .is_object()
    );
}
