//! MongoDB connection, indexes, inserts decided by a unique index and error
//! classification shared by the services.

use std::time::Duration;

use bson::Document;
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};

use crate::config::MongoConfig;
use crate::store::StoreResult;

/// The client settings from `MONGO_URL`, with timeouts short enough that a dead database
/// shows up in readiness checks and requests quickly instead of hanging. Fails only on a
/// malformed URL: a configuration error, not worth retrying.
pub async fn options(
    config: &MongoConfig,
    app_name: &str,
) -> mongodb::error::Result<ClientOptions> {
    let mut options = ClientOptions::parse(&config.url).await?;
    options.app_name = Some(app_name.to_owned());
    options.connect_timeout = Some(Duration::from_secs(3));
    options.server_selection_timeout = Some(Duration::from_secs(3));
    options.max_pool_size.get_or_insert(50);
    Ok(options)
}

/// Resolves `MONGO_URL` (a `mongodb+srv://` URL's DNS records too) and connects. Part of a
/// service's retried start-up, so a DNS lookup that fails at start is retried like a
/// database still down; a malformed URL was refused earlier, by `MongoConfig`.
pub async fn open(config: &MongoConfig, app_name: &str) -> mongodb::error::Result<Database> {
    connect(&options(config, app_name).await?, &config.database).await
}

/// Connects and asks the server what it is, so it fails while the server is down (it is
/// part of a service's retried start-up).
///
/// FerretDB alone applies an update or findAndModify as a read-modify-write that is atomic
/// only within one connection. The project's stand-in (`tools/ferretdb`) serializes writes in
/// front of it and says so in `buildInfo` (`gittixWritesSerialized`); any other FerretDB is
/// detected here and given one connection, so that version checks and claims stay exact
/// within this process (docs/STORE-CONTRACT.md).
pub async fn connect(options: &ClientOptions, database: &str) -> mongodb::error::Result<Database> {
    let client = Client::with_options(options.clone())?;
    let info = client
        .database("admin")
        .run_command(bson::doc! {"buildInfo": 1})
        .await?;
    if info.contains_key("ferretdbVersion")
        && !info.get_bool("gittixWritesSerialized").unwrap_or(false)
    {
        tracing::warn!(
            "MongoDB server is FerretDB without serialized writes: \
             one connection per process (two processes are not safe)"
        );
        let mut one = options.clone();
        one.max_pool_size = Some(1);
        return Ok(Client::with_options(one)?.database(database));
    }
    Ok(client.database(database))
}

/// Round trip to the server: the readiness check.
pub async fn ping(db: &Database) -> Result<(), String> {
    db.run_command(bson::doc! {"ping": 1})
        .await
        .map(|_| ())
        .map_err(|e| format!("mongo: {e}"))
}

/// A named index, built without the driver's builder noise.
pub fn index(name: &str, keys: Document) -> IndexSpec {
    IndexSpec {
        name: name.to_owned(),
        keys,
        unique: false,
        sparse: false,
    }
}

/// An index to ensure; see [`index`].
#[derive(Debug, Clone)]
pub struct IndexSpec {
    name: String,
    keys: Document,
    unique: bool,
    sparse: bool,
}

impl IndexSpec {
    /// At most one document per key.
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    /// Only documents that have the indexed field.
    pub fn sparse(mut self) -> Self {
        self.sparse = true;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn model(&self) -> IndexModel {
        let mut options = IndexOptions::default();
        options.name = Some(self.name.clone());
        options.unique = self.unique.then_some(true);
        options.sparse = self.sparse.then_some(true);
        IndexModel::builder()
            .keys(self.keys.clone())
            .options(options)
            .build()
    }
}

/// Creates the indexes a collection needs; indexes that exist already are left as they
/// are, so this runs at every start.
///
/// One `createIndexes` command per index: FerretDB 1.24 panics on a single command
/// naming several indexes that already exist and drops the connection, which made every
/// restart on existing data fail (docs/STORE-CONTRACT.md). MongoDB is indifferent.
pub async fn ensure_indexes<T: Send + Sync>(
    collection: &Collection<T>,
    indexes: &[IndexSpec],
) -> mongodb::error::Result<()> {
    for index in indexes {
        collection.create_index(index.model()).await?;
    }
    Ok(())
}

/// What an insert guarded by a unique index did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The document is stored.
    New,
    /// One with the same unique key was there already; nothing was written.
    Duplicate,
}

/// Inserts `document` unless one with its unique key exists: the one way the services
/// let a unique index decide a race (an order for a held ticket, a payment recorded by
/// the webhook and the charge at once, an email already in use).
pub async fn insert_unless_duplicate<T: serde::Serialize + Send + Sync>(
    collection: &Collection<T>,
    document: &T,
) -> StoreResult<Inserted> {
    match collection.insert_one(document).await {
        Ok(_) => Ok(Inserted::New),
        Err(err) if is_duplicate_key(&err) => Ok(Inserted::Duplicate),
        Err(err) => Err(err.into()),
    }
}

/// Inserts `document` unless it is there already: true when inserted (a replica seeing
/// a record again is a duplicate).
pub async fn insert_once<T: serde::Serialize + Send + Sync>(
    collection: &Collection<T>,
    document: &T,
) -> StoreResult<bool> {
    Ok(insert_unless_duplicate(collection, document).await? == Inserted::New)
}

/// True when the write failed on a unique index (E11000).
pub fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == 11000,
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .is_some_and(|errs| errs.iter().any(|e| e.code == 11000)),
        ErrorKind::Command(e) => e.code == 11000,
        _ => false,
    }
}
