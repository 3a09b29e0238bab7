//! Issue 19 in the pages: event details on the sell and edit forms, the ticket page and
//! the orders; the home page's search form; My listings (by state, what sold tickets
//! earned, unlisting); a complete order's receipt.

use crate::helpers::{Browser, Page, page_eventually, spawn_app};

/// Lists a ticket with event details through the sell form; returns its id.
async fn sell_event(
    seller: &Browser,
    title: &str,
    price: &str,
    city: &str,
    starts: &str,
) -> String {
    let page = seller
        .post(
            "/tickets/new",
            &[
                ("title", title),
                ("price", price),
                ("venue", "Royal Hall"),
                ("city", city),
                ("startsAt", starts),
                ("section", "A"),
                ("row", "3"),
                ("seat", "12"),
                ("description", "Doors at 7pm."),
            ],
        )
        .await;
    page.redirect_id("/tickets")
}

/// The `href` of the page's `rel="next"` link, unescaped.
fn next_href(page: &Page) -> String {
    page.body
        .split("<a href=\"")
        .find(|s| s.contains("rel=\"next\""))
        .and_then(|s| s.split('"').next())
        .map(|href| href.replace("&#38;", "&").replace("&amp;", "&"))
        .expect("a next-page link")
}

#[tokio::test]
async fn a_ticket_sold_with_event_details_shows_them_and_the_owner_edits_them() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let form = seller.get("/tickets/new").await;
    form.assert_has(&[
        r#"<label for="venue">Venue</label>"#,
        r#"<label for="city">City</label>"#,
        r#"<label for="startsAt">Starts at</label>"#,
        r#"type="datetime-local""#,
        "In UTC",
        r#"<label for="section">Section</label>"#,
        r#"<label for="row">Row</label>"#,
        r#"<label for="seat">Seat</label>"#,
        r#"<label for="description">Description</label>"#,
    ]);

    let id = sell_event(&seller, "Symphony", "40", "Leeds", "2031-05-03T20:00").await;
    let page = seller.get(&format!("/tickets/{id}")).await;
    assert_eq!(page.status, 200);
    page.assert_has(&[
        "Royal Hall",
        "Leeds",
        r#"<time datetime="2031-05-03T20:00:00Z" data-event-when>Sat 3 May 2031, 20:00 UTC</time>"#,
        "Section A · Row 3 · Seat 12",
        "Doors at 7pm.",
        // The edit form shows them again, the start as the datetime-local value in UTC.
        r#"value="2031-05-03T20:00""#,
        // The live script's hooks are still there.
        &format!(r#"data-live-ticket="{id}""#),
        r#"id="ticket-status""#,
    ]);
    // Anyone sees them.
    app.browser()
        .get(&format!("/tickets/{id}"))
        .await
        .assert_has(&["Royal Hall", "Sat 3 May 2031"]);

    // An edit changes the city and clears the venue (an empty field clears it).
    let edited = seller
        .post(
            &format!("/tickets/{id}/edit"),
            &[
                ("title", "Symphony"),
                ("price", "40"),
                ("venue", ""),
                ("city", "York"),
                ("startsAt", "2031-05-03T21:30"),
                ("section", "A"),
                ("row", "3"),
                ("seat", "12"),
                ("description", ""),
            ],
        )
        .await;
    assert_eq!(edited.status, 303, "{}", edited.body);
    let page = seller.follow(&edited).await;
    page.assert_has(&["York", "21:30 UTC"]);
    page.assert_lacks(&["Royal Hall", "Leeds", "Doors at 7pm."]);
}

#[tokio::test]
async fn event_detail_errors_appear_next_to_their_fields() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    // Not a time at all: caught by the client, what was typed kept.
    let page = seller
        .post(
            "/tickets/new",
            &[
                ("title", "Gig"),
                ("price", "10"),
                ("venue", "The Cave"),
                ("startsAt", "soon"),
            ],
        )
        .await;
    assert_eq!(page.status, 400);
    page.assert_has(&[
        r#"id="startsAt-error">Starts at must be a date and time"#,
        r#"value="The Cave""#,
        r#"value="soon""#,
    ]);
    // In the past, and a seat too long: the service's messages, next to their fields.
    let page = seller
        .post(
            "/tickets/new",
            &[
                ("title", "Gig"),
                ("price", "10"),
                ("startsAt", "2001-01-01T10:00"),
                ("seat", "a seat name that is far too long"),
            ],
        )
        .await;
    assert_eq!(page.status, 400);
    page.assert_has(&[r#"id="startsAt-error">"#, r#"id="seat-error">"#]);
}

#[tokio::test]
async fn searching_by_city_and_price_narrows_the_home_page() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    sell_event(
        &seller,
        "Cheap Leeds gig",
        "20",
        "Leeds",
        "2031-06-01T19:00",
    )
    .await;
    sell_event(
        &seller,
        "Dear Leeds opera",
        "80",
        "Leeds",
        "2031-06-02T19:00",
    )
    .await;
    sell_event(&seller, "York play", "30", "York", "2031-06-03T19:00").await;
    let browser = app.browser();

    let home = browser.get("/").await;
    home.assert_has(&[
        r#"<form method="get" action="/""#,
        r#"name="q""#,
        r#"name="city""#,
        r#"name="from" type="date""#,
        r#"name="minPrice""#,
        r#"name="maxPrice""#,
        r#"<select id="filter-sort" name="sort">"#,
        "Cheap Leeds gig",
        "York play",
        "Royal Hall, Leeds",
        "Sun 1 Jun 2031, 19:00 UTC",
    ]);

    let leeds = browser.get("/?city=leeds").await;
    assert_eq!(leeds.status, 200);
    leeds.assert_has(&["Cheap Leeds gig", "Dear Leeds opera", r#"value="leeds""#]);
    leeds.assert_lacks(&["York play"]);

    let cheap = browser.get("/?city=Leeds&maxPrice=50").await;
    cheap.assert_has(&["Cheap Leeds gig", r#"value="50""#]);
    cheap.assert_lacks(&["Dear Leeds opera", "York play"]);

    let words = browser.get("/?q=opera").await;
    words.assert_has(&["Dear Leeds opera"]);
    words.assert_lacks(&["Cheap Leeds gig", "York play"]);

    // Dates are days in UTC, both included.
    let dates = browser.get("/?from=2031-06-02&to=2031-06-02").await;
    dates.assert_has(&["Dear Leeds opera"]);
    dates.assert_lacks(&["Cheap Leeds gig", "York play"]);

    let dearest = browser.get("/?sort=-price").await;
    let (opera, play) = (
        dearest.body.find("Dear Leeds opera").unwrap(),
        dearest.body.find("York play").unwrap(),
    );
    assert!(opera < play, "dearest first");
    dearest.assert_has(&[r#"<option value="-price" selected>"#]);

    // A filter the service refuses: its message next to the field, the value kept.
    let bad = browser.get("/?minPrice=cheap").await;
    assert_eq!(bad.status, 400);
    bad.assert_has(&[r#"id="filter-minPrice-error">"#, r#"value="cheap""#]);
    let bad = browser.get("/?from=someday").await;
    assert_eq!(bad.status, 400);
    bad.assert_has(&[r#"id="filter-from-error">"#]);
}

#[tokio::test]
async fn the_next_page_keeps_the_filters() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    for (title, price) in [
        ("Leeds one", "10"),
        ("Leeds two", "20"),
        ("Leeds three", "30"),
    ] {
        sell_event(&seller, title, price, "Leeds", "2031-06-01T19:00").await;
    }
    sell_event(&seller, "York cheap", "5", "York", "2031-06-01T19:00").await;
    let browser = app.browser();
    let first = browser.get("/?city=Leeds&sort=price&limit=2").await;
    first.assert_has(&["Leeds one", "Leeds two"]);
    first.assert_lacks(&["Leeds three", "York cheap"]);
    let next = next_href(&first);
    assert!(
        next.starts_with("/?city=Leeds&sort=price&limit=2&cursor="),
        "{next}"
    );
    let second = browser.get(&next).await;
    assert_eq!(second.status, 200);
    second.assert_has(&["Leeds three", r#"value="Leeds""#, "First page"]);
    second.assert_lacks(&["Leeds one", "York cheap", "rel=\"next\""]);
}

#[tokio::test]
async fn my_listings_show_each_state_and_the_total_earned() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let available = sell_event(&seller, "Still for sale", "15", "Leeds", "2031-06-01T19:00").await;
    let reserved = seller.sell("Held by a buyer", "25").await;
    let sold = seller.sell("Sold out show", "42.50").await;
    let (buyer, _) = app.signed_in_browser().await;
    buyer.buy(&reserved).await;
    let order = buyer.buy(&sold).await;
    let paid = buyer
        .post(
            &format!("/orders/{order}/pay"),
            &[("paymentMethod", "pm_card_visa")],
        )
        .await;
    assert_eq!(paid.status, 303, "{}", paid.body);

    let page = page_eventually(
        &seller,
        "/tickets/mine?status=sold",
        "the sale to show",
        |p| p.body.contains("Sold out show"),
    )
    .await;
    page.assert_has(&[
        r#"<a href="/tickets/mine">My listings</a>"#,
        r#"aria-current="page" class="current">Sold</a>"#,
        "Total earned: <strong>$42.50</strong>",
        "from 1 sold ticket",
        r#"<strong data-earned>$42.50</strong>"#,
    ]);
    page.assert_lacks(&["Still for sale", "Held by a buyer"]);

    let page = page_eventually(
        &seller,
        "/tickets/mine?status=reserved",
        "the reservation",
        |p| p.body.contains("Held by a buyer"),
    )
    .await;
    page.assert_lacks(&["Still for sale", "Sold out show"]);

    let page = seller.get("/tickets/mine?status=available").await;
    page.assert_has(&[
        "Still for sale",
        "Royal Hall, Leeds",
        &format!(r#"href="/tickets/{available}#edit-heading""#),
        &format!(r#"action="/tickets/{available}/unlist""#),
    ]);
    page.assert_lacks(&["Held by a buyer", "Sold out show"]);

    let all = seller.get("/tickets/mine").await;
    all.assert_has(&["Still for sale", "Held by a buyer", "Sold out show"]);
    // Sold ones can be neither edited nor unlisted.
    all.assert_lacks(&[&format!(r#"action="/tickets/{sold}/unlist""#)]);

    // Signed out: sign in first.
    let page = app.browser().get("/tickets/mine").await;
    assert_eq!(page.status, 303);
    assert!(
        page.location().starts_with("/auth/signin"),
        "{}",
        page.location()
    );
}

#[tokio::test]
async fn unlisting_takes_a_ticket_off_sale_and_a_reserved_one_refuses() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let gone = seller.sell("Changed my mind", "12").await;
    let held = seller.sell("Someone wants it", "18").await;

    let page = seller.post(&format!("/tickets/{gone}/unlist"), &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = seller.follow(&page).await;
    page.assert_has(&["Your ticket was unlisted", "Someone wants it"]);
    page.assert_lacks(&["Changed my mind"]);
    app.browser()
        .get("/")
        .await
        .assert_lacks(&["Changed my mind"]);
    // Its page says so, with no way to buy or edit it.
    let page = app.browser().get(&format!("/tickets/{gone}")).await;
    page.assert_has(&[
        r#"data-status="removed""#,
        "No longer for sale",
        "This ticket is no longer for sale.",
    ]);
    seller
        .get(&format!("/tickets/{gone}"))
        .await
        .assert_lacks(&["Edit your listing"]);

    // Not theirs: refused.
    let (buyer, _) = app.signed_in_browser().await;
    let page = buyer.post(&format!("/tickets/{held}/unlist"), &[]).await;
    assert_eq!(page.status, 403);
    page.assert_has(&["You can only unlist your own tickets."]);

    buyer.buy(&held).await;
    page_eventually(
        &seller,
        "/tickets/mine?status=reserved",
        "the reservation",
        |p| p.body.contains("Someone wants it"),
    )
    .await;
    let page = seller.post(&format!("/tickets/{held}/unlist"), &[]).await;
    assert_eq!(page.status, 409);
    page.assert_has(&["This ticket is reserved by a buyer or already sold, so it can"]);
    seller
        .get("/tickets/mine?status=reserved")
        .await
        .assert_has(&["Someone wants it"]);
}

#[tokio::test]
async fn orders_show_the_event_and_a_complete_one_its_receipt() {
    let app = spawn_app().await;
    let (seller, _) = app.signed_in_browser().await;
    let ticket = sell_event(&seller, "Cup final", "45", "Wembley", "2031-05-03T15:00").await;
    let (buyer, _) = app.signed_in_browser().await;
    let order = buyer.buy(&ticket).await;

    let page = buyer.get(&format!("/orders/{order}")).await;
    page.assert_has(&[
        "Royal Hall",
        "Wembley",
        "Sat 3 May 2031, 15:00 UTC",
        "Seat 12",
    ]);
    page.assert_lacks(&["data-receipt"]);
    let list = buyer.get("/orders").await;
    list.assert_has(&[
        "Cup final",
        "Royal Hall, Wembley",
        "Sat 3 May 2031, 15:00 UTC",
    ]);

    let paid = buyer
        .post(
            &format!("/orders/{order}/pay"),
            &[("paymentMethod", "pm_card_visa")],
        )
        .await;
    assert_eq!(paid.status, 303, "{}", paid.body);
    let page = page_eventually(&buyer, &format!("/orders/{order}"), "the receipt", |p| {
        p.body.contains("data-receipt")
    })
    .await;
    page.assert_has(&[
        r#"<h2 id="receipt-heading">Receipt</h2>"#,
        "<dt>Ticket</dt><dd>Cup final</dd>",
        "<dt>Event</dt><dd>Royal Hall, Wembley</dd>",
        "Sat 3 May 2031, 15:00 UTC",
        "Section A · Row 3 · Seat 12",
        "<dd data-amount-paid>$45.00</dd>",
        &format!("<code>{order}</code>"),
        "<dt>Ordered</dt>",
    ]);
}
