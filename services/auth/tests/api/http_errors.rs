use crate::helpers::spawn_app;

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_in_json() {
    let app = spawn_app().await;
    let response = app.get("/api/users/nope").await;
    assert_eq!(response.status, 404);
    assert_eq!(response.error_message(), "Route not found");
    let response = app.get("/api/users/signup").await;
    assert_eq!(response.status, 405);
    assert_eq!(response.error_message(), "Method not allowed");
}

#[tokio::test]
async fn malformed_json_is_400_and_oversized_bodies_413() {
    let app = spawn_app().await;
    let send = |body: String| {
        testkit::send(
            app.builder(reqwest::Method::POST, "/api/users/signup")
                .header("content-type", "application/json")
                .body(body),
        )
    };
    let response = send("{\"email\":".into()).await;
    assert_eq!(response.status, 400);
    assert!(!response.error_message().is_empty());

    let huge = format!(
        r#"{{"email":"a@b.co","password":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let response = send(huge).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.error_message(), "Request body is too large");
}
