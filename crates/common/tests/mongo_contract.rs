//! The store contract test: every MongoDB operation the services rely on (the items 1 to 9
//! of `docs/STORE-CONTRACT.md`, "What we rely on"), performed through the Rust `mongodb`
//! driver, asserting MongoDB's documented
//! result. It runs against the FerretDB 1.24 stand-in (SQLite, write-serializing front) here
//! and against real MongoDB in GitHub Actions; `docs/STORE-CONTRACT.md` says what the code
//! must therefore write.
//!
//! Where FerretDB differs, a test asserts the formulation that is right on both servers, and
//! pins the other one per server (`store.ferretdb`, from `buildInfo.ferretdbVersion`) so
//! that a change on either side shows up. Every place is marked `FERRETDB DIFFERENCE`.
//!
//! FerretDB 1.24.2 (SQLite backend) differences found, by item:
//! - 2, 9: a unique-index violation by an *update* (`$set`) fails with code 1
//!   (InternalError, "UNIQUE constraint failed: index …"), not 11000; inserts give 11000.
//!   `common::mongo::is_duplicate_key` only knows 11000.
//! - 2, 9: a missing field is not an index key (SQLite NULLs are distinct): a unique index
//!   without `sparse` lets any number of documents lack the field; MongoDB allows one.
//! - 9: `partialFilterExpression` is refused (code 238, NotImplemented); `sparse` is accepted
//!   and ignored (not reported by `listIndexes`), yet behaves as sparse (previous point).
//! - 1: `_id` equality in the primary key is type-blind where the JSON renderings agree: an
//!   ObjectId collides (E11000) with the string of its hex. Queries still tell them apart.
//! - 3, 4, 5: in FerretDB itself updates and `findAndModify` are not atomic: it reads the
//!   matching document, applies the update itself and writes the whole document back by
//!   `_id`. Concurrent version-checked updates all match (lost updates); concurrent claims can
//!   have several winners. The stand-in (`tools/ferretdb`) serializes every write command
//!   across connections and processes in a front before FerretDB, which makes them atomic
//!   (`concurrency.rs` races two processes; `store.atomic_writes` tells the two apart).
//! - 2: `createIndexes` naming several existing indexes panics inside FerretDB and drops the
//!   connection; the stand-in's front sends them one by one.
//! - 4: `$pull` with a condition (`{id: X}`) tests elements for equality instead of matching
//!   them as a query: it removes nothing, silently. `$pullAll` / `$pull` of the whole element
//!   work on both.
//! - 4, 7: `$elemMatch` is broken: on scalars the conditions may be met by different
//!   elements; on subdocuments one field condition matches nothing (silently) and two are
//!   refused ("unknown operator"). Dotted paths and `{"arr.0": {$exists: true}}` work.
//! - Same on both (checked): typed round trips (nested, Vec, Option absent/null, DateTime
//!   at ms, i32/i64), `{f: null}` / `$ne: null` / `$exists` / `$in: [null]` / `$type`,
//!   `$ne: []`, `$size`, `$type: "object"` on arrays, `$in`, `$nin`, `$or`, `$and`, numeric
//!   comparison across int32/int64/double, DateTime comparisons and sorts at ms, keyset
//!   paging on `_id` and on `(createdAt, _id)` with an index containing `_id`, `$push` onto
//!   a missing field, no-op updates reporting modified 0, update/delete/count counts, 200
//!   concurrent inserts of one key (one succeeds, the rest 11000).
//! - Handshake: `mongodb` 3.9.1 sends `backpressure: "2"` in `hello`; FerretDB 1.24 ignores
//!   unknown `hello` fields and accepts it (every test here connects), so no pin is needed.
//! - Known from FerretDB's documentation, not exercised: no multi-document transactions,
//!   no change streams.
#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test, with its message

#[path = "mongo_contract/claims.rs"]
mod claims;
#[path = "mongo_contract/concurrency.rs"]
mod concurrency;
#[path = "mongo_contract/indexes.rs"]
mod indexes;
#[path = "mongo_contract/queries.rs"]
mod queries;
#[path = "mongo_contract/support.rs"]
mod support;
#[path = "mongo_contract/typed_documents.rs"]
mod typed_documents;
#[path = "mongo_contract/unique_indexes.rs"]
mod unique_indexes;
#[path = "mongo_contract/versioned_updates.rs"]
mod versioned_updates;
