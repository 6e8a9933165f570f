//! Persistence: one `Store` over SQLite (embedded, the default) or PostgreSQL (production), with
//! the same tables, the same migration versions and — wherever the dialects agree — the same SQL.
//! All SQL of the application lives in this module and only here.
//!
//! Design: rather than a trait with two implementations that would repeat every query, the store
//! is an enum of the two pools and a transaction is an enum of the two transaction types. Each
//! operation is written once against a connection of either kind (the `on_conn!` macro expands
//! one body for each arm) and branches on the dialect only where the SQL text differs. A caller
//! opens one [`Tx`] per request, makes every change and its audit event in it, and commits.
//!
//! Values are bound, never spliced: `$1`-style placeholders work on both drivers.

mod accounts;
mod assignments;
mod audit;
mod catalog;
mod filter_sql;
mod groups;
mod invitations;
mod list;
mod tokens;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};

pub use accounts::{Account, SIGNING_KEY_ID};
pub use assignments::{DeletedUser, DirectMembers, LicenceRow};
pub use audit::{AuditEvent, AuditQuery, AuditRecord};
pub use catalog::{
    AccountPolicy, Bundle, CustomRole, Device, EmailTemplate, EmergencyLocation, PhoneNumber,
    Product, SettingsTemplate,
};
pub use filter_sql::{SortKey, SortSpec};
pub use groups::{GroupRecord, MemberRef};
pub use invitations::{InvitationRecord, OutboxRecord, ProfileElsewhere, ProfileRecord};
pub use list::{CursorKey, KeyValue, ListPage, ListRequest, Listed, PageStart};
pub use tokens::TokenRecord;
pub use users::{ListError, UserExtras, UserGroupRef, UserRecord, UserView, UserViewRow};

/// The default embedded database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/switchboard.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; the name is the constraint's (same in both dialects).
    #[error("unique constraint {0} violated")]
    Unique(&'static str),
    /// Another transaction changed the row between our read and our write.
    #[error("concurrent modification")]
    Conflict,
    /// The database is too busy to take the request now (SQLite's writer lock held past the
    /// busy timeout, or no pooled connection free in time): worth a retry.
    #[error("database busy")]
    Busy,
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Database(sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("could not create the database directory: {0}")]
    Io(#[from] std::io::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        classify(error)
    }
}

/// Names of our unique constraints, and how SQLite reports each of them (it reports columns,
/// not constraint names).
const UNIQUE_CONSTRAINTS: &[(&str, &str)] = &[
    (
        "users_user_name_key",
        "users.account_id, users.user_name_lower",
    ),
    (
        "groups_display_name_key",
        "groups.account_id, groups.display_name_lower",
    ),
    ("accounts_name_key", "accounts.name"),
    ("users_extension_key", "users.account_id, users.extension"),
    ("products_code_key", "products.account_id, products.code"),
    (
        "licence_bundles_name_key",
        "licence_bundles.account_id, licence_bundles.name",
    ),
    (
        "custom_roles_name_key",
        "custom_roles.account_id, custom_roles.name",
    ),
    (
        "emergency_locations_name_key",
        "emergency_locations.account_id, emergency_locations.name",
    ),
    (
        "settings_templates_name_key",
        "settings_templates.account_id, settings_templates.name",
    ),
    ("devices_mac_key", "devices.mac"),
    (
        "email_templates_name_key",
        "email_templates.account_id, email_templates.name",
    ),
    ("phone_numbers_pkey", "phone_numbers.number"),
    ("phone_numbers_user_key", "phone_numbers.user_id"),
    (
        "group_members_pkey",
        "group_members.group_id, group_members.member_id",
    ),
];

fn classify(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        if db.kind() == sqlx::error::ErrorKind::UniqueViolation {
            let constraint = db.constraint().map(str::to_string);
            let message = db.message();
            for (name, sqlite_columns) in UNIQUE_CONSTRAINTS {
                if constraint.as_deref() == Some(*name) || message.ends_with(sqlite_columns) {
                    return StoreError::Unique(name);
                }
            }
        }
        // PostgreSQL serialization failures and deadlocks: the caller may retry.
        if matches!(db.code().as_deref(), Some("40001" | "40P01")) {
            return StoreError::Conflict;
        }
        // SQLite BUSY, BUSY_RECOVERY, BUSY_SNAPSHOT and LOCKED.
        if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
            && matches!(db.code().as_deref(), Some("5" | "261" | "517" | "6"))
        {
            return StoreError::Busy;
        }
    }
    if matches!(error, sqlx::Error::PoolTimedOut) {
        return StoreError::Busy;
    }
    StoreError::Database(error)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// The database: a pool of either kind.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePools),
    Postgres(PgPool),
}

/// SQLite lets one transaction write at a time. Rather than several connections taking turns at
/// the file lock (each waiter sleeping in SQLite's busy handler, and each keeping a page cache of
/// its own), writers queue for the one writer connection, and reads go to a few read-only
/// connections that WAL lets run beside it (only read transactions are opened on them). The busy
/// timeout stays for other processes (the CLI, a second server) on the same file.
#[derive(Debug, Clone)]
pub struct SqlitePools {
    writer: SqlitePool,
    readers: SqlitePool,
}

impl SqlitePools {
    /// The pool of the one writer connection (also fine for reads that must see its writes).
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    pub fn readers(&self) -> &SqlitePool {
        &self.readers
    }
}

/// Reading SQLite connections: reads are spread over them while the writer writes.
const SQLITE_READERS: u32 = 4;

/// One transaction; every request's writes and their audit events go through exactly one.
/// A read of one or two statements that need no common snapshot may run on a plain
/// connection instead ([`Store::read`]): no `BEGIN` and `COMMIT` round trips.
pub enum Tx {
    Sqlite(Conn<Sqlite>),
    Postgres(Conn<Postgres>),
}

/// A connection in a transaction, or a plain one in autocommit (each statement its own
/// snapshot). Either derefs to the driver's connection.
pub enum Conn<DB: sqlx::Database> {
    Transaction(sqlx::Transaction<'static, DB>),
    Plain(sqlx::pool::PoolConnection<DB>),
}

impl<DB: sqlx::Database> std::ops::Deref for Conn<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &Self::Target {
        match self {
            Conn::Transaction(tx) => tx,
            Conn::Plain(conn) => conn,
        }
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for Conn<DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Conn::Transaction(tx) => tx,
            Conn::Plain(conn) => conn,
        }
    }
}

impl<DB: sqlx::Database> Conn<DB> {
    async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Conn::Transaction(tx) => tx.commit().await,
            Conn::Plain(_) => Ok(()),
        }
    }
}

/// Runs `$body` with `$conn` bound to the transaction's connection, whichever the dialect.
macro_rules! on_conn {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::store::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}
pub(crate) use on_conn;

/// Binds a list of [`filter_sql::Bind`] values to a query, in order.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                $crate::store::filter_sql::Bind::Text(v) => query.bind(v.clone()),
                $crate::store::filter_sql::Bind::Int(v) => query.bind(*v),
                $crate::store::filter_sql::Bind::Float(v) => query.bind(*v),
                $crate::store::filter_sql::Bind::Bool(v) => query.bind(*v),
                $crate::store::filter_sql::Bind::Uuid(v) => query.bind(*v),
            };
        }
        query
    }};
}
pub(crate) use bind_all;

impl Store {
    /// Connects to `url` (`sqlite://PATH` or `postgres://…`); creates the SQLite file and its
    /// directory if missing. Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::UnsupportedUrl(url.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(15))
                .foreign_keys(true)
                // Substring filters on case-exact attributes must respect case; case-insensitive
                // ones compare lower-cased values, so LIKE never needs to fold case itself.
                .pragma("case_sensitive_like", "ON");
            if let Some(parent) = Path::new(options.get_filename()).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)?;
            }
            // The writer keeps 16 MiB of page cache (SQLite's default is 2 MiB), so that the
            // indexes a write descends stay in memory however large the account grows; readers
            // keep 4 MiB each, enough for the upper levels of the lookup indexes of a
            // 100,000-user account (with 2 MiB, lookups slowed as the account grew).
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.clone().pragma("cache_size", "-16384"))
                .await?;
            let readers = SqlitePoolOptions::new()
                .max_connections(SQLITE_READERS)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(
                    options
                        .create_if_missing(false)
                        .pragma("cache_size", "-4096"),
                )
                .await?;
            Ok(Store::Sqlite(SqlitePools { writer, readers }))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|_| StoreError::UnsupportedUrl(url.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Ok(Store::Postgres(pool))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_string()))
        }
    }

    /// Applies the migrations of the dialect (embedded at build time).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(pools) => {
                sqlx::migrate!("migrations/sqlite")
                    .run(&pools.writer)
                    .await?
            }
            Store::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Store::Sqlite(_) => Dialect::Sqlite,
            Store::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Opens a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so that read-then-write sequences cannot deadlock on lock upgrade;
    /// on PostgreSQL rows are locked with `FOR UPDATE` where read-modify-write needs it.
    pub async fn begin_write(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Store::Sqlite(pools) => Tx::Sqlite(Conn::Transaction(
                pools.writer.begin_with("BEGIN IMMEDIATE").await?,
            )),
            Store::Postgres(pool) => Tx::Postgres(Conn::Transaction(pool.begin().await?)),
        })
    }

    /// Opens a read-only transaction: a consistent snapshot for a page and its total.
    pub async fn begin_read(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Store::Sqlite(pools) => Tx::Sqlite(Conn::Transaction(pools.readers.begin().await?)),
            Store::Postgres(pool) => Tx::Postgres(Conn::Transaction(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            )),
        })
    }

    /// A reading connection without a transaction: for reads whose statements need no common
    /// snapshot (each statement still reads a consistent one). Never write through it.
    pub async fn read(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Store::Sqlite(pools) => Tx::Sqlite(Conn::Plain(pools.readers.acquire().await?)),
            Store::Postgres(pool) => Tx::Postgres(Conn::Plain(pool.acquire().await?)),
        })
    }

    /// Keeps the query planner's statistics current: on SQLite, `PRAGMA optimize` on the writer
    /// (it analyses only the tables that changed enough, and writes nothing otherwise), then
    /// every reading connection reloads them (SQLite loads statistics once per connection, so a
    /// reader would otherwise plan a 100,000-user account as it planned an empty one). On
    /// PostgreSQL, autovacuum's `ANALYZE` does this.
    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        if let Store::Sqlite(pools) = self {
            sqlx::query("PRAGMA optimize")
                .execute(&pools.writer)
                .await?;
            let mut readers = Vec::with_capacity(SQLITE_READERS as usize);
            for _ in 0..SQLITE_READERS {
                readers.push(pools.readers.acquire().await?);
            }
            for reader in &mut readers {
                sqlx::query("ANALYZE sqlite_schema")
                    .execute(&mut **reader)
                    .await?;
            }
        }
        Ok(())
    }

    /// `SELECT 1`: readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(pools) => {
                sqlx::query("SELECT 1").execute(&pools.readers).await?;
            }
            Store::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(pools) => {
                pools.readers.close().await;
                pools.writer.close().await;
            }
            Store::Postgres(pool) => pool.close().await,
        }
    }
}

impl Tx {
    pub fn dialect(&self) -> Dialect {
        match self {
            Tx::Sqlite(_) => Dialect::Sqlite,
            Tx::Postgres(_) => Dialect::Postgres,
        }
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// `FOR KEY SHARE` on PostgreSQL: the rows stay, and keep their keys, until we commit.
    fn key_share_clause(&self) -> &'static str {
        match self {
            Tx::Sqlite(_) => "",
            Tx::Postgres(_) => " FOR KEY SHARE",
        }
    }

    /// `FOR UPDATE` where the dialect has row locks; SQLite's `BEGIN IMMEDIATE` already
    /// serialises writers.
    fn lock_clause(&self) -> &'static str {
        match self {
            Tx::Sqlite(_) => "",
            Tx::Postgres(_) => " FOR UPDATE",
        }
    }
}

/// Now, in microseconds since the Unix epoch: the unit of every stored time.
pub fn now_micros() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000) as i64
}
