use testkit::new_user_id;

use crate::helpers::spawn_app;

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_the_events_published() {
    let app = spawn_app().await;
    assert_eq!(
        app.create(&new_user_id(), "Metered", 10.0).await.status,
        201
    );
    assert_eq!(app.get("/api/tickets/nope").await.status, 404);
    let text = testkit::eventually(
        "the ticket.created publish counted",
        std::time::Duration::from_secs(10),
        || async {
            let text = reqwest::get(format!("{}/metrics", app.address))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.contains(r#"outbox_events_published_total{subject="ticket.created"}"#)
                .then_some(text)
        },
    )
    .await;
    let counted = |route: &str, method: &str, status: &str| {
        text.lines().any(|line| {
            line.starts_with("http_requests_total{")
                && line.contains(&format!(r#"route="{route}""#))
                && line.contains(&format!(r#"method="{method}""#))
                && line.contains(&format!(r#"status="{status}""#))
        })
    };
    assert!(counted("/api/tickets", "POST", "2xx"), "{text}");
    assert!(counted("/api/tickets/{id}", "GET", "4xx"), "{text}");
    assert!(
        text.contains("http_request_duration_seconds_bucket{"),
        "{text}"
    );
}
