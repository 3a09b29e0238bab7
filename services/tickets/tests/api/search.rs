//! `GET /api/tickets`: search, filters, sorts and their keyset paging.
#![allow(clippy::cloned_ref_to_slice_refs)] // `[id.clone()]` reads as the expected list
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{TestClient, new_user_id};

use crate::helpers::{TestApp, spawn_app, test_config};

async fn list(app: &TestApp, body: Value) -> String {
    let created = app
        .request(
            Method::POST,
            "/api/tickets",
            Some(&new_user_id()),
            Some(body),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page.as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every page from `path` on, following `Link`; `between` runs after each page.
async fn all_pages(app: &TestApp, path: &str, mut between: impl AsyncFnMut(usize)) -> Vec<String> {
    let mut seen = Vec::new();
    let mut path = path.to_owned();
    for n in 0.. {
        let page = app.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {:?}", page.body);
        seen.extend(ids(&page.body));
        let Some(link) = page.headers.get("link") else {
            break;
        };
        path = link
            .to_str()
            .unwrap()
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
        between(n).await;
    }
    seen
}

async fn matching(app: &TestApp, query: &str) -> Vec<String> {
    let page = app.get(&format!("/api/tickets?{query}")).await;
    assert_eq!(page.status, 200, "{query}: {:?}", page.body);
    ids(&page.body)
}

#[tokio::test]
async fn words_match_the_beginnings_of_words_of_title_venue_and_city() {
    let app = spawn_app().await;
    let rock = list(
        &app,
        json!({"title": "Rock Concert", "price": 30, "venue": "Olympia", "city": "Paris"}),
    )
    .await;
    let jazz = list(
        &app,
        json!({"title": "Jazz night", "price": 20, "venue": "Blue Note", "city": "New York"}),
    )
    .await;
    let opera = list(&app, json!({"title": "Opera", "price": 50, "city": "Lyon"})).await;
    let plain = list(&app, json!({"title": "Concerto for two", "price": 10})).await;

    assert_eq!(matching(&app, "q=ROCK").await, [rock.clone()]);
    assert_eq!(
        matching(&app, "q=conc").await,
        [plain.clone(), rock.clone()]
    );
    assert_eq!(matching(&app, "q=paris%20conc").await, [rock.clone()]);
    assert_eq!(matching(&app, "q=olymp").await, [rock.clone()]);
    assert_eq!(matching(&app, "q=new%20yo").await, [jazz.clone()]);
    assert_eq!(
        matching(&app, "q=opera%20paris").await,
        Vec::<String>::new()
    );
    assert_eq!(
        matching(&app, "q=oncert").await,
        Vec::<String>::new(),
        "words begin"
    );
    assert_eq!(
        matching(&app, "q=%21%21").await.len(),
        4,
        "no words: no filter"
    );

    assert_eq!(matching(&app, "city=PARIS").await, [rock.clone()]);
    assert_eq!(matching(&app, "city=new%20york").await, [jazz.clone()]);
    assert_eq!(
        matching(&app, "city=york").await,
        Vec::<String>::new(),
        "the whole city"
    );
    assert_eq!(matching(&app, "city=lyon&q=opera").await, [opera.clone()]);

    assert_eq!(
        matching(&app, "minPrice=20&maxPrice=30").await,
        [jazz.clone(), rock.clone()]
    );
    assert_eq!(
        matching(&app, "minPrice=20.01").await,
        [opera.clone(), rock.clone()]
    );
    assert_eq!(matching(&app, "maxPrice=10").await, [plain.clone()]);
    assert_eq!(
        matching(&app, "minPrice=0&q=concert&maxPrice=29.99").await,
        [plain.clone()],
        "Concerto begins with concert"
    );
}

#[tokio::test]
async fn dates_filter_and_sort_with_undated_tickets_last() {
    let app = spawn_app().await;
    let at = |day: u32| format!("2099-05-{day:02}T20:00:00Z");
    let may3 = list(&app, json!({"title": "A", "price": 10, "startsAt": at(3)})).await;
    let may1 = list(&app, json!({"title": "B", "price": 10, "startsAt": at(1)})).await;
    let undated = list(&app, json!({"title": "C", "price": 10})).await;
    let may2 = list(&app, json!({"title": "D", "price": 10, "startsAt": at(2)})).await;
    let may2_too = list(&app, json!({"title": "E", "price": 10, "startsAt": at(2)})).await;

    assert_eq!(
        matching(&app, "sort=startsAt").await,
        [&may1, &may2, &may2_too, &may3, &undated].map(String::to_owned)
    );
    let from_to = format!("from={}&to={}&sort=startsAt", at(2), at(3));
    assert_eq!(
        matching(&app, &from_to).await,
        [&may2, &may2_too, &may3].map(String::to_owned),
        "both ends included, undated never"
    );
    assert_eq!(
        matching(&app, &format!("from={}", at(3))).await,
        [may3.clone()]
    );
    // Offsets are times like any other: 2099-05-02T22:00+02:00 is the 2nd at 20:00Z.
    assert_eq!(
        matching(&app, "to=2099-05-02T22:00:00%2B02:00&sort=startsAt").await,
        [&may1, &may2, &may2_too].map(String::to_owned)
    );

    // Paged one by one, with ties on the date, and tickets listed between pages: every
    // ticket there at the start is seen once, in order; new ones after the cursor show up.
    let mut added = Vec::new();
    let seen = all_pages(&app, "/api/tickets?sort=startsAt&limit=1", async |n| {
        if n == 1 {
            // Sorts before the cursor (may2): not seen. Sorts after: seen.
            added.push(list(&app, json!({"title": "F", "price": 10, "startsAt": at(1)})).await);
            added.push(list(&app, json!({"title": "G", "price": 10, "startsAt": at(4)})).await);
        }
    })
    .await;
    assert_eq!(
        seen,
        [&may1, &may2, &may2_too, &may3, &added[1], &undated].map(String::to_owned)
    );
}

#[tokio::test]
async fn prices_sort_both_ways_with_ties_and_pages_keep_the_filters() {
    let app = spawn_app().await;
    let mut by_price = Vec::new();
    for (title, price) in [
        ("gig a", 30),
        ("gig b", 10),
        ("gig c", 20),
        ("gig d", 20),
        ("gig e", 20),
        ("other", 15),
    ] {
        by_price.push((
            price,
            list(
                &app,
                json!({"title": title, "price": price, "city": "Nantes"}),
            )
            .await,
        ));
    }
    // Ascending: price, then id (creation order) on ties.
    let mut ascending: Vec<(i32, String)> = by_price
        .iter()
        .filter(|(_, id)| !id.is_empty())
        .cloned()
        .collect();
    ascending.retain(|(price, _)| *price != 15);
    ascending.sort();
    let ascending: Vec<String> = ascending.into_iter().map(|(_, id)| id).collect();

    let mut links = Vec::new();
    let seen = all_pages(
        &app,
        "/api/tickets?q=gig&city=nantes&sort=price&limit=2&minPrice=5",
        async |_| {},
    )
    .await;
    assert_eq!(seen, ascending);
    let page = app
        .get("/api/tickets?q=gig&city=nantes&sort=price&limit=2&minPrice=5")
        .await;
    let link = page.headers["link"].to_str().unwrap().to_owned();
    for kept in [
        "q=gig",
        "city=nantes",
        "sort=price",
        "limit=2",
        "minPrice=5",
        "cursor=2000_",
    ] {
        assert!(link.contains(kept), "{kept} in {link}");
    }
    links.push(link);

    let mut descending = ascending.clone();
    descending.reverse();
    let seen = all_pages(&app, "/api/tickets?q=gig&sort=-price&limit=2", async |_| {}).await;
    assert_eq!(seen, descending);

    // Newest first stays the default, paged by id, with filters kept.
    let seen = all_pages(&app, "/api/tickets?city=Nantes&limit=4", async |_| {}).await;
    let mut newest: Vec<String> = by_price.iter().map(|(_, id)| id.clone()).collect();
    newest.reverse();
    assert_eq!(seen, newest);
    assert_eq!(matching(&app, "sort=newest&limit=100").await, newest);
}

#[tokio::test]
async fn each_bad_parameter_is_named() {
    let app = spawn_app().await;
    for (query, field) in [
        ("sort=cheapest", "sort"),
        ("minPrice=abc", "minPrice"),
        ("minPrice=-1", "minPrice"),
        ("maxPrice=1.005", "maxPrice"),
        ("maxPrice=1000000.01", "maxPrice"),
        ("minPrice=20&maxPrice=10", "maxPrice"),
        ("from=yesterday", "from"),
        ("to=2099-13-01T00:00:00Z", "to"),
        ("from=2099-05-02T00:00:00Z&to=2099-05-01T00:00:00Z", "to"),
        ("limit=0", "limit"),
        ("cursor=zzz", "cursor"),
        ("sort=price&cursor=507f1f77bcf86cd799439011", "cursor"),
        ("sort=startsAt&cursor=x_507f1f77bcf86cd799439011", "cursor"),
    ] {
        let response = app.get(&format!("/api/tickets?{query}")).await;
        assert_eq!(response.status, 400, "{query}");
        assert_eq!(response.error_fields(), [field], "{query}");
    }
    let long = format!("/api/tickets?q={}", "a".repeat(201));
    assert_eq!(app.get(&long).await.error_fields(), ["q"]);
    let many = format!(
        "/api/tickets?q={}",
        (0..11)
            .map(|n| format!("w{n}"))
            .collect::<Vec<_>>()
            .join("+")
    );
    assert_eq!(app.get(&many).await.error_fields(), ["q"]);
    let city = format!("/api/tickets?city={}", "c".repeat(81));
    assert_eq!(app.get(&city).await.error_fields(), ["city"]);
    let all = app
        .get("/api/tickets?sort=x&minPrice=x&from=x&limit=x")
        .await;
    assert_eq!(all.error_fields().len(), 4, "{:?}", all.body);
}

#[tokio::test]
async fn every_sort_and_filter_shape_has_its_index() {
    let app = spawn_app().await;
    let client = mongodb::Client::with_uri_str(&app.db.url).await.unwrap();
    let collection = client
        .database(&app.db.name)
        .collection::<bson::Document>("tickets");
    let names = testkit::eventually(
        "the indexes",
        std::time::Duration::from_secs(10),
        || async {
            let names = collection.list_index_names().await.ok()?;
            (names.len() > 10).then_some(names)
        },
    )
    .await;
    for name in [
        "available_newest_first",
        "available_by_start",
        "available_by_price",
        "in_city_newest_first",
        "in_city_by_start",
        "in_city_by_price",
        "matching_newest_first",
        "matching_by_start",
        "matching_by_price",
        "by_seller_newest_first",
    ] {
        assert!(names.contains(&name.to_owned()), "{name}: {names:?}");
    }
}

/// Tickets stored before search existed get their search fields at start-up.
#[tokio::test]
async fn older_tickets_get_their_search_fields_at_start_up() {
    let app = spawn_app().await;
    let id = list(&app, json!({"title": "Old show", "price": 10})).await;
    let client = mongodb::Client::with_uri_str(&app.db.url).await.unwrap();
    let collection = client
        .database(&app.db.name)
        .collection::<bson::Document>("tickets");
    let oid: bson::oid::ObjectId = id.parse().unwrap();
    collection
        .update_one(
            bson::doc! {"_id": oid},
            bson::doc! {"$unset": {"searchWords": "", "cityKey": "", "sortStartsAt": ""}},
        )
        .await
        .unwrap();
    assert!(matching(&app, "q=old").await.is_empty());
    // Another process of the service starts on the same database.
    let restarted = tickets::App::build(test_config(&app.db, &app.bus_config))
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", restarted.port());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(restarted.run_until_stopped(stop.clone()));
    let _stop = stop.drop_guard();
    for (query, expected) in [("q=old", [id.clone()]), ("sort=startsAt", [id.clone()])] {
        let page = TestClient::new(&address)
            .get(&format!("/api/tickets?{query}"))
            .await
            .body;
        assert_eq!(ids(&page), expected, "{query}");
    }
}

#[tokio::test]
async fn an_edit_changes_what_matches_and_a_reserved_ticket_leaves_the_search() {
    let app = spawn_app().await;
    let seller = new_user_id();
    let created = app
        .request(
            Method::POST,
            "/api/tickets",
            Some(&seller),
            Some(json!({"title": "Show", "price": 10, "venue": "Zenith", "city": "Lille"})),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(matching(&app, "q=zen").await, [id.clone()]);
    let edited = app
        .update(
            Some(&seller),
            &id,
            json!({"title": "Show", "price": 10, "venue": "Bataclan", "city": "Paris"}),
        )
        .await;
    assert_eq!(edited.status, 200);
    assert!(matching(&app, "q=zen").await.is_empty());
    assert!(matching(&app, "city=lille").await.is_empty());
    assert_eq!(matching(&app, "q=bata&city=paris").await, [id.clone()]);

    app.publish(crate::remove::order_created("o1", &id, 1000))
        .await;
    testkit::eventually(
        "the reserved ticket to leave the search",
        std::time::Duration::from_secs(10),
        || async { matching(&app, "q=bata").await.is_empty().then_some(()) },
    )
    .await;
}
