use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn signin_with_the_right_password_starts_a_session() {
    let app = spawn_app().await;
    let signup = app.signup("ann@example.com", "correct horse").await;
    app.post("/api/users/signout", json!({})).await;
    assert!(app.current_user().await.is_null());

    let response = app.signin("ANN@example.com ", "correct horse").await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(response.body["id"], signup.body["id"]);
    assert_eq!(
        response.set_cookies().len(),
        2,
        "the access and refresh cookies"
    );
    assert_eq!(app.current_user().await["email"], "ann@example.com");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let app = spawn_app().await;
    app.signup("ann@example.com", "correct horse").await;
    let wrong_password = app.signin("ann@example.com", "wrong horse!").await;
    let unknown_user = app.signin("bob@example.com", "correct horse").await;
    for response in [&wrong_password, &unknown_user] {
        assert_eq!(response.status, 401);
        assert_eq!(response.error_message(), "Invalid credentials");
        assert!(response.set_cookies().is_empty());
    }
    assert_eq!(wrong_password.body, unknown_user.body);
}

#[tokio::test]
async fn signin_validates_its_input() {
    let app = spawn_app().await;
    let response = app.post("/api/users/signin", json!({"email": "x"})).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.error_fields(), ["email", "password"]);
}
