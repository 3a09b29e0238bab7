//! Atomicity across connections **and client processes** (what two replicas of a service do):
//! every read-modify-write the services rely on, raced by two processes at once (this test
//! process and a second one, its own binary re-executed as a worker), each with a pool of
//! `CONNECTIONS` connections all in use.
//!
//! MongoDB is atomic per document; the FerretDB stand-in is made so by its write-serializing
//! front (`tools/ferretdb`): FerretDB alone (`-serialize-writes=false`) fails every case but
//! the unique inserts (seen: 40 writers, 2 versions kept; 6 claim winners; 1 push of 40 kept).

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use bson::{Bson, DateTime, Document, doc};
use futures::future::join_all;
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Collection, Database, IndexModel};

use crate::support::{Store, error_code};

/// Connections per process, each kept busy by `TASKS` concurrent callers.
const CONNECTIONS: u32 = 10;
const TASKS: usize = 20;
/// What the worker prints before its results, one line.
const RESULT: &str = "CONTRACT_RESULT ";

/// The cases, by the name the worker process is told.
#[derive(Clone, Copy)]
enum Case {
    VersionChecked,
    UniqueInsert,
    Claim,
    PushPull,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::VersionChecked => "version-checked",
            Case::UniqueInsert => "unique-insert",
            Case::Claim => "claim",
            Case::PushPull => "push-pull",
        }
    }

    fn from_name(name: &str) -> Self {
        match name {
            "version-checked" => Case::VersionChecked,
            "unique-insert" => Case::UniqueInsert,
            "claim" => Case::Claim,
            "push-pull" => Case::PushPull,
            other => panic!("unknown case {other}"),
        }
    }
}

const DOC: &str = "race-doc";

/// One process's share of a case: `TASKS` callers at once. Returns one line per caller.
async fn run_share(db: &Database, case: Case, process: &str) -> Vec<String> {
    let coll: Collection<Document> = db.collection("race");
    let tasks = (0..TASKS).map(|task| {
        let coll = coll.clone();
        let me = format!("{process}-{task}");
        tokio::spawn(async move {
            match case {
                Case::VersionChecked => version_checked(&coll, &me).await,
                Case::UniqueInsert => unique_insert(&coll, &me).await,
                Case::Claim => claim(&coll, &me).await,
                Case::PushPull => push_pull(&coll, &me, task).await,
            }
        })
    });
    join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

/// Reads the version and updates with it until one update matches; returns the version won.
async fn version_checked(coll: &Collection<Document>, me: &str) -> String {
    for _ in 0..10_000 {
        let current = coll.find_one(doc! {"_id": DOC}).await.unwrap().unwrap();
        let version = current.get_i64("version").unwrap();
        let result = coll
            .update_one(
                doc! {"_id": DOC, "version": version},
                doc! {
                    "$set": {"lastWriter": me},
                    "$inc": {"version": 1_i64},
                    "$push": {"pendingEvents": {"id": me, "version": version + 1}},
                },
            )
            .await
            .unwrap();
        if result.matched_count == 1 {
            assert_eq!(result.modified_count, 1);
            return (version + 1).to_string();
        }
    }
    panic!("{me}: no version won in 10,000 tries");
}

/// Inserts an active order of one ticket (sparse unique index), then one without the field.
async fn unique_insert(coll: &Collection<Document>, me: &str) -> String {
    let active = coll
        .insert_one(
            doc! {"_id": format!("order-{me}"), "activeTicketId": "t-1", "status": "created"},
        )
        .await;
    // Documents without the field never collide on a sparse index.
    coll.insert_one(doc! {"_id": format!("cancelled-{me}"), "status": "cancelled"})
        .await
        .unwrap();
    match active {
        Ok(_) => "won".to_owned(),
        Err(e) if error_code(&e) == Some(11000) => "duplicate".to_owned(),
        Err(e) => panic!("{me}: {e}"),
    }
}

/// The tickets claim: named by `_id`, free or lease expired.
async fn claim(coll: &Collection<Document>, me: &str) -> String {
    let now = DateTime::now();
    let until = DateTime::from_millis(now.timestamp_millis() + 15 * 60_000);
    let got = coll
        .find_one_and_update(
            doc! {"_id": DOC, "$or": [{"reservedBy": null}, {"reservedUntil": {"$lt": now}}]},
            doc! {"$set": {"reservedBy": me, "reservedUntil": until}, "$inc": {"version": 1_i64}},
        )
        .return_document(ReturnDocument::After)
        .await
        .unwrap();
    match got {
        Some(d) => {
            assert_eq!(d.get_str("reservedBy"), Ok(me));
            "won".to_owned()
        }
        None => "held".to_owned(),
    }
}

/// Pushes its own item and removes one seeded item with `$pullAll`, as a service and the
/// outbox relay do on one document.
async fn push_pull(coll: &Collection<Document>, me: &str, task: usize) -> String {
    coll.update_one(doc! {"_id": DOC}, doc! {"$push": {"items": me}})
        .await
        .unwrap();
    let process = me.split('-').next().unwrap();
    coll.update_one(
        doc! {"_id": DOC},
        doc! {"$pullAll": {"items": [format!("seed-{process}-{task}")]}},
    )
    .await
    .unwrap();
    "ok".to_owned()
}

/// The document each case starts from.
async fn prepare(store: &Store, case: Case) {
    let coll = store.docs("race");
    match case {
        Case::VersionChecked => {
            coll.insert_one(doc! {"_id": DOC, "version": 0_i64})
                .await
                .unwrap();
        }
        Case::UniqueInsert => {
            coll.create_index(
                IndexModel::builder()
                    .keys(doc! {"activeTicketId": 1})
                    .options(
                        IndexOptions::builder()
                            .name("one_active_order_per_ticket".to_owned())
                            .unique(true)
                            .sparse(true)
                            .build(),
                    )
                    .build(),
            )
            .await
            .unwrap();
        }
        Case::Claim => {
            let expired = DateTime::from_millis(DateTime::now().timestamp_millis() - 1_000);
            coll.insert_one(
                doc! {"_id": DOC, "reservedBy": "old", "reservedUntil": expired, "version": 0_i64},
            )
            .await
            .unwrap();
        }
        Case::PushPull => {
            let seeds: Vec<Bson> = ["a", "b"]
                .iter()
                .flat_map(|p| (0..TASKS).map(move |t| Bson::String(format!("seed-{p}-{t}"))))
                .collect();
            coll.insert_one(doc! {"_id": DOC, "items": seeds})
                .await
                .unwrap();
        }
    }
}

/// Runs `case` from this process (as "a") and a worker process (as "b") at once, and
/// returns every caller's result.
async fn race_two_processes(store: &Store, case: Case) -> Vec<String> {
    prepare(store, case).await;
    let start_at = DateTime::now().timestamp_millis() + 1_500;
    let exe = std::env::current_exe().unwrap();
    let child = tokio::process::Command::new(exe)
        .args([
            "concurrency::worker_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CONTRACT_WORKER_CASE", case.name())
        .env("CONTRACT_WORKER_URL", store.url())
        .env("CONTRACT_WORKER_DB", store.db.name())
        .env("CONTRACT_WORKER_START_MS", start_at.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_until(start_at).await;
    let mine = run_share(&store.db, case, "a").await;
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("worker process finished within 120 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "worker failed: {stdout}");
    let theirs: Vec<String> = stdout
        .lines()
        // The harness prints "test … ... " before the worker's line, on the same line.
        .find_map(|l| l.split_once(RESULT).map(|(_, results)| results))
        .unwrap_or_else(|| panic!("no result from the worker: {stdout}"))
        .split(' ')
        .map(str::to_owned)
        .collect();
    assert_eq!(theirs.len(), TASKS, "worker results: {theirs:?}");
    mine.into_iter().chain(theirs).collect()
}

async fn wait_until(epoch_ms: i64) {
    let wait = epoch_ms - DateTime::now().timestamp_millis();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
    }
}

/// The second process: does nothing unless started by [`race_two_processes`].
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_process() {
    let Ok(case) = std::env::var("CONTRACT_WORKER_CASE") else {
        return;
    };
    let url = std::env::var("CONTRACT_WORKER_URL").unwrap();
    let name = std::env::var("CONTRACT_WORKER_DB").unwrap();
    let start_at: i64 = std::env::var("CONTRACT_WORKER_START_MS")
        .unwrap()
        .parse()
        .unwrap();
    let db = connect(&url, &name).await;
    wait_until(start_at).await;
    let results = run_share(&db, Case::from_name(&case), "b").await;
    // The parent reads the worker's stdout: printing there is this function's result.
    #[allow(clippy::print_stdout)]
    {
        println!("{RESULT}{}", results.join(" "));
    }
}

/// A client of `CONNECTIONS` connections, all opened before the race starts.
async fn connect(url: &str, name: &str) -> Database {
    let mut options = ClientOptions::parse(url).await.unwrap();
    options.app_name = Some("mongo-contract-worker".to_owned());
    options.max_pool_size = Some(CONNECTIONS);
    options.min_pool_size = Some(CONNECTIONS);
    options.server_selection_timeout = Some(Duration::from_secs(5));
    let client = mongodb::Client::with_options(options).unwrap();
    let db = client.database(name);
    db.run_command(doc! {"ping": 1}).await.unwrap();
    db
}

async fn two_process_store() -> Store {
    let store = Store::with_pool(CONNECTIONS).await;
    store.db.run_command(doc! {"ping": 1}).await.unwrap();
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_of_version_checked_updates_never_share_a_version_and_lose_nothing() {
    let store = two_process_store().await;
    let results = race_two_processes(&store, Case::VersionChecked).await;
    let writers = 2 * TASKS;
    let final_doc = store
        .docs("race")
        .find_one(doc! {"_id": DOC})
        .await
        .unwrap()
        .unwrap();
    let events = final_doc.get_array("pendingEvents").unwrap();
    let report = format!(
        "{writers} writers in 2 processes: versions won {results:?}, final version {:?}, {} events kept",
        final_doc.get("version"),
        events.len()
    );
    eprintln!("{report}");
    let won: BTreeSet<i64> = results.iter().map(|v| v.parse().unwrap()).collect();
    // Never two winners of one version, and every win kept.
    assert_eq!(won.len(), writers, "{report}");
    assert_eq!(won, (1..=writers as i64).collect(), "{report}");
    assert_eq!(final_doc.get_i64("version"), Ok(writers as i64), "{report}");
    let versions: Vec<i64> = events
        .iter()
        .map(|e| e.as_document().unwrap().get_i64("version").unwrap())
        .collect();
    assert_eq!(
        versions,
        (1..=writers as i64).collect::<Vec<_>>(),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_inserting_against_a_sparse_unique_index_give_exactly_one_winner() {
    let store = two_process_store().await;
    let results = race_two_processes(&store, Case::UniqueInsert).await;
    let won = results.iter().filter(|r| *r == "won").count();
    eprintln!(
        "{} inserts of one key in 2 processes: {won} won",
        results.len()
    );
    assert_eq!(won, 1, "{results:?}");
    let coll = store.docs("race");
    assert_eq!(
        coll.count_documents(doc! {"activeTicketId": "t-1"})
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        coll.count_documents(doc! {"status": "cancelled"})
            .await
            .unwrap(),
        2 * TASKS as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_claiming_one_expired_lease_give_exactly_one_winner() {
    let store = two_process_store().await;
    let results = race_two_processes(&store, Case::Claim).await;
    let won = results.iter().filter(|r| *r == "won").count();
    let after = store
        .docs("race")
        .find_one(doc! {"_id": DOC})
        .await
        .unwrap()
        .unwrap();
    let report = format!(
        "{} claims in 2 processes: {won} won; now reservedBy {:?}, version {:?}",
        results.len(),
        after.get("reservedBy"),
        after.get("version")
    );
    eprintln!("{report}");
    assert_eq!(won, 1, "{report}");
    assert_eq!(after.get_i64("version"), Ok(1), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_pushing_and_pulling_all_on_one_document_lose_nothing() {
    let store = two_process_store().await;
    race_two_processes(&store, Case::PushPull).await;
    let after = store
        .docs("race")
        .find_one(doc! {"_id": DOC})
        .await
        .unwrap()
        .unwrap();
    let items: BTreeSet<String> = after
        .get_array("items")
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = ["a", "b"]
        .iter()
        .flat_map(|p| (0..TASKS).map(move |t| format!("{p}-{t}")))
        .collect();
    let report = format!(
        "{} pushes and {} pulls in 2 processes: {} items left (want exactly the {} pushed)",
        2 * TASKS,
        2 * TASKS,
        items.len(),
        expected.len()
    );
    eprintln!("{report}");
    assert_eq!(items, expected, "{report}");
    assert_eq!(
        after.get_array("items").unwrap().len(),
        2 * TASKS,
        "{report}"
    );
}
