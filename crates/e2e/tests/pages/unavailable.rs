//! A service that is down gives a friendly 503 page naming it, never a crash.

use crate::helpers::{Down, Options, spawn_app_with};

fn down(services: &[Down]) -> Options {
    Options {
        down: services.to_vec(),
        ..Options::default()
    }
}

#[tokio::test]
async fn tickets_down_gives_a_503_page_on_the_home_page() {
    let app = spawn_app_with(down(&[Down::Tickets])).await;
    let page = app.browser().get("/").await;
    assert_eq!(page.status, 503);
    assert!(page.header("content-type").starts_with("text/html"));
    assert_eq!(page.header("retry-after"), "5");
    page.assert_has(&[
        "Temporarily unavailable",
        "Tickets is not available right now",
    ]);
    page.assert_lacks(&["\"errors\"", "connection", "127.0.0.1"]);
}

#[tokio::test]
async fn auth_down_only_matters_to_visitors_with_a_session() {
    let app = spawn_app_with(down(&[Down::Auth])).await;
    let anonymous = app.browser().get("/").await;
    assert_eq!(anonymous.status, 200);

    let browser = app.browser();
    browser.set_session(Some("some.session.token"));
    let page = browser.get("/").await;
    assert_eq!(page.status, 503);
    page.assert_has(&["Accounts is not available right now"]);

    let page = app
        .browser()
        .post(
            "/auth/signup",
            &[("email", "ann@example.com"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(page.status, 503);
}

#[tokio::test]
async fn orders_down_gives_a_503_page_on_orders_and_on_purchase() {
    let app = spawn_app_with(down(&[Down::Orders])).await;
    let (seller, _) = app.signed_in_browser().await;
    let ticket = seller.sell("Matinee", "10").await;
    let (buyer, _) = app.signed_in_browser().await;
    let page = buyer.get("/orders").await;
    assert_eq!(page.status, 503);
    page.assert_has(&["Orders is not available right now"]);
    let page = buyer
        .post(&format!("/tickets/{ticket}/purchase"), &[])
        .await;
    assert_eq!(page.status, 503);
}

#[tokio::test]
async fn payments_down_gives_a_503_page_on_paying() {
    let app = spawn_app_with(down(&[Down::Payments])).await;
    let (seller, _) = app.signed_in_browser().await;
    let ticket = seller.sell("Opening", "10").await;
    let (buyer, _) = app.signed_in_browser().await;
    let order = buyer.buy(&ticket).await;
    let page = buyer
        .post(
            &format!("/orders/{order}/pay"),
            &[("paymentMethod", "pm_card_visa")],
        )
        .await;
    assert_eq!(page.status, 503);
    page.assert_has(&["Payments is not available right now"]);
}
