//! What every contract test needs: a private database, the server's identity, error codes.

use std::collections::BTreeSet;
use std::time::Duration;

use bson::{Bson, Document, doc};
use futures::TryStreamExt;
use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::{Collection, Database};
use testkit::TestDatabase;

/// One test's database (dropped at the end of the test) and what server it talks to.
pub struct Store {
    pub db: Database,
    /// FerretDB answers `buildInfo` with a `ferretdbVersion` field; MongoDB does not.
    pub ferretdb: bool,
    /// Read-modify-writes are atomic across connections: MongoDB, or FerretDB behind the
    /// project's write-serializing front (`buildInfo.gittixWritesSerialized`).
    pub atomic_writes: bool,
    _guard: TestDatabase,
}

impl Store {
    /// A private database. The pool is large enough for the concurrency tests to keep
    /// 200 operations in flight at once (the driver's default pool holds 10 connections).
    pub async fn new() -> Self {
        Self::with_pool(200).await
    }

    /// A private database reached through at most `connections` connections.
    pub async fn with_pool(connections: u32) -> Self {
        let guard = TestDatabase::new("contract");
        let mut options = ClientOptions::parse(&guard.url).await.unwrap();
        options.app_name = Some("mongo-contract".to_owned());
        options.max_pool_size = Some(connections);
        options.server_selection_timeout = Some(Duration::from_secs(5));
        let client = mongodb::Client::with_options(options).unwrap();
        let db = client.database(&guard.name);
        let info = db.run_command(doc! {"buildInfo": 1}).await.unwrap();
        let ferretdb = info.contains_key("ferretdbVersion");
        Self {
            db,
            ferretdb,
            atomic_writes: !ferretdb || info.get_bool("gittixWritesSerialized").unwrap_or(false),
            _guard: guard,
        }
    }

    /// The same database through a client of its own, as a restarted service sees it.
    pub async fn reconnect(other: &Store) -> Database {
        let mut options = ClientOptions::parse(&other._guard.url).await.unwrap();
        options.app_name = Some("mongo-contract-restarted".to_owned());
        options.server_selection_timeout = Some(Duration::from_secs(5));
        mongodb::Client::with_options(options)
            .unwrap()
            .database(&other._guard.name)
    }

    pub fn docs(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    /// The server's URL, for another client (or process) on the same database.
    pub fn url(&self) -> &str {
        &self._guard.url
    }
}

/// The server error code of a failed write or command (11000 for a duplicate key).
pub fn error_code(err: &Error) -> Option<i32> {
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::InsertMany(e) => e.write_errors.as_ref()?.first().map(|e| e.code),
        _ => None,
    }
}

/// True for the duplicate-key error FerretDB 1.24 gives when an *update* (not an insert)
/// breaks a unique index: code 1 (InternalError) carrying SQLite's message, not 11000.
pub fn is_ferretdb_update_duplicate(err: &Error) -> bool {
    error_code(err) == Some(1) && err.to_string().contains("UNIQUE constraint failed")
}

/// The `_id`s of the documents matching `filter` (see [`id_string`]), as a set.
pub async fn ids_matching(coll: &Collection<Document>, filter: Document) -> BTreeSet<String> {
    coll.find(filter.clone())
        .await
        .unwrap_or_else(|e| panic!("find {filter}: {e}"))
        .try_collect::<Vec<Document>>()
        .await
        .unwrap_or_else(|e| panic!("find {filter}: {e}"))
        .into_iter()
        .map(|d| id_string(d.get("_id").unwrap()))
        .collect()
}

/// A readable `_id`: strings as they are, ObjectIds as hex, anything else through its
/// display form.
pub fn id_string(id: &Bson) -> String {
    match id {
        Bson::String(s) => s.clone(),
        Bson::ObjectId(o) => o.to_hex(),
        other => other.to_string(),
    }
}

/// A set of string ids, for comparing with [`ids_matching`].
pub fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

/// What FerretDB 1.24 does with a filter, when it is not what MongoDB does.
#[derive(Debug, Clone, Copy)]
pub enum OnFerretDb {
    /// The same as MongoDB.
    Same,
    /// FERRETDB DIFFERENCE: it matches these instead.
    Matches(&'static [&'static str]),
    /// FERRETDB DIFFERENCE: it refuses the filter with an error.
    Refused,
}

/// One filter and the `_id`s it must match.
pub struct Case {
    pub filter: Document,
    pub mongodb: &'static [&'static str],
    pub ferretdb: OnFerretDb,
}

pub fn case(filter: Document, mongodb: &'static [&'static str]) -> Case {
    Case {
        filter,
        mongodb,
        ferretdb: OnFerretDb::Same,
    }
}

impl Case {
    pub fn ferretdb(self, ferretdb: OnFerretDb) -> Self {
        Self { ferretdb, ..self }
    }
}

/// Runs every case and reports all mismatches at once.
pub async fn check_cases(store: &Store, coll: &Collection<Document>, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in cases {
        let result: Result<Vec<Document>, Error> =
            async { coll.find(case.filter.clone()).await?.try_collect().await }.await;
        let got = result.map(|docs| -> BTreeSet<String> {
            docs.iter()
                .map(|d| id_string(d.get("_id").unwrap()))
                .collect()
        });
        let expected = match (store.ferretdb, case.ferretdb) {
            (true, OnFerretDb::Refused) => None,
            (true, OnFerretDb::Matches(ids)) => Some(set(ids)),
            _ => Some(set(case.mongodb)),
        };
        let ok = match (&expected, &got) {
            (Some(want), Ok(got)) => want == got,
            (None, Err(_)) => true,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{}: expected {expected:?}, got {got:?}",
                case.filter
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
