//! `/api/docs`: one Swagger UI page over the four services' OpenAPI documents, from the
//! client's own files, under a policy of its own.

use crate::helpers::{Options, spawn_app_with};

const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

#[tokio::test]
async fn the_docs_page_lists_the_four_documents_from_its_own_files() {
    // With Stripe configured, the site's pages allow Stripe's scripts; the docs page not.
    let app = spawn_app_with(Options {
        stripe_key: Some("pk_test_docs".into()),
        ..Options::default()
    })
    .await;
    let browser = app.browser();
    let redirect = browser.get("/api/docs").await;
    assert!(
        redirect.status / 100 == 3 && redirect.location() == "/api/docs/",
        "{} {}",
        redirect.status,
        redirect.location()
    );
    let page = browser.get("/api/docs/").await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    assert_eq!(page.header("content-security-policy"), DOCS_POLICY);
    // Every script is a file of the page's own, none inline and none from elsewhere.
    page.assert_has(&["swagger-ui-bundle.js", "swagger-initializer.js"]);
    page.assert_lacks(&["<script>", "http://", "https://"]);
    let init = browser.get("/api/docs/swagger-initializer.js").await;
    assert_eq!(init.status, 200);
    init.assert_has(&[
        "/api/users/openapi.json",
        "/api/tickets/openapi.json",
        "/api/orders/openapi.json",
        "/api/payments/openapi.json",
    ]);
    for file in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        let asset = browser.get(&format!("/api/docs/{file}")).await;
        assert_eq!(asset.status, 200, "{file}");
    }
    // The rest of the site keeps its policy.
    let home = browser.get("/").await;
    assert!(
        home.header("content-security-policy")
            .contains("https://js.stripe.com")
    );
}
