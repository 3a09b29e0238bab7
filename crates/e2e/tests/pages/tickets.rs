//! Selling, listing, viewing and editing tickets through the pages, against the real
//! tickets service.

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_listed_ticket_shows_on_its_page_and_on_the_home_page() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let form = seller.get("/tickets/new").await;
    assert_eq!(form.status, 200);
    form.assert_has(&[
        r#"<label for="title">Title</label>"#,
        r#"<label for="price">"#,
    ]);

    let page = seller
        .post(
            "/tickets/new",
            &[("title", "Opera <night>"), ("price", "19.9")],
        )
        .await;
    let id = page.redirect_id("/tickets");
    let ticket = seller.follow(&page).await;
    assert_eq!(ticket.status, 200);
    // Text from the service is escaped.
    ticket.assert_has(&["Opera &#60;night&#62;", "$19.90", "Available"]);
    ticket.assert_lacks(&["Opera <night>"]);

    let home = app.browser().get("/").await;
    home.assert_has(&[&format!("href=\"/tickets/{id}\""), "$19.90"]);
}

#[tokio::test]
async fn sell_form_errors_appear_next_to_their_fields() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    // Not a number: caught by the client, the title kept.
    let page = seller
        .post("/tickets/new", &[("title", "Jazz"), ("price", "ten")])
        .await;
    assert_eq!(page.status, 400);
    page.assert_has(&[
        r#"id="price-error">Price must be a number"#,
        r#"value="Jazz""#,
    ]);

    // A number the service refuses: its message, next to the field.
    let page = seller
        .post("/tickets/new", &[("title", ""), ("price", "0.001")])
        .await;
    assert_eq!(page.status, 400);
    page.assert_has(&[r#"id="title-error">"#, r#"id="price-error">Price must be"#]);
}

#[tokio::test]
async fn the_home_page_pages_through_tickets_newest_first() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(seller.sell(&format!("Show {n}"), "10").await);
    }
    let browser = app.browser();
    let first = browser.get("/?limit=2").await;
    first.assert_has(&["Show 3", "Show 2", "rel=\"next\""]);
    first.assert_lacks(&["Show 1", "First page"]);
    // `<a href="/?limit=2&#38;cursor=…" rel="next">`
    let next = first
        .body
        .split("<a href=\"")
        .find(|s| s.contains("rel=\"next\""))
        .and_then(|s| s.split('"').next())
        .map(|href| href.replace("&#38;", "&").replace("&amp;", "&"))
        .expect("a next-page link");
    assert!(next.starts_with("/?limit=2&cursor="), "{next}");
    let second = browser.get(&next).await;
    second.assert_has(&["Show 1", "First page"]);
    second.assert_lacks(&["Show 3", "rel=\"next\""]);
}

#[tokio::test]
async fn purchase_is_disabled_with_the_reason_for_the_owner_and_the_signed_out() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let id = seller.sell("Ballet", "30").await;
    let path = format!("/tickets/{id}");

    let own = seller.get(&path).await;
    own.assert_has(&[
        r#"disabled aria-describedby="purchase-reason">Purchase</button>"#,
        "This is your ticket",
        "Edit your listing",
    ]);

    let anonymous = app.browser().get(&path).await;
    anonymous.assert_has(&["disabled", "</a> to buy this ticket."]);
    anonymous.assert_lacks(&["Edit your listing"]);

    let (buyer, _) = app.signed_in_browser().await;
    let page = buyer.get(&path).await;
    page.assert_has(&[r#"<button type="submit" class="button button-wide">Purchase</button>"#]);
    page.assert_lacks(&["disabled", "Edit your listing"]);
}

#[tokio::test]
async fn the_owner_edits_the_ticket_and_sees_errors_next_to_the_fields() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let id = seller.sell("Choir", "12").await;
    let edit = format!("/tickets/{id}/edit");

    let page = seller
        .post(&edit, &[("title", "Choir, front row"), ("price", "15.5")])
        .await;
    assert_eq!(page.status, 303);
    seller
        .follow(&page)
        .await
        .assert_has(&["Choir, front row", "$15.50"]);

    let page = seller.post(&edit, &[("title", ""), ("price", "-1")]).await;
    assert_eq!(page.status, 400);
    page.assert_has(&[r#"id="title-error">"#, r#"id="price-error">"#]);

    // Someone else's ticket: refused, the reason shown, nothing changed.
    let (other, _) = app.signed_in_browser().await;
    let page = other
        .post(&edit, &[("title", "Mine now"), ("price", "1")])
        .await;
    assert_eq!(page.status, 403);
    page.assert_has(&["Not the owner"]);
    app.browser()
        .get(&format!("/tickets/{id}"))
        .await
        .assert_has(&["Choir, front row"]);
}

#[tokio::test]
async fn the_ticket_page_follows_its_availability_live_with_a_same_origin_script() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let id = seller.sell("Live show", "12").await;
    let (buyer, _) = app.signed_in_browser().await;
    let page = buyer.get(&format!("/tickets/{id}")).await;
    assert_eq!(page.status, 200);
    page.assert_has(&[
        r#"<script src="/assets/ticket-live.js" defer></script>"#,
        // What the script reads: the ticket, its state as rendered, whether this visitor
        // may buy it.
        &format!(r#"data-live-ticket="{id}""#),
        r#"data-status="available""#,
        r#"data-can-buy="true""#,
        // What it updates: the badge, the Purchase button and its hint, the news.
        r#"id="ticket-status">Available</span>"#,
        r#"<form method="post" action="/tickets/"#,
        r#"class="purchase">"#,
        r#"<button type="submit" class="button button-wide">Purchase</button>"#,
        r#"<p class="hint">"#,
        r#"data-live-message role="status" aria-live="polite" hidden></p>"#,
    ]);
    // The stream is same-origin (the ingress routes /api/tickets to the tickets service).
    let policy = page.header("content-security-policy");
    assert!(policy.contains("connect-src 'self'"), "{policy}");

    // The seller's own page: nothing to enable.
    let own = seller.get(&format!("/tickets/{id}")).await;
    own.assert_has(&[r#"data-can-buy="false""#, "/assets/ticket-live.js"]);

    let script = app.browser().get("/assets/ticket-live.js").await;
    assert_eq!(script.status, 200);
    script.assert_has(&[
        "new EventSource(\"/api/tickets/\"",
        "/events\"",
        "Someone just reserved this ticket",
        "This ticket is available again",
    ]);
    // Pages without a live ticket do not load it.
    app.browser()
        .get("/")
        .await
        .assert_lacks(&["ticket-live.js"]);
}
