//! Buying: purchase, the order page with its countdown, paying (the real payments service
//! charges through its simulated gateway, and its event completes the order in the real
//! orders service), cancelling, my orders.

use std::time::Duration;

use crate::helpers::{Options, page_eventually, spawn_app, spawn_app_with, stripe_gateway};

/// Declined by the simulated gateway, like Stripe's test card of that name.
const DECLINED: &str = "pm_card_chargeDeclined";

#[tokio::test]
async fn buying_shows_the_countdown_and_paying_completes_the_order() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let ticket = seller.sell("Cup final", "45").await;
    let (buyer, _) = app.signed_in_browser().await;
    let order = buyer.buy(&ticket).await;

    let page = buyer.get(&format!("/orders/{order}")).await;
    assert_eq!(page.status, 200);
    page.assert_has(&[
        "Cup final",
        "$45.00",
        "Awaiting payment",
        "data-countdown",
        "Time left to pay",
        "Pay (test mode)",
        r#"name="paymentMethod" value="pm_card_visa""#,
        r#"<script src="/assets/order.js" defer></script>"#,
    ]);
    page.assert_lacks(&["js.stripe.com"]);
    let seconds: i64 = page
        .body
        .split("data-seconds-left=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!((890..=900).contains(&seconds), "{seconds}");

    // The ticket is now reserved for everyone else.
    // The ticket is reserved for everyone else once tickets hears of the order.
    let ticket_page = page_eventually(
        &seller,
        &format!("/tickets/{ticket}"),
        "the ticket to show reserved",
        |p| p.body.contains("reserved by another buyer"),
    )
    .await;
    ticket_page.assert_has(&["Reserved"]);
    ticket_page.assert_lacks(&["Edit your listing"]);

    let paid = buyer
        .post(
            &format!("/orders/{order}/pay"),
            &[("paymentMethod", "pm_card_visa")],
        )
        .await;
    assert_eq!(paid.status, 303, "{}", paid.body);
    let page = page_eventually(
        &buyer,
        &format!("/orders/{order}"),
        "the order to show complete",
        |p| p.body.contains("badge-complete"),
    )
    .await;
    page.assert_has(&["Complete", "Paid."]);
    page.assert_lacks(&["Pay (test mode)", "data-countdown", "Cancel order"]);

    let list = buyer.get("/orders").await;
    list.assert_has(&["Cup final", "badge badge-complete"]);
}

#[tokio::test]
async fn a_declined_card_is_shown_on_the_order_page() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let ticket = seller.sell("Derby", "20").await;
    let (buyer, _) = app.signed_in_browser().await;
    let order = buyer.buy(&ticket).await;
    let pay = format!("/orders/{order}/pay");

    // Straight after the purchase: payments may not have heard of the order yet, and the
    // client waits for it rather than calling the order unknown.
    let page = buyer.post(&pay, &[("paymentMethod", DECLINED)]).await;
    assert_eq!(page.status, 402, "{}", page.body);
    page.assert_has(&[
        "Your card was declined.",
        "Pay (test mode)",
        "Awaiting payment",
    ]);

    // Another card after a decline goes through.
    let paid = buyer.post(&pay, &[("paymentMethod", "pm_card_visa")]).await;
    assert_eq!(paid.status, 303, "{}", paid.body);
    let page = page_eventually(
        &buyer,
        &format!("/orders/{order}"),
        "the order to show complete",
        |p| p.body.contains("badge-complete"),
    )
    .await;
    page.assert_has(&["Paid."]);
}

#[tokio::test]
async fn a_card_that_needs_confirming_asks_for_javascript() {
    let stripe = testkit::stripe::StripeStandIn::start().await;
    let app = spawn_app_with(Options {
        gateway: stripe_gateway(stripe.url.clone()),
        ..Options::default()
    })
    .await;
    let (seller, _) = app.signed_in_browser().await;
    let ticket = seller.sell("Opera", "30").await;
    let (buyer, _) = app.signed_in_browser().await;
    let order = buyer.buy(&ticket).await;

    let page = buyer
        .post(
            &format!("/orders/{order}/pay"),
            &[("paymentMethod", "pm_card_threeDSecure2Required")],
        )
        .await;
    assert_eq!(page.status, 202, "{}", page.body);
    page.assert_has(&["needs JavaScript", "Awaiting payment"]);
}

#[tokio::test]
async fn paying_for_an_unknown_order_is_page_not_found() {
    let app = spawn_app().await;
    let (buyer, _) = app.signed_in_browser().await;
    let page = buyer
        .post(
            "/orders/0123456789abcdef01234567/pay",
            &[("paymentMethod", "pm_card_visa")],
        )
        .await;
    assert_eq!(page.status, 404, "{}", page.body);
    page.assert_has(&["Page not found"]);
}

#[tokio::test]
async fn buying_your_own_ticket_is_refused_with_the_reason() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let ticket = seller.sell("Recital", "8").await;
    let page = testkit::eventually(
        "orders to know the ticket",
        Duration::from_secs(20),
        || async {
            let page = seller
                .post(&format!("/tickets/{ticket}/purchase"), &[])
                .await;
            (page.status == 400).then_some(page)
        },
    )
    .await;
    page.assert_has(&["You cannot buy your own ticket"]);
}

#[tokio::test]
async fn a_reserved_ticket_cannot_be_bought_twice() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let ticket = seller.sell("Gala", "99").await;
    let (first, _) = app.signed_in_browser().await;
    first.buy(&ticket).await;
    let (second, _) = app.signed_in_browser().await;
    let page = second
        .post(&format!("/tickets/{ticket}/purchase"), &[])
        .await;
    assert_eq!(page.status, 409);
    page.assert_has(&["Ticket is already reserved"]);
}

#[tokio::test]
async fn a_cancelled_order_has_no_pay_form_and_frees_the_ticket() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let ticket = seller.sell("Circus", "15").await;
    let (buyer, _) = app.signed_in_browser().await;
    let order = buyer.buy(&ticket).await;

    let page = buyer.post(&format!("/orders/{order}/cancel"), &[]).await;
    assert_eq!(page.status, 303);
    let page = buyer.follow(&page).await;
    page.assert_has(&["badge-cancelled", "cancelled or expired"]);
    page.assert_lacks(&["Pay (test mode)", "data-countdown"]);

    page_eventually(&buyer, "/", "the ticket to be back on sale", |p| {
        p.body.contains(&format!("/tickets/{ticket}"))
    })
    .await;
}

#[tokio::test]
async fn an_order_past_its_window_says_order_expired_without_a_pay_form() {
    let app = spawn_app_with(Options {
        window: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    let (seller, _) = app.signed_in_browser().await;
    let ticket = seller.sell("Late show", "5").await;
    let (buyer, _) = app.signed_in_browser().await;
    let order = buyer.buy(&ticket).await;
    let page = page_eventually(
        &buyer,
        &format!("/orders/{order}"),
        "the order to be past its window",
        |p| !p.body.contains("data-countdown"),
    )
    .await;
    page.assert_lacks(&["Pay (test mode)"]);
    assert!(
        page.body.contains("Order expired") || page.body.contains("cancelled or expired"),
        "{}",
        page.body
    );
    let page = buyer
        .post(
            &format!("/orders/{order}/pay"),
            &[("paymentMethod", "pm_card_visa")],
        )
        .await;
    assert_eq!(page.status, 409);
    page.assert_has(&["Order has expired"]);
}

#[tokio::test]
async fn orders_are_private_and_need_a_session() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let ticket = seller.sell("Quartet", "25").await;
    let (buyer, _) = app.signed_in_browser().await;
    let order = buyer.buy(&ticket).await;

    let page = app.browser().get(&format!("/orders/{order}")).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location(),
        format!("/auth/signin?next=/orders/{order}")
    );
    assert_eq!(app.browser().get("/orders").await.status, 303);

    let page = seller.get(&format!("/orders/{order}")).await;
    assert_eq!(page.status, 403);
    page.assert_has(&["Not your order"]);

    let empty = seller.get("/orders").await;
    empty.assert_has(&["You have no orders yet"]);
}

#[tokio::test]
async fn with_a_stripe_key_the_order_page_uses_stripe_elements() {
    let app = spawn_app_with(Options {
        stripe_key: Some("pk_test_gittix".into()),
        ..Options::default()
    })
    .await;
    let (seller, _) = app.signed_in_browser().await;
    let ticket = seller.sell("Keynote", "60").await;
    let (buyer, _) = app.signed_in_browser().await;
    let order = buyer.buy(&ticket).await;
    let page = buyer.get(&format!("/orders/{order}")).await;
    page.assert_has(&[
        r#"<script src="https://js.stripe.com/v3/" defer></script>"#,
        r#"data-stripe-key="pk_test_gittix""#,
        r#"id="card-element""#,
    ]);
    page.assert_lacks(&["Pay (test mode)"]);
    assert!(
        page.header("content-security-policy")
            .contains("https://js.stripe.com")
    );
    // Only the order page loads it.
    buyer.get("/").await.assert_lacks(&["js.stripe.com"]);
}
