//! Item 2 and 9 at every start: a service ensures its indexes each time it starts, so
//! ensuring them again, from a new client, on a collection that has them and holds data,
//! must succeed and keep their rules. FerretDB 1.24 panics on one `createIndexes` command
//! naming several indexes that exist already (the connection is dropped), which is why
//! `common::mongo::ensure_indexes` sends one command per index.

use bson::{Document, doc};
use common::mongo::{IndexSpec, ensure_indexes, index};
use futures::TryStreamExt;
use mongodb::Collection;

use crate::support::{Store, error_code};

/// The shapes the services use: compound with `_id`, unique, sparse unique, sparse.
fn every_kind() -> Vec<IndexSpec> {
    vec![
        index("one_active_order_per_ticket", doc! {"activeTicketId": 1})
            .unique()
            .sparse(),
        index("by_user_newest_first", doc! {"userId": 1, "_id": -1}),
        index("unpaid_by_expiry", doc! {"status": 1, "expiresAt": 1}),
        index("email_unique", doc! {"email": 1}).unique(),
        index("pending_events", doc! {"pendingEvents.id": 1}).sparse(),
    ]
}

async fn index_names(coll: &Collection<Document>) -> Vec<String> {
    let mut names: Vec<String> = coll
        .list_index_names()
        .await
        .unwrap()
        .into_iter()
        .filter(|name| name != "_id_")
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn ensuring_indexes_again_from_a_new_client_keeps_them_and_their_rules() {
    let store = Store::new().await;
    let orders = store.docs("orders");
    ensure_indexes(&orders, &every_kind()).await.unwrap();
    orders
        .insert_many([
            doc! {"_id": 1, "userId": "u", "status": "created", "activeTicketId": "t1", "email": "a@x"},
            doc! {"_id": 2, "userId": "u", "status": "cancelled", "email": "b@x"},
        ])
        .await
        .unwrap();

    // The same process again, then a "restarted service": a client of its own.
    ensure_indexes(&orders, &every_kind()).await.unwrap();
    let restarted = Store::reconnect(&store).await;
    let orders_again = restarted.collection::<Document>("orders");
    ensure_indexes(&orders_again, &every_kind()).await.unwrap();
    ensure_indexes(&orders_again, &every_kind()).await.unwrap();

    let mut expected: Vec<String> = every_kind().iter().map(|i| i.name().to_owned()).collect();
    expected.sort();
    assert_eq!(index_names(&orders_again).await, expected);

    // Their rules still hold: a second active order for t1 and a second b@x are refused.
    let dup_ticket = orders_again
        .insert_one(doc! {"_id": 3, "activeTicketId": "t1", "email": "c@x"})
        .await
        .unwrap_err();
    assert_eq!(error_code(&dup_ticket), Some(11000));
    let dup_email = orders_again
        .insert_one(doc! {"_id": 4, "email": "b@x"})
        .await
        .unwrap_err();
    assert_eq!(error_code(&dup_email), Some(11000));
    // The data is untouched.
    let ids: Vec<Document> = orders_again
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
}

fn ttl_index(seconds: u64) -> mongodb::IndexModel {
    mongodb::IndexModel::builder()
        .keys(doc! {"claimedAt": 1})
        .options(
            mongodb::options::IndexOptions::builder()
                .name("deliveries_expire".to_owned())
                .expire_after(std::time::Duration::from_secs(seconds))
                .build(),
        )
        .build()
}

/// A TTL index, as notifications' `deliveries_expire` (`claimedAt`, the event age limit
/// plus a day): MongoDB creates it and lists its expiry; one with another expiry conflicts
/// (85); dropping and creating it again changes it. FERRETDB DIFFERENCE: FerretDB 1.24 refuses the option
/// (238 NotImplemented), so nothing expires there and notifications goes on without it.
/// The deletion itself (MongoDB's TTL monitor runs every 60 s) is not waited for here.
#[tokio::test]
async fn a_ttl_index_has_its_expiry_on_mongodb_and_is_refused_by_ferretdb() {
    let store = Store::new().await;
    let deliveries = store.docs("deliveries");
    let created = deliveries.create_index(ttl_index(4 * 24 * 3600)).await;
    if store.ferretdb {
        assert_eq!(error_code(&created.unwrap_err()), Some(238));
        return;
    }
    created.unwrap();
    let expiry = |indexes: Vec<mongodb::IndexModel>| {
        indexes
            .into_iter()
            .find_map(|index| {
                let options = index.options?;
                (options.name.as_deref() == Some("deliveries_expire"))
                    .then_some(options.expire_after)
            })
            .flatten()
    };
    let listed = deliveries
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        expiry(listed),
        Some(std::time::Duration::from_secs(4 * 24 * 3600))
    );
    // The same again is a no-op; another expiry conflicts, and dropping the index and
    // creating it again changes it (collMod would need more than readWrite).
    deliveries
        .create_index(ttl_index(4 * 24 * 3600))
        .await
        .unwrap();
    let conflict = deliveries
        .create_index(ttl_index(5 * 24 * 3600))
        .await
        .unwrap_err();
    assert_eq!(error_code(&conflict), Some(85));
    deliveries.drop_index("deliveries_expire").await.unwrap();
    let missing = deliveries
        .drop_index("deliveries_expire")
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&missing),
        Some(27),
        "IndexNotFound: another replica dropped it"
    );
    deliveries
        .create_index(ttl_index(5 * 24 * 3600))
        .await
        .unwrap();
    let listed = deliveries
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        expiry(listed),
        Some(std::time::Duration::from_secs(5 * 24 * 3600))
    );
}
