//! Cobble's storage: one [`Store`] over SQLite (embedded default) and PostgreSQL.
//!
//! An enum over the two concrete sqlx pools with a dispatch macro, not `sqlx::Any`
//! (shared/DEPENDENCIES.md §3(f)). Both engines run the same SQL text with `$n`
//! placeholders; timestamps are Unix milliseconds, booleans integers. Every method that
//! changes state is a method on [`Tx`], one write transaction, which a request composes with
//! its nonce redemption and commits once; reads that need no transaction go to the pool.
#![forbid(unsafe_code)]

mod account;
mod cert;
mod direct;
mod fast_read;
mod issuance_jobs;
mod jobs;
mod limits;
mod migrate;
mod nonce;
mod operator;
mod order;
mod pg_read;
mod prune;
mod seed;
mod stats;
pub mod testdb;

pub use account::{Account, AccountCreated, AccountUpdate, KeyChanged, NewAccount};
pub use cert::{Certificate, NewCertificate};
pub use issuance_jobs::IssuanceJob;
pub use jobs::{Claim, ValidationJob, ValidationOutcome};
pub use limits::{IssuanceKeys, KeyUsage, StoredOverride, Window};
pub use operator::{
    AuditEntry, Debit, Document, DomainClaim, ExternalAccount, ExternalAccountUpdate,
    ExternalStanding, IssuanceStanding, ListQuery, NewExternalAccount, Organization, Page,
    candidate_entries, new_hmac_key, uuid_v4,
};
pub use order::{Authz, AuthzPlan, Challenge, NewOrder, Order};
pub use prune::Pruned;
pub use seed::SeedPlan;
pub use stats::{PoolStats, QueueStats};

use cobble_core::nonce::OpenedNonce;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// SQLite refused or failed a read on the hop-free read path.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The URL names no engine Cobble supports.
    #[error("unsupported database URL {0:?}: use sqlite://PATH, sqlite::memory: or postgres://...")]
    UnsupportedUrl(String),
    /// A migration failed to apply.
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        /// The migration's number.
        version: i64,
        /// The migration's name.
        name: &'static str,
        /// Why.
        source: sqlx::Error,
    },
    /// The database holds a schema newer than this build knows.
    #[error(
        "the database has schema version {found}, newer than this build's {known}; upgrade Cobble"
    )]
    SchemaTooNew {
        /// Version in the database.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// The new account key already belongs to another account (a keyChange race lost
    /// at the unique index; RFC 8555 §7.3.5: 409). The transaction must be dropped.
    #[error("the key already belongs to another account")]
    KeyInUse,
    /// The request's nonce was already used (RFC 8555 §6.5: `badNonce`).
    #[error("the nonce has already been used")]
    NonceReused,
    /// The certificate named by `replaces` already has a replacement order (RFC 9773 §5).
    #[error("the certificate has already been replaced")]
    AlreadyReplaced,
    /// A list cursor this store did not make.
    #[error("cursor {0:?} is not one this server made")]
    BadCursor(String),
    /// A list filter with a value outside its set.
    #[error("{0}")]
    BadFilter(String),
    /// A repository method outside the hot request shapes was called on a transaction of
    /// [`Store::begin_hot`] (a bug in the caller: use [`Store::begin`]).
    #[error("this store method does not run on the hop-free SQLite writer (use Store::begin)")]
    NotHopFree,
    /// A record with this unique name or id exists.
    #[error("{0}")]
    Duplicate(String),
    /// A stored row does not decode to a valid value.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the database could not be reached or had no connection free in time (as
    /// opposed to refusing a statement): the request may succeed if retried later.
    pub fn is_unavailable(&self) -> bool {
        let e = match self {
            StoreError::Database(e) => e,
            // Busy or locked past the busy timeout, or the file cannot be opened.
            StoreError::Sqlite(e) => {
                return matches!(
                    e.sqlite_error_code(),
                    Some(
                        rusqlite::ErrorCode::DatabaseBusy
                            | rusqlite::ErrorCode::DatabaseLocked
                            | rusqlite::ErrorCode::CannotOpen
                    )
                );
            }
            _ => return false,
        };
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            // PostgreSQL: connection exceptions (class 08), shutdown and start-up (57P01-57P03),
            // too many connections (53300); SQLite: busy or locked past the busy timeout.
            sqlx::Error::Database(d) => d.code().is_some_and(|c| {
                c.starts_with("08")
                    || matches!(&*c, "57P01" | "57P02" | "57P03" | "53300" | "5" | "6")
            }),
            _ => false,
        }
    }
}

/// Tuning for [`Store::connect`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections in the PostgreSQL pool, or in the SQLite reader pool.
    pub max_connections: u32,
    /// How long a request waits for a free connection before it is told to come back
    /// (fail fast rather than queue while the database is down or saturated).
    pub acquire_timeout: Duration,
    /// How long SQLite waits for another process's write lock.
    pub busy_timeout: Duration,
    /// SQLite file: run the hot writes and reads on one hop-free rusqlite connection
    /// (direct.rs, fast_read.rs) rather than sqlx's writer and reader pool. Off only to
    /// compare the designs in benchmarks.
    pub sqlite_hop_free_reads: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(2),
            busy_timeout: Duration::from_secs(10),
            sqlite_hop_free_reads: true,
        }
    }
}

/// Most connections of the sqlx SQLite reader pool (reads off the hot path).
const SQLITE_POOL_READERS: u32 = 4;

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// SQLite (file or memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

#[derive(Clone, Debug)]
enum Db {
    /// sqlx's pool for transactions; lent connections for single statements (pg_read.rs).
    Pg(PgPool, std::sync::Arc<pg_read::Conns>),
    /// One writer connection; a pool of read-only connections (WAL lets readers run beside the writer).
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
        /// The hot reads, without sqlx's thread hop (none for a memory database).
        fast: Option<std::sync::Arc<fast_read::Readers>>,
        /// The hot-path writes without sqlx's thread hop, and the write gate every writer of
        /// this process takes first (direct.rs; none for a memory database).
        gate: Option<direct::Gate>,
    },
}

/// Runs `$body` (which returns a `Result`) with `$p` bound to a connection for reads: on
/// PostgreSQL one lent without sqlx's pool round trips (pg_read.rs), back in the list when
/// the body succeeds, closed when it fails; on SQLite one of the reader pool. A `return` in
/// the body ends the body, not the caller.
macro_rules! read_pool {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            crate::Db::Pg(_, conns) => {
                let mut lent = conns.get().await?;
                let $p: &mut sqlx::PgConnection = lent.conn();
                let out = async move { $body }.await;
                lent.settle(&out);
                out
            }
            crate::Db::Sqlite { reader, .. } => {
                let mut conn = reader.acquire().await?;
                let $p: &mut sqlx::SqliteConnection = &mut *conn;
                async move { $body }.await
            }
        }
    };
}

/// Runs `$body` with `$tx` bound to an open write transaction (SQLite: `BEGIN IMMEDIATE`,
/// so two processes on one file queue instead of failing to upgrade a read lock).
macro_rules! write_tx {
    ($db:expr, $tx:ident => $body:expr) => {
        match $db {
            crate::Db::Pg(p, _) => {
                #[allow(unused_mut)]
                let mut $tx = p.begin().await?;
                $body
            }
            crate::Db::Sqlite { writer, gate, .. } => {
                let _gate = match gate {
                    Some(g) => Some(g.lock().await?),
                    None => None,
                };
                #[allow(unused_mut)]
                let mut $tx = writer.begin_with("BEGIN IMMEDIATE").await?;
                $body
            }
        }
    };
}

/// Inserts the nonce into the used-nonce table inside transaction `$tx`; a nonce seen
/// before makes the enclosing method return [`StoreError::NonceReused`] (and roll back).
macro_rules! redeem_nonce_in {
    ($tx:expr, $nonce:expr) => {{
        let n: &cobble_core::nonce::OpenedNonce = $nonce;
        let done = sqlx::query(
            "INSERT INTO used_nonces (nonce, expires_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&n.value)
        .bind(n.expires_ms)
        .execute(&mut *$tx)
        .await?
        .rows_affected();
        if done == 0 {
            return Err(crate::StoreError::NonceReused);
        }
    }};
}

/// Runs `$body` with `$c` bound to the connection of transaction `$tx` (a [`Tx`]): the
/// engine is matched once per repository call, and the same SQL text serves both.
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match &mut $tx.inner {
            crate::TxInner::Pg(t) => {
                #[allow(unused_variables)]
                let $c: &mut sqlx::PgConnection = t.conn();
                $body
            }
            crate::TxInner::Sqlite(t, _) => {
                #[allow(unused_variables)]
                let $c: &mut sqlx::SqliteConnection = &mut **t;
                $body
            }
            crate::TxInner::Direct(_) => return Err(crate::StoreError::NotHopFree),
        }
    };
}

pub(crate) use {on_tx, read_pool, write_tx};

/// One write transaction: a request's every change, and its nonce redemption, commit
/// together or not at all (dropping it rolls back). Repository functions (`create_order`,
/// `start_challenge`, `revoke_certificate`, ...) are methods on it, so a request composes
/// them in one `BEGIN ... COMMIT` whatever it touches. On SQLite it is a `BEGIN IMMEDIATE`
/// on the single writer connection, so two processes on one file queue instead of failing.
pub struct Tx {
    inner: TxInner,
}

enum TxInner {
    Pg(PgTx),
    /// sqlx's writer, and the write gate held until the transaction ends (declared after
    /// it, so it is released after the commit or rollback).
    Sqlite(
        sqlx::Transaction<'static, sqlx::Sqlite>,
        Option<tokio::sync::OwnedMutexGuard<rusqlite::Connection>>,
    ),
    /// The hop-free writer (direct.rs).
    Direct(direct::DirectTx),
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("engine", &self.engine())
            .finish()
    }
}

impl Tx {
    /// The engine this transaction runs on.
    pub fn engine(&self) -> Engine {
        match self.inner {
            TxInner::Pg(_) => Engine::Postgres,
            TxInner::Sqlite(..) | TxInner::Direct(_) => Engine::Sqlite,
        }
    }

    /// The hop-free SQLite connection, when this transaction runs on it.
    pub(crate) fn direct(&self) -> Option<&rusqlite::Connection> {
        match &self.inner {
            TxInner::Direct(d) => Some(d.conn()),
            _ => None,
        }
    }

    /// The PostgreSQL connection, when this transaction runs on PostgreSQL: for the few
    /// statements that fold several steps into one round trip there (data-modifying CTEs).
    pub(crate) fn pg(&mut self) -> Option<&mut sqlx::PgConnection> {
        match &mut self.inner {
            TxInner::Pg(t) => Some(t.conn()),
            _ => None,
        }
    }

    /// Commits every change made through this transaction.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::Pg(t) => t.commit().await?,
            TxInner::Sqlite(t, _gate) => t.commit().await?,
            TxInner::Direct(d) => d.commit()?,
        }
        Ok(())
    }

    /// Redeems a nonce (RFC 8555 §6.5): inserts it into the used-nonce table, so that it
    /// commits with the request's own change; [`StoreError::NonceReused`] when it was used.
    pub async fn redeem_nonce(&mut self, nonce: &OpenedNonce) -> Result<(), StoreError> {
        if let Some(c) = self.direct() {
            return nonce::redeem_direct(c, nonce);
        }
        on_tx!(self, tx => {
            redeem_nonce_in!(tx, nonce);
            Ok(())
        })
    }
}

/// A PostgreSQL transaction on a pooled connection, begun and ended by hand rather than with
/// `sqlx::Transaction`, so that its `BEGIN` can travel with the request's nonce redemption in
/// one simple-protocol round trip (sqlx sends `BEGIN` alone and waits for it). Dropped
/// without [`PgTx::commit`], it is rolled back in a task before the connection goes back to
/// the pool; a connection whose rollback fails is closed instead.
struct PgTx {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
}

impl PgTx {
    /// Takes a connection and begins; with `nonce`, redeems it in the same round trip
    /// ([`StoreError::NonceReused`] when it was used, and the transaction rolls back).
    async fn begin(pool: &PgPool, nonce: Option<&OpenedNonce>) -> Result<Self, StoreError> {
        let mut tx = Self {
            conn: Some(pool.acquire().await?),
        };
        match nonce {
            // The nonce goes into the SQL text as a literal (the simple protocol takes no
            // parameters): only when it is plain base64url, as every nonce this CA mints is.
            Some(n) if nonce::is_literal_safe(&n.value) => {
                let sql = format!(
                    "BEGIN; INSERT INTO used_nonces (nonce, expires_ms) VALUES ('{}', {}) ON CONFLICT DO NOTHING",
                    n.value, n.expires_ms
                );
                let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(tx.conn())
                    .await?
                    .rows_affected();
                if done == 0 {
                    return Err(StoreError::NonceReused);
                }
            }
            other => {
                sqlx::raw_sql("BEGIN").execute(tx.conn()).await?;
                if let Some(n) = other {
                    let c = tx.conn();
                    redeem_nonce_in!(c, n);
                }
            }
        }
        Ok(tx)
    }

    fn conn(&mut self) -> &mut sqlx::PgConnection {
        self.conn
            .as_mut()
            .expect("an open transaction has its connection")
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        let mut c = self
            .conn
            .take()
            .expect("an open transaction has its connection");
        // A failed COMMIT ends the transaction too (PostgreSQL rolls it back).
        sqlx::raw_sql("COMMIT").execute(&mut *c).await?;
        Ok(())
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        if let Some(mut c) = self.conn.take() {
            tokio::spawn(async move {
                if let Err(e) = sqlx::raw_sql("ROLLBACK").execute(&mut *c).await {
                    tracing::warn!(error = %e, "rolling back a PostgreSQL transaction failed; closing its connection");
                    c.close_on_drop();
                }
            });
        }
    }
}

/// The store: every piece of state that matters.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

/// How long a PostgreSQL connection may sit idle in the pool before it is pinged on its way
/// out.
const PG_PING_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

impl Store {
    /// Opens a write transaction (see [`Tx`]).
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match &self.db {
            Db::Pg(p, _) => TxInner::Pg(PgTx::begin(p, None).await?),
            Db::Sqlite { writer, gate, .. } => {
                let gate = match gate {
                    Some(g) => Some(g.lock().await?),
                    None => None,
                };
                TxInner::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?, gate)
            }
        };
        Ok(Tx { inner })
    }

    /// Opens a write transaction for one of the hot request shapes, on a SQLite file without
    /// a thread hop per statement (direct.rs). Only the repository methods of those shapes
    /// run on it: `redeem_nonce`, `create_order`, `audit`, `start_challenge`,
    /// `claim_validation_job`, `finish_validation`, `begin_finalize`, `enqueue_issuance`,
    /// `claim_issuance_job`, `finish_issuance`, `fail_issuance`, `fail_order` and
    /// `debit_credit`; any other fails with [`StoreError::NotHopFree`]. On PostgreSQL
    /// and a memory database it is [`Store::begin`].
    pub async fn begin_hot(&self) -> Result<Tx, StoreError> {
        if let Db::Sqlite { gate: Some(g), .. } = &self.db {
            return Ok(Tx {
                inner: TxInner::Direct(direct::DirectTx::begin(g).await?),
            });
        }
        self.begin().await
    }

    /// [`Store::begin`] with `nonce` redeemed in the transaction ([`Tx::redeem_nonce`]); on
    /// PostgreSQL the `BEGIN` and the redemption travel in one round trip.
    pub async fn begin_redeeming(&self, nonce: &OpenedNonce) -> Result<Tx, StoreError> {
        if let Db::Pg(p, _) = &self.db {
            return Ok(Tx {
                inner: TxInner::Pg(PgTx::begin(p, Some(nonce)).await?),
            });
        }
        let mut tx = self.begin().await?;
        tx.redeem_nonce(nonce).await?;
        Ok(tx)
    }

    /// [`Store::begin_hot`] with `nonce` redeemed in the transaction, as
    /// [`Store::begin_redeeming`].
    pub async fn begin_hot_redeeming(&self, nonce: &OpenedNonce) -> Result<Tx, StoreError> {
        if self.gate().is_none() {
            return self.begin_redeeming(nonce).await;
        }
        let mut tx = self.begin_hot().await?;
        tx.redeem_nonce(nonce).await?;
        Ok(tx)
    }

    /// The hop-free SQLite writer, for single-statement writes outside a transaction.
    pub(crate) fn gate(&self) -> Option<&direct::Gate> {
        match &self.db {
            Db::Sqlite { gate: Some(g), .. } => Some(g),
            _ => None,
        }
    }

    /// Connects to `url` and applies migrations. `sqlite://PATH` creates the file;
    /// `sqlite::memory:` keeps nothing; `postgres://...` uses PostgreSQL.
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // sqlx pings a connection (a round trip) before handing it out and again when it
            // comes back; on the hot path a statement on the pool cost three round trips.
            // A connection that was in use moments ago is alive, so only one idle for a while
            // is tested; a connection broken meanwhile fails its statement (503, the client
            // retries) and is closed by the ping on release.
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(opts.acquire_timeout)
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PG_PING_AFTER_IDLE {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .connect(url)
                .await?;
            let conns = pg_read::Conns::new(
                pool.connect_options().as_ref().clone(),
                opts.max_connections,
                opts.acquire_timeout,
            );
            Db::Pg(pool, std::sync::Arc::new(conns))
        } else if url.starts_with("sqlite:") {
            let common = SqliteConnectOptions::from_str(url)?
                .busy_timeout(opts.busy_timeout)
                .foreign_keys(true);
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                // Waiting for the one writer is ordinary queueing on SQLite, not an outage.
                .acquire_timeout(opts.busy_timeout.max(opts.acquire_timeout))
                .connect_with(
                    common
                        .clone()
                        .create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal),
                )
                .await?;
            let (reader, fast, gate) = if in_memory {
                // A memory database lives in its one connection: read through the writer.
                (writer.clone(), None, None)
            } else {
                // The hot-path writes and reads run hop-free on one rusqlite connection
                // beside sqlx's writer (direct.rs, fast_read.rs).
                let gate = if opts.sqlite_hop_free_reads {
                    Some(direct::open(
                        common.get_filename(),
                        opts.busy_timeout,
                        opts.busy_timeout.max(opts.acquire_timeout),
                    )?)
                } else {
                    None
                };
                let fast = gate
                    .clone()
                    .map(|g| std::sync::Arc::new(fast_read::Readers::new(g)));
                let reader = SqlitePoolOptions::new()
                    .max_connections(opts.max_connections.clamp(1, SQLITE_POOL_READERS))
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_with(common.read_only(true))
                    .await?;
                (reader, fast, gate)
            };
            Db::Sqlite {
                writer,
                reader,
                fast,
                gate,
            }
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let store = Store { db };
        migrate::run(&store.db).await?;
        Ok(store)
    }

    /// Readiness (for load balancers): the database answers and holds every migration
    /// this build knows.
    pub async fn ready(&self) -> Result<bool, StoreError> {
        migrate::is_current(&self.db).await
    }

    /// The engine in use.
    pub fn engine(&self) -> Engine {
        match self.db {
            Db::Pg(..) => Engine::Postgres,
            Db::Sqlite { .. } => Engine::Sqlite,
        }
    }

    /// The hop-free SQLite readers, when this store has them.
    /// Whether a read can redeem a POST-as-GET's nonce on the same trip (the hop-free SQLite
    /// connection, PostgreSQL); a memory database reads, then redeems.
    pub(crate) fn redeems_in_read(&self) -> bool {
        self.fast().is_some() || matches!(self.db, Db::Pg(..))
    }

    pub(crate) fn fast(&self) -> Option<&fast_read::Readers> {
        match &self.db {
            Db::Sqlite { fast: Some(r), .. } => Some(r),
            _ => None,
        }
    }

    /// Closes every connection; waits for checked-out ones to come back.
    pub async fn close(&self) {
        match &self.db {
            Db::Pg(p, conns) => {
                conns.close().await;
                p.close().await
            }
            Db::Sqlite { writer, reader, .. } => {
                reader.close().await;
                writer.close().await;
            }
        }
    }
}

/// A random 128-bit identifier, base64url: what URLs carry instead of row ids.
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("the system RNG works");
    cobble_core::b64::encode(b)
}
