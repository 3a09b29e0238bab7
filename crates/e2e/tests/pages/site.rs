//! What every page shares: the 404 page, assets, health, security headers.

use crate::helpers::{Down, Options, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_unknown_page_is_a_friendly_html_404() {
    let app = spawn_app().await;
    let page = app.browser().get("/no/such/page").await;
    assert_eq!(page.status, 404);
    assert!(page.header("content-type").starts_with("text/html"));
    page.assert_has(&["Page not found", "href=\"/\"", "GitTix"]);
    page.assert_lacks(&["\"errors\""]);
    // An id that cannot exist is the same page, not a service error.
    let page = app.browser().get("/tickets/not-an-id!").await;
    assert_eq!(page.status, 404);
    let page = app.browser().get("/tickets/65f1c0ffee65f1c0ffee65f1").await;
    assert_eq!(page.status, 404);
    page.assert_has(&["Page not found"]);
}

#[tokio::test]
async fn a_wrong_method_is_a_friendly_html_405() {
    let app = spawn_app().await;
    let page = app.browser().post("/", &[]).await;
    assert_eq!(page.status, 405);
    assert!(page.header("content-type").starts_with("text/html"));
}

#[tokio::test]
async fn health_and_readiness_do_not_depend_on_the_services() {
    let app = spawn_app_with(Options {
        down: vec![Down::Auth, Down::Tickets, Down::Orders, Down::Payments],
        ..Options::default()
    })
    .await;
    let browser = app.browser();
    assert_eq!(browser.get("/healthz").await.status, 200);
    let ready = browser.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
}

#[tokio::test]
async fn assets_are_served_by_the_client_itself() {
    let app = spawn_app().await;
    let browser = app.browser();
    for (path, kind) in [
        ("/assets/app.css", "text/css"),
        ("/assets/order.js", "text/javascript"),
        ("/assets/stripe-pay.js", "text/javascript"),
        ("/assets/ticket-live.js", "text/javascript"),
        ("/assets/favicon.svg", "image/svg+xml"),
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.header("content-type").starts_with(kind), "{path}");
        assert!(!page.body.is_empty(), "{path}");
    }
}

#[tokio::test]
async fn pages_load_no_external_script_without_a_stripe_key() {
    let app = spawn_app().await;
    let page = app.browser().get("/auth/signup").await;
    assert_eq!(page.status, 200);
    page.assert_has(&["/assets/app.css"]);
    page.assert_lacks(&["https://", "<script>"]);
    let policy = page.header("content-security-policy");
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
}

#[tokio::test]
async fn a_form_posted_from_another_site_is_refused() {
    let app = spawn_app().await;
    let ours = app.address.clone();
    let other_port = ours
        .rsplit_once(':')
        .map(|(host, _)| format!("{host}:1"))
        .unwrap();
    for (headers, why) in [
        (
            vec![("origin", "https://evil.example")],
            "another site's Origin",
        ),
        (vec![("origin", other_port.as_str())], "another port"),
        (
            vec![("sec-fetch-site", "cross-site"), ("origin", ours.as_str())],
            "fetch metadata says cross-site",
        ),
        (vec![("sec-fetch-site", "same-site")], "a sibling site"),
        (vec![], "neither header"),
    ] {
        let mut request = reqwest::Client::new().post(format!("{ours}/auth/signin"));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request
            .form(&[("email", "ann@example.com"), ("password", "correct horse")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{why}");
        assert!(
            response.text().await.unwrap().contains("another site"),
            "{why}"
        );
    }
    // Our own page's post, by either header, goes through (to the sign-in's answer).
    for (name, value) in [("origin", ours.as_str()), ("sec-fetch-site", "same-origin")] {
        let response = reqwest::Client::new()
            .post(format!("{ours}/auth/signin"))
            .header(name, value)
            .form(&[("email", "ann@example.com"), ("password", "correct horse")])
            .send()
            .await
            .unwrap();
        assert_ne!(response.status(), 403, "{name}");
    }
}

#[tokio::test]
async fn an_unreadable_query_or_form_is_a_friendly_400_page() {
    let app = spawn_app().await;
    let page = app.browser().get("/?limit=1&limit=2").await;
    assert_eq!(page.status, 400);
    assert!(page.header("content-type").starts_with("text/html"));
    page.assert_has(&["That didn&#39;t work"]);

    let response = reqwest::Client::new()
        .post(format!("{}/auth/signin", app.address))
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/json")
        .body(r#"{"email":"ann@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("could not be read"));
}

#[tokio::test]
async fn the_pages_request_id_goes_on_to_the_services_and_their_events() {
    let app = spawn_app().await;
    let (browser, _) = app.signed_in_browser().await;
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/tickets/new", app.address))
        .header("cookie", format!("session={}", browser.session().unwrap()))
        .header("sec-fetch-site", "same-origin")
        .header("x-request-id", "sell-from-a-page")
        .form(&[("title", "Traced"), ("price", "12")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["x-request-id"], "sell-from-a-page");

    let bus = common::bus::Bus::connect(&app.bus, "test").await.unwrap();
    let created = testkit::stored_messages(&bus, &bus.subject("ticket.created")).await;
    let traced: Vec<_> = created
        .iter()
        .filter(|m| m.payload.windows(6).any(|w| w == b"Traced"))
        .map(|m| {
            m.headers
                .as_ref()
                .and_then(|h| h.get("x-request-id"))
                .map(|v| v.as_str().to_owned())
        })
        .collect();
    assert_eq!(traced, [Some("sell-from-a-page".to_owned())]);
}
