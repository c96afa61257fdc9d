//! SQLite writes without a thread hop per statement (issue 10). sqlx-sqlite runs every
//! statement of a transaction on its connection's worker thread and wakes the caller back
//! through a channel: `BEGIN`, each statement and `COMMIT` are a context switch each way.
//! For the request shapes of the hot path (nonce redemption, newOrder, challenge, the
//! validation and issuance queues, finalize) a transaction runs instead on one read-write
//! rusqlite connection, synchronously on the calling task, held for the whole transaction
//! behind an async mutex: a statement on a few cached pages takes microseconds, less than
//! one hop. WAL with `synchronous=NORMAL` as on sqlx's writer: a commit writes the WAL and
//! does not sync it, so a commit is no slower here than there.
//!
//! The mutex is also the write gate of sqlx's writer connection: [`crate::Store::begin`]
//! takes it before `BEGIN IMMEDIATE`, so the two connections of this process take turns in
//! memory instead of meeting at SQLite's file lock (whose busy handler sleeps). Another
//! process on the same file still queues at the file lock (busy timeout).

use crate::StoreError;
use rusqlite::types::ToSql;
use rusqlite::{Connection, OpenFlags, Row};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The process's write gate, holding the hop-free writer connection.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    conn: Arc<Mutex<Connection>>,
    /// How long a writer waits for its turn before it is told the store is busy (as the
    /// acquire timeout of sqlx's one-connection writer pool).
    wait: Duration,
}

impl Gate {
    /// Waits for the gate (at most its wait; then the store counts as unavailable).
    pub(crate) async fn lock(&self) -> Result<OwnedMutexGuard<Connection>, StoreError> {
        tokio::time::timeout(self.wait, self.conn.clone().lock_owned())
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))
    }
}

/// WAL pages between automatic checkpoints on the hop-free writer (which makes nearly every
/// commit of a busy server, so it is the one that checkpoints).
const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// Opens the hop-free writer on the database file at `path` (created by sqlx's writer, in
/// WAL mode); a writer waits at most `wait` for its turn.
pub(crate) fn open(path: &Path, busy: Duration, wait: Duration) -> Result<Gate, StoreError> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    c.busy_timeout(busy)?;
    // As sqlx's writer (lib.rs): WAL, commits not synced, foreign keys enforced.
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )?;
    // Checkpoint every WAL_AUTOCHECKPOINT_PAGES instead of SQLite's 1,000: each checkpoint
    // copies the pages written since the last one into the database file and syncs both, and
    // an order writes the same hot pages (the ends of the nonce and job indexes) again and
    // again. Measured under `cobble load` (500 orders, strace): fsync 96 -> 13 and page
    // writes down 5 %, for a WAL file of up to ~40 MB.
    c.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}"
    ))?;
    c.set_prepared_statement_cache_capacity(64);
    Ok(Gate {
        conn: Arc::new(Mutex::new(c)),
        wait,
    })
}

/// An open `BEGIN IMMEDIATE` transaction on the hop-free writer; dropped without
/// [`DirectTx::commit`] it rolls back.
pub(crate) struct DirectTx {
    conn: OwnedMutexGuard<Connection>,
    open: bool,
}

impl DirectTx {
    /// Takes the gate and begins a write transaction.
    pub(crate) async fn begin(gate: &Gate) -> Result<Self, StoreError> {
        let conn = gate.lock().await?;
        // Cached: parsed once per connection, not per transaction (the gate is held meanwhile).
        conn.prepare_cached(logged("BEGIN IMMEDIATE"))?
            .execute([])?;
        Ok(Self { conn, open: true })
    }

    /// The connection, inside the transaction.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Commits (a failed commit rolls back when dropped).
    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        self.conn.prepare_cached(logged("COMMIT"))?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Drop for DirectTx {
    fn drop(&mut self) {
        if self.open
            && !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch(logged("ROLLBACK"))
        {
            tracing::warn!(error = %e, "rolling back a SQLite transaction failed");
        }
    }
}

/// Every statement run here, at trace level under `cobble_store::sql`, as fast_read.rs,
/// so that tests/plans.rs sees what runs.
fn logged(sql: &str) -> &str {
    tracing::trace!(target: "cobble_store::sql", statement = sql);
    sql
}

/// The names of the numbered parameters the shared SQL text uses (`$1`, `$2`, ...): bound
/// by name, since SQLite numbers `$n` parameters in order of first appearance.
const NAMES: [&str; 16] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15",
    "$16",
];

fn prepare<'c>(
    c: &'c Connection,
    sql: &str,
    params: &[&dyn ToSql],
) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
    let mut st = c.prepare_cached(logged(sql))?;
    st.clear_bindings();
    for (name, p) in NAMES.iter().zip(params) {
        if let Some(i) = st.parameter_index(name)? {
            st.raw_bind_parameter(i, p)?;
        }
    }
    Ok(st)
}

/// Runs one statement with `$n` parameters; the number of rows it changed.
pub(crate) fn exec(c: &Connection, sql: &str, params: &[&dyn ToSql]) -> Result<u64, StoreError> {
    let mut st = prepare(c, sql, params)?;
    Ok(st.raw_execute()? as u64)
}

/// Runs one statement with `$n` parameters and decodes its first row, if any.
pub(crate) fn row<T>(
    c: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, StoreError> {
    let mut st = prepare(c, sql, params)?;
    let mut rows = st.raw_query();
    match rows.next()? {
        Some(r) => Ok(Some(f(r)?)),
        None => Ok(None),
    }
}

/// Runs one statement with `$n` parameters and decodes every row.
pub(crate) fn rows<T>(
    c: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    mut f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut st = prepare(c, sql, params)?;
    let mut rows = st.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(f(r)?);
    }
    Ok(out)
}
