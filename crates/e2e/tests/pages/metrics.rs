//! The client's metrics: served on a port of their own, never on the pages' port (which
//! the ingress exposes whole).

use crate::helpers::spawn_app;

/// The value of the counter line of `http_requests_total` with these labels, if any.
fn requests(text: &str, route: &str, status: &str) -> Option<u64> {
    text.lines()
        .filter(|line| line.starts_with("http_requests_total{"))
        .filter(|line| line.contains(&format!("route=\"{route}\"")))
        .filter(|line| line.contains(&format!("status=\"{status}\"")))
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn page_requests_are_counted_on_the_metrics_port_and_not_on_the_pages() {
    let app = spawn_app().await;
    let browser = app.browser();
    let before = reqwest::get(&app.metrics)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let before = requests(&before, "/auth/signin", "2xx").unwrap_or(0);
    for _ in 0..3 {
        assert_eq!(browser.get("/auth/signin").await.status, 200);
    }
    let metrics = reqwest::get(&app.metrics).await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    let after = requests(&text, "/auth/signin", "2xx").unwrap_or(0);
    // Other tests in this process count sign-in pages too: at least ours.
    assert!(after >= before + 3, "{before} -> {after}:\n{text}");
    assert!(
        text.contains("http_request_duration_seconds_bucket{"),
        "{text}"
    );

    // The pages' port has no /metrics: the ingress routes every path there.
    assert_eq!(browser.get("/metrics").await.status, 404);
}
