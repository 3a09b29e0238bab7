//! Item 1: typed documents, `_id` as ObjectId and as string, nested structs, `Vec`s of
//! structs, `Option` (absent vs null) and `bson::DateTime`.

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use serde::{Deserialize, Serialize};

use crate::support::{Store, ids_matching, set};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Venue {
    name: String,
    city: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Seat {
    row: String,
    number: i32,
    price_cents: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    held_until: Option<DateTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Show {
    #[serde(rename = "_id")]
    id: ObjectId,
    title: String,
    venue: Venue,
    seats: Vec<Seat>,
    tags: Vec<String>,
    starts_at: DateTime,
    on_sale: bool,
    rating: f64,
    version: i64,
    /// `None` is not written at all: the field is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// `None` is written as `null`.
    cancelled_at: Option<DateTime>,
    /// An optional nested struct, present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headliner: Option<Venue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Account {
    #[serde(rename = "_id")]
    id: String,
    email: String,
    created_at: DateTime,
}

fn sample_show() -> Show {
    Show {
        id: ObjectId::new(),
        title: "Rust in Concert".to_owned(),
        venue: Venue {
            name: "Opera".to_owned(),
            city: "Oslo".to_owned(),
        },
        seats: vec![
            Seat {
                row: "A".to_owned(),
                number: 1,
                price_cents: 4_500,
                held_until: None,
            },
            Seat {
                row: "B".to_owned(),
                number: 12,
                price_cents: 9_999_999_999,
                held_until: Some(DateTime::from_millis(1_767_225_600_123)),
            },
        ],
        tags: vec!["live".to_owned(), "vip".to_owned()],
        // Millisecond precision on purpose: `.123` must come back as `.123`.
        starts_at: DateTime::from_millis(1_767_225_600_123),
        on_sale: true,
        rating: 4.75,
        version: 0,
        note: None,
        cancelled_at: None,
        headliner: Some(Venue {
            name: "Ferris".to_owned(),
            city: "Bergen".to_owned(),
        }),
    }
}

#[tokio::test]
async fn typed_document_with_object_id_round_trips_nested_structs_vecs_options_and_datetimes() {
    let store = Store::new().await;
    let shows = store.db.collection::<Show>("shows");
    let show = sample_show();

    let inserted = shows.insert_one(&show).await.unwrap();
    assert_eq!(inserted.inserted_id, Bson::ObjectId(show.id));

    let found = shows.find_one(doc! {"_id": show.id}).await.unwrap();
    assert_eq!(found.as_ref(), Some(&show));

    // An unknown ObjectId finds nothing.
    let missing = shows.find_one(doc! {"_id": ObjectId::new()}).await.unwrap();
    assert!(missing.is_none());

    // The stored shape: subdocuments are subdocuments, datetimes are datetimes, i64 is i64.
    let raw = store
        .docs("shows")
        .find_one(doc! {"_id": show.id})
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(raw.get("venue"), Some(Bson::Document(_))));
    let seats = raw.get_array("seats").unwrap();
    assert!(seats.iter().all(|s| matches!(s, Bson::Document(_))));
    assert!(matches!(raw.get("startsAt"), Some(Bson::DateTime(_))));
    assert_eq!(
        raw.get("startsAt"),
        Some(&Bson::DateTime(DateTime::from_millis(1_767_225_600_123)))
    );
    assert_eq!(raw.get("version"), Some(&Bson::Int64(0)));
    assert_eq!(
        seats[1].as_document().unwrap().get("priceCents"),
        Some(&Bson::Int64(9_999_999_999))
    );
    assert_eq!(
        seats[0].as_document().unwrap().get("number"),
        Some(&Bson::Int32(1))
    );

    // Dotted paths reach into subdocuments and across arrays of subdocuments.
    let coll = store.docs("shows");
    let id = show.id.to_string();
    assert_eq!(
        ids_matching(&coll, doc! {"venue.city": "Oslo"}).await,
        set(&[&id])
    );
    assert_eq!(
        ids_matching(&coll, doc! {"seats.row": "B"}).await,
        set(&[&id])
    );
    assert_eq!(ids_matching(&coll, doc! {"seats.row": "Z"}).await, set(&[]));
    assert_eq!(
        ids_matching(&coll, doc! {"headliner.city": "Bergen"}).await,
        set(&[&id])
    );
}

#[tokio::test]
async fn none_with_skip_serializing_if_is_absent_and_without_it_is_null_and_null_filter_matches_both()
 {
    let store = Store::new().await;
    let shows = store.db.collection::<Show>("shows");
    let show = sample_show();
    shows.insert_one(&show).await.unwrap();

    let raw = store
        .docs("shows")
        .find_one(doc! {"_id": show.id})
        .await
        .unwrap()
        .unwrap();
    assert!(
        !raw.contains_key("note"),
        "skip_serializing_if None is absent"
    );
    assert_eq!(
        raw.get("cancelledAt"),
        Some(&Bson::Null),
        "plain None is null"
    );
    let seat0 = raw.get_array("seats").unwrap()[0].as_document().unwrap();
    assert!(!seat0.contains_key("heldUntil"));

    let coll = store.docs("shows");
    let id = show.id.to_string();
    // `{f: null}` matches an absent field and a null field alike.
    assert_eq!(ids_matching(&coll, doc! {"note": null}).await, set(&[&id]));
    assert_eq!(
        ids_matching(&coll, doc! {"cancelledAt": null}).await,
        set(&[&id])
    );
    // `$exists` tells them apart.
    assert_eq!(
        ids_matching(&coll, doc! {"note": {"$exists": false}}).await,
        set(&[&id])
    );
    assert_eq!(
        ids_matching(&coll, doc! {"cancelledAt": {"$exists": true}}).await,
        set(&[&id])
    );
    assert_eq!(
        ids_matching(&coll, doc! {"cancelledAt": {"$exists": false}}).await,
        set(&[])
    );

    // Reading back: absent and null both become None; a document written by hand with
    // neither field still reads as the struct.
    let read = shows
        .find_one(doc! {"_id": show.id})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.note, None);
    assert_eq!(read.cancelled_at, None);
    let mut bare: Document = bson::to_document(&show).unwrap();
    let bare_id = ObjectId::new();
    bare.insert("_id", bare_id);
    bare.remove("cancelledAt");
    bare.remove("headliner");
    coll.insert_one(bare).await.unwrap();
    let read = shows
        .find_one(doc! {"_id": bare_id})
        .await
        .unwrap()
        .unwrap();
    assert_eq!((read.cancelled_at, read.headliner), (None, None));

    // Setting the option later writes a datetime, which reads back typed.
    let at = DateTime::from_millis(1_767_225_600_999);
    shows
        .update_one(
            doc! {"_id": show.id},
            doc! {"$set": {"cancelledAt": at, "note": "moved"}},
        )
        .await
        .unwrap();
    let read = shows
        .find_one(doc! {"_id": show.id})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.cancelled_at, Some(at));
    assert_eq!(read.note.as_deref(), Some("moved"));
}

#[tokio::test]
async fn typed_document_with_string_id_is_found_by_that_string_and_not_by_an_object_id() {
    let store = Store::new().await;
    let accounts = store.db.collection::<Account>("accounts");
    let oid = ObjectId::new();
    // A string `_id` that happens to look like an ObjectId is still a string.
    let account = Account {
        id: oid.to_hex(),
        email: "a@example.com".to_owned(),
        created_at: DateTime::from_millis(1_700_000_000_001),
    };
    let named = Account {
        id: "acc-named".to_owned(),
        email: "b@example.com".to_owned(),
        created_at: DateTime::from_millis(1_700_000_000_002),
    };
    let inserted = accounts.insert_one(&account).await.unwrap();
    assert_eq!(inserted.inserted_id, Bson::String(oid.to_hex()));
    accounts.insert_one(&named).await.unwrap();

    let found = accounts.find_one(doc! {"_id": oid.to_hex()}).await.unwrap();
    assert_eq!(found, Some(account.clone()));
    let found = accounts.find_one(doc! {"_id": "acc-named"}).await.unwrap();
    assert_eq!(found, Some(named));

    // Types matter for `_id`: the ObjectId with the same hex is another key.
    let by_oid = store
        .docs("accounts")
        .find_one(doc! {"_id": oid})
        .await
        .unwrap();
    assert!(by_oid.is_none());
    let same_hex = store
        .docs("accounts")
        .insert_one(doc! {"_id": oid, "email": "c@example.com"})
        .await;
    if store.ferretdb {
        // FERRETDB DIFFERENCE: the primary key compares the JSON rendering of `_id`, so an
        // ObjectId collides with the string of its hex (E11000); MongoDB keeps both (ids of
        // different types differ). Rule: string ids must never be 24 hex digits (prefix them).
        let err = same_hex.unwrap_err();
        assert_eq!(crate::support::error_code(&err), Some(11000), "{err}");
        return;
    }
    same_hex.unwrap();
    assert_eq!(
        store
            .docs("accounts")
            .count_documents(doc! {})
            .await
            .unwrap(),
        3
    );
    let found = accounts.find_one(doc! {"_id": oid.to_hex()}).await.unwrap();
    assert_eq!(found, Some(account));
}
