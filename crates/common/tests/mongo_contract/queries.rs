//! Item 6 (keyset paging, `{f: null}`), item 7 (query operators, DateTime at millisecond
//! precision) and item 8 (`update_many`, `delete_many`, `count_documents`).

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::{Collection, IndexModel};

use crate::support::{OnFerretDb, Store, case, check_cases, ids_matching, set};

async fn page(coll: &Collection<Document>, filter: Document, sort: Document) -> Vec<Document> {
    coll.find(filter)
        .sort(sort)
        .limit(8)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn keyset_paging_by_id_visits_every_matching_document_once_in_index_order() {
    let store = Store::new().await;
    let coll = store.docs("listings");
    coll.create_index(
        IndexModel::builder()
            .keys(doc! {"status": 1, "_id": -1})
            .build(),
    )
    .await
    .unwrap();
    // Ids in creation order; inserted out of order so that the sort has to work.
    let ids: Vec<ObjectId> = (0..25).map(|_| ObjectId::new()).collect();
    let status = |i: usize| {
        if i.is_multiple_of(5) {
            "sold"
        } else {
            "listed"
        }
    };
    for i in (0..25).map(|k| k * 7 % 25) {
        coll.insert_one(doc! {"_id": ids[i], "status": status(i), "n": i as i32})
            .await
            .unwrap();
    }
    let expected: Vec<ObjectId> = (0..25)
        .rev()
        .filter(|&i| status(i) == "listed")
        .map(|i| ids[i])
        .collect();

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut filter = doc! {"status": "listed"};
    loop {
        let docs = page(&coll, filter.clone(), doc! {"_id": -1}).await;
        sizes.push(docs.len());
        let Some(last) = docs.last() else { break };
        let last = last.get_object_id("_id").unwrap();
        seen.extend(docs.iter().map(|d| d.get_object_id("_id").unwrap()));
        filter = doc! {"status": "listed", "_id": {"$lt": last}};
    }
    assert_eq!(seen, expected);
    assert_eq!(sizes, [8, 8, 4, 0]);
}

#[tokio::test]
async fn keyset_paging_by_created_at_and_id_handles_equal_timestamps() {
    let store = Store::new().await;
    let coll = store.docs("orders");
    // A secondary index whose key contains `_id` (one stand-in broke every later insert).
    coll.create_index(
        IndexModel::builder()
            .keys(doc! {"buyer": 1, "createdAt": -1, "_id": -1})
            .build(),
    )
    .await
    .unwrap();
    let base = 1_767_225_600_000_i64;
    // Four orders per millisecond: the `_id` tie-break matters.
    let mut all: Vec<(DateTime, ObjectId)> = Vec::new();
    for i in 0..21 {
        let created = DateTime::from_millis(base + (i / 4));
        let id = ObjectId::new();
        coll.insert_one(doc! {"_id": id, "buyer": "u1", "createdAt": created})
            .await
            .unwrap();
        all.push((created, id));
    }
    coll.insert_one(doc! {"buyer": "u2", "createdAt": DateTime::from_millis(base)})
        .await
        .unwrap();
    all.sort_by(|a, b| b.cmp(a));

    let mut seen = Vec::new();
    let mut filter = doc! {"buyer": "u1"};
    loop {
        let docs = page(&coll, filter.clone(), doc! {"createdAt": -1, "_id": -1}).await;
        let Some(last) = docs.last() else { break };
        let (created, id) = (
            last.get_datetime("createdAt").unwrap().to_owned(),
            last.get_object_id("_id").unwrap(),
        );
        seen.extend(docs.iter().map(|d| {
            (
                d.get_datetime("createdAt").unwrap().to_owned(),
                d.get_object_id("_id").unwrap(),
            )
        }));
        filter = doc! {
            "buyer": "u1",
            "$or": [
                {"createdAt": {"$lt": created}},
                {"createdAt": created, "_id": {"$lt": id}},
            ],
        };
    }
    assert_eq!(seen, all);
}

#[tokio::test]
async fn null_filter_matches_missing_and_null_alike_and_exists_tells_them_apart() {
    let store = Store::new().await;
    let coll = store.docs("tickets");
    coll.insert_many([
        doc! {"_id": "missing"},
        doc! {"_id": "null", "orderId": null},
        doc! {"_id": "value", "orderId": "o1"},
        doc! {"_id": "empty", "orderId": ""},
    ])
    .await
    .unwrap();
    let cases: [(Document, &[&str]); 9] = [
        (doc! {"orderId": null}, &["missing", "null"]),
        (doc! {"orderId": {"$eq": null}}, &["missing", "null"]),
        (doc! {"orderId": {"$in": [null]}}, &["missing", "null"]),
        (doc! {"orderId": {"$ne": null}}, &["value", "empty"]),
        (doc! {"orderId": {"$nin": [null]}}, &["value", "empty"]),
        (doc! {"orderId": {"$exists": false}}, &["missing"]),
        (
            doc! {"orderId": {"$exists": true}},
            &["null", "value", "empty"],
        ),
        (doc! {"orderId": {"$type": "null"}}, &["null"]),
        (
            doc! {"orderId": {"$in": [null, "o1"]}},
            &["missing", "null", "value"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            ids_matching(&coll, filter.clone()).await,
            set(expected),
            "{filter}"
        );
    }
    // With sort and limit, as a page of free tickets.
    let first: Vec<Document> = coll
        .find(doc! {"orderId": null})
        .sort(doc! {"_id": 1})
        .limit(1)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(first, vec![doc! {"_id": "missing"}]);
}

/// Four events; `at` is `t`, `t + 1 ms`, `t + 999 ms`, `t + 1000 ms`.
async fn events_fixture(store: &Store, t: i64) -> Collection<Document> {
    let coll = store.docs("events");
    let at = |ms: i64| DateTime::from_millis(t + ms);
    coll.insert_many([
        doc! {"_id": "a", "kind": "concert", "price": 10, "tags": ["vip", "live"],
        "seats": [{"row": "A", "sold": true}, {"row": "B", "sold": false}],
        "scores": [70, 90], "at": at(0)},
        doc! {"_id": "b", "kind": "theatre", "price": 20_i64, "tags": ["live"],
        "seats": [{"row": "A", "sold": false}], "scores": [82], "at": at(1)},
        doc! {"_id": "c", "kind": "sport", "price": 30.5, "tags": [],
        "seats": [{"row": "B", "sold": true}], "at": at(999)},
        doc! {"_id": "d", "kind": "concert", "price": 40, "at": at(1000)},
    ])
    .await
    .unwrap();
    coll
}

#[tokio::test]
async fn in_nin_or_and_exists_and_elem_match_match_as_documented() {
    let store = Store::new().await;
    let coll = events_fixture(&store, 1_767_225_600_000).await;
    check_cases(
        &store,
        &coll,
        vec![
            case(
                doc! {"kind": {"$in": ["concert", "sport"]}},
                &["a", "c", "d"],
            ),
            case(doc! {"kind": {"$nin": ["concert"]}}, &["b", "c"]),
            // On arrays: any element.
            case(doc! {"tags": "live"}, &["a", "b"]),
            case(doc! {"tags": {"$in": ["vip", "none"]}}, &["a"]),
            // `$nin` also matches documents without the field.
            case(doc! {"tags": {"$nin": ["vip"]}}, &["b", "c", "d"]),
            case(
                doc! {"$or": [{"price": {"$lt": 15}}, {"kind": "sport"}]},
                &["a", "c"],
            ),
            case(
                doc! {"$and": [{"price": {"$gt": 15}}, {"price": {"$lt": 35}}]},
                &["b", "c"],
            ),
            case(doc! {"price": {"$gt": 15, "$lt": 35}}, &["b", "c"]),
            // Numbers compare across int32, int64 and double.
            case(doc! {"price": 20}, &["b"]),
            case(doc! {"price": 10.0}, &["a"]),
            case(doc! {"price": {"$in": [40_i64, 30.5]}}, &["c", "d"]),
            case(
                doc! {"$and": [
                    {"$or": [{"kind": "concert"}, {"kind": "sport"}]},
                    {"$or": [{"price": {"$lt": 15}}, {"price": {"$gt": 35}}]},
                ]},
                &["a", "d"],
            ),
            case(doc! {"seats": {"$exists": true}}, &["a", "b", "c"]),
            case(doc! {"seats": {"$exists": false}}, &["d"]),
            case(doc! {"seats.row": {"$exists": true}}, &["a", "b", "c"]),
            // Dotted paths across an array of subdocuments: each condition may be met by a
            // different element.
            case(doc! {"seats.row": "B"}, &["a", "c"]),
            case(doc! {"seats.row": "B", "seats.sold": true}, &["a", "c"]),
            // `$elemMatch`: all conditions on the same element.
            // FERRETDB DIFFERENCE: on scalars it tests each condition against any element
            // (like the dotted form: a's 70 and 90 pass); on subdocuments one field
            // condition matches nothing, silently, and two are refused ("unknown operator").
            // Rule: no `$elemMatch`; use dotted paths, and shape data so that a query never
            // needs two conditions on one array element.
            case(
                doc! {"scores": {"$elemMatch": {"$gte": 80, "$lt": 85}}},
                &["b"],
            )
            .ferretdb(OnFerretDb::Matches(&["a", "b"])),
            case(
                doc! {"seats": {"$elemMatch": {"row": "B", "sold": true}}},
                &["c"],
            )
            .ferretdb(OnFerretDb::Refused),
            case(doc! {"seats": {"$elemMatch": {"sold": false}}}, &["a", "b"])
                .ferretdb(OnFerretDb::Matches(&[])),
            case(doc! {"seats.sold": false}, &["a", "b"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn datetime_comparisons_and_sorts_are_millisecond_precise() {
    let store = Store::new().await;
    let t = 1_767_225_600_000;
    let coll = events_fixture(&store, t).await;
    let at = |ms: i64| DateTime::from_millis(t + ms);
    let cases: [(Document, &[&str]); 7] = [
        (doc! {"at": {"$lt": at(1)}}, &["a"]),
        (doc! {"at": {"$lte": at(1)}}, &["a", "b"]),
        (doc! {"at": {"$gt": at(0), "$lt": at(1000)}}, &["b", "c"]),
        (doc! {"at": {"$gte": at(999)}}, &["c", "d"]),
        (doc! {"at": at(999)}, &["c"]),
        (doc! {"at": {"$in": [at(1), at(1000)]}}, &["b", "d"]),
        (doc! {"at": {"$gt": at(998), "$lt": at(1000)}}, &["c"]),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            ids_matching(&coll, filter.clone()).await,
            set(expected),
            "{filter}"
        );
    }
    let sorted: Vec<String> = coll
        .find(doc! {})
        .sort(doc! {"at": -1})
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .iter()
        .map(|d| d.get_str("_id").unwrap().to_owned())
        .collect();
    assert_eq!(sorted, ["d", "c", "b", "a"]);
    // What comes back is the stored millisecond.
    let c = coll.find_one(doc! {"_id": "c"}).await.unwrap().unwrap();
    assert_eq!(c.get_datetime("at").unwrap(), &at(999));
}

#[tokio::test]
async fn update_many_delete_many_and_count_documents_report_what_they_did() {
    let store = Store::new().await;
    let coll = store.docs("tickets");
    coll.create_index(IndexModel::builder().keys(doc! {"status": 1}).build())
        .await
        .unwrap();
    let docs = (0..10).map(|i| {
        let status = if i < 6 { "open" } else { "closed" };
        let mut d = doc! {"_id": i, "status": status};
        if i < 2 {
            d.insert("flagged", true);
        }
        d
    });
    coll.insert_many(docs).await.unwrap();

    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 10);
    assert_eq!(
        coll.count_documents(doc! {"status": "open"}).await.unwrap(),
        6
    );

    // Two of the six already have the value: matched 6, modified 4.
    let r = coll
        .update_many(doc! {"status": "open"}, doc! {"$set": {"flagged": true}})
        .await
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (6, 4));
    assert_eq!(
        coll.count_documents(doc! {"flagged": true}).await.unwrap(),
        6
    );
    let r = coll
        .update_many(
            doc! {"status": "closed"},
            doc! {"$inc": {"n": 1}, "$unset": {"flagged": ""}},
        )
        .await
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (4, 4));
    let r = coll
        .update_many(doc! {"status": "gone"}, doc! {"$set": {"x": 1}})
        .await
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (0, 0));

    let r = coll.delete_many(doc! {"status": "closed"}).await.unwrap();
    assert_eq!(r.deleted_count, 4);
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 6);
    let r = coll.delete_many(doc! {"status": "closed"}).await.unwrap();
    assert_eq!(r.deleted_count, 0);
    let r = coll.delete_one(doc! {"_id": 0}).await.unwrap();
    assert_eq!(r.deleted_count, 1);
    let r = coll.delete_many(doc! {}).await.unwrap();
    assert_eq!(r.deleted_count, 5);
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 0);
}

/// The tickets listing's search (item 7): a word array with a multikey index in a compound
/// key, matched by one element or by `$all` of several (exact elements), combined with
/// `null` equality, a numeric range and a keyset `$or` under `$and`, sorted by (price, `_id`)
/// both ways, with ties on the price.
#[tokio::test]
async fn word_arrays_match_by_element_and_all_and_page_by_price_and_id() {
    let store = Store::new().await;
    let coll = store.docs("tickets");
    coll.create_index(
        IndexModel::builder()
            .keys(doc! {"searchWords": 1, "orderId": 1, "priceCents": 1, "_id": 1})
            .build(),
    )
    .await
    .unwrap();
    let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    coll.insert_many([
        doc! {"_id": "rock", "searchWords": words(&["r", "ro", "rock", "p", "paris"]), "orderId": null, "priceCents": 2000_i64},
        doc! {"_id": "rock2", "searchWords": words(&["r", "ro", "rock", "l", "lyon"]), "orderId": null, "priceCents": 2000_i64},
        doc! {"_id": "roll", "searchWords": words(&["r", "ro", "roll", "p", "paris"]), "orderId": null, "priceCents": 1000_i64},
        doc! {"_id": "held", "searchWords": words(&["r", "ro", "rock", "p", "paris"]), "orderId": "o1", "priceCents": 500_i64},
        doc! {"_id": "none", "searchWords": Vec::<String>::new(), "orderId": null, "priceCents": 700_i64},
        doc! {"_id": "old", "orderId": null, "priceCents": 800_i64},
    ])
    .await
    .unwrap();
    let cases: [(Document, &[&str]); 6] = [
        (doc! {"searchWords": "rock"}, &["rock", "rock2", "held"]),
        (
            doc! {"searchWords": "ro", "orderId": null},
            &["rock", "rock2", "roll"],
        ),
        (
            doc! {"searchWords": {"$all": ["ro", "paris"]}},
            &["rock", "roll", "held"],
        ),
        (
            doc! {"searchWords": {"$all": ["rock", "paris"]}, "orderId": null},
            &["rock"],
        ),
        (doc! {"searchWords": {"$all": ["rock", "oslo"]}}, &[]),
        (
            doc! {"orderId": null, "priceCents": {"$gte": 700_i64, "$lte": 1000_i64}},
            &["roll", "none", "old"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            ids_matching(&coll, filter.clone()).await,
            set(expected),
            "{filter}"
        );
    }
    // Keyset pages of one, ascending then descending, ties on the price broken by `_id`.
    for (ascending, expected) in [
        (true, ["roll", "rock", "rock2"]),
        (false, ["rock2", "rock", "roll"]),
    ] {
        let (cmp, dir) = if ascending { ("$gt", 1) } else { ("$lt", -1) };
        let base = doc! {"searchWords": "ro", "orderId": null, "priceCents": {"$gte": 1000_i64}};
        let mut filter = base.clone();
        let mut seen = Vec::new();
        loop {
            let docs: Vec<Document> = coll
                .find(filter.clone())
                .sort(doc! {"priceCents": dir, "_id": dir})
                .limit(1)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let Some(last) = docs.last() else { break };
            let (price, id) = (
                last.get_i64("priceCents").unwrap(),
                last.get_str("_id").unwrap().to_owned(),
            );
            seen.push(id.clone());
            filter = doc! {"$and": [base.clone(), {"$or": [
                {"priceCents": {cmp: price}},
                {"priceCents": price, "_id": {cmp: &id}},
            ]}]};
        }
        assert_eq!(seen, expected, "ascending: {ascending}");
    }
}
