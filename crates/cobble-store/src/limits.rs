//! Counting rate limits (issue 12): events of issued certificates per registered domain and
//! per name set over sliding windows, pending authorizations and failed validations per
//! account. The authoritative count runs in the transaction that records the new event,
//! after taking the keys' lock rows, so that two instances never both let the last one in.

use crate::{Store, StoreError, Tx, on_tx, read_pool};
use cobble_core::ratelimit::{LimitName, Override, Scope};
use sqlx::Row;

/// What a certificate counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuanceKeys {
    /// Its registered domains (eTLD+1), deduplicated.
    pub domains: Vec<String>,
    /// Its name set (see `cobble_core::ratelimit::name_set_key`).
    pub name_set: String,
}

/// Events in a window: how many, when the oldest of them happened, and which one holds
/// the count at the limit asked about (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// Events counted.
    pub count: i64,
    /// The oldest counted event, when there is one.
    pub oldest_ms: Option<i64>,
    /// The limit-th newest counted event (the (count - limit + 1)-th oldest): once it
    /// leaves the window the count is below the limit. `None` when fewer are counted.
    pub limiting_ms: Option<i64>,
}

/// The OFFSET that picks the limit-th newest event (a limit of 0 is read as 1: no count
/// ever drops below 0, so the newest event is as good an answer as any).
fn limiting_offset(limit: u32) -> i64 {
    i64::from(limit.max(1)) - 1
}

const DOMAIN: &str = "domain";
const NAMES: &str = "names";

/// One statement on the (kind, key, at_ms) index: the count, the oldest event, and the
/// `$4`-th newest after the newest (see [`Window::limiting_ms`]).
const WINDOW: &str = "SELECT COUNT(*) AS n, MIN(at_ms) AS oldest, \
     (SELECT at_ms FROM issuance_events WHERE kind = $1 AND key = $2 AND at_ms > $3 \
      ORDER BY at_ms DESC LIMIT 1 OFFSET $4) AS limiting \
     FROM issuance_events WHERE kind = $1 AND key = $2 AND at_ms > $3";
/// The same for an account's failed validations of one name (its invalid authorizations).
const FAILED: &str = "SELECT COUNT(*) AS n, MIN(updated_ms) AS oldest, \
     (SELECT updated_ms FROM authzs WHERE account_id = $1 AND identifier_value = $2 \
      AND status = 'invalid' AND updated_ms > $3 ORDER BY updated_ms DESC LIMIT 1 OFFSET $4) AS limiting \
     FROM authzs WHERE account_id = $1 AND identifier_value = $2 AND status = 'invalid' AND updated_ms > $3";
const RENEWAL: &str =
    "SELECT COUNT(*) FROM issuance_events WHERE kind = $1 AND key = $2 AND account_id = $3";
const EXTERNAL_KID: &str = "SELECT external_kid FROM accounts WHERE id = $1";
const LOCK: &str = "INSERT INTO rate_limit_locks (key) VALUES ($1) ON CONFLICT (key) DO UPDATE SET key = excluded.key";
const RECORD: &str =
    "INSERT INTO issuance_events (kind, key, account_id, at_ms) VALUES ($1, $2, $3, $4)";

/// A window read on the hop-free writer.
fn window_direct(
    c: &rusqlite::Connection,
    kind: &str,
    key: &str,
    since_ms: i64,
    limit: u32,
) -> Result<Window, StoreError> {
    let offset = limiting_offset(limit);
    let w = crate::direct::row(c, WINDOW, &[&kind, &key, &since_ms, &offset], |r| {
        Ok(Window {
            count: r.get(0)?,
            oldest_ms: r.get(1)?,
            limiting_ms: r.get(2)?,
        })
    })?;
    Ok(w.unwrap_or_default())
}

/// Runs [`WINDOW`] or [`FAILED`] (`$sql`) with its four parameters on `$c`.
macro_rules! window_on {
    ($c:expr, $sql:expr, $a:expr, $b:expr, $since:expr, $limit:expr) => {{
        let row = sqlx::query($sql)
            .bind($a)
            .bind($b)
            .bind($since)
            .bind(limiting_offset($limit))
            .fetch_one($c)
            .await?;
        Window {
            count: row.try_get("n")?,
            oldest_ms: row.try_get("oldest")?,
            limiting_ms: row.try_get("limiting")?,
        }
    }};
}

macro_rules! renewal_on {
    ($c:expr, $account:expr, $set:expr) => {{
        let n: i64 = sqlx::query_scalar(RENEWAL)
            .bind(NAMES)
            .bind($set)
            .bind($account)
            .fetch_one($c)
            .await?;
        n > 0
    }};
}

macro_rules! external_kid_on {
    ($c:expr, $account:expr) => {{
        let kid: Option<Option<String>> = sqlx::query_scalar(EXTERNAL_KID)
            .bind($account)
            .fetch_optional($c)
            .await?;
        kid.flatten()
    }};
}

impl Store {
    /// Certificates for registered domain `domain` issued after `since_ms`, against a
    /// limit of `limit` (early check).
    pub async fn domain_window(
        &self,
        domain: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Window, StoreError> {
        read_pool!(&self.db, p => Ok(window_on!(p, WINDOW, DOMAIN, domain, since_ms, limit)))
    }

    /// Certificates for name set `set` issued after `since_ms`, against a limit of `limit`
    /// (early check).
    pub async fn name_set_window(
        &self,
        set: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Window, StoreError> {
        read_pool!(&self.db, p => Ok(window_on!(p, WINDOW, NAMES, set, since_ms, limit)))
    }

    /// Whether `account_id` was issued a certificate for name set `set` before (a renewal).
    pub async fn is_renewal(&self, account_id: &str, set: &str) -> Result<bool, StoreError> {
        read_pool!(&self.db, p => Ok(renewal_on!(p, account_id, set)))
    }

    /// The external account `account_id` is bound to.
    pub async fn external_kid_of(&self, account_id: &str) -> Result<Option<String>, StoreError> {
        read_pool!(&self.db, p => Ok(external_kid_on!(p, account_id)))
    }

    /// The account's pending, unexpired authorizations at `now_ms`.
    pub async fn pending_authzs(&self, account_id: &str, now_ms: i64) -> Result<i64, StoreError> {
        read_pool!(&self.db, p => {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM authzs WHERE account_id = $1 AND status = 'pending' AND expires_ms > $2")
                .bind(account_id)
                .bind(now_ms)
                .fetch_one(p)
                .await?;
            Ok(n)
        })
    }

    /// The account's failed validations of `name` after `since_ms` (invalid
    /// authorizations), against a limit of `limit`.
    pub async fn failed_validations(
        &self,
        account_id: &str,
        name: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Window, StoreError> {
        read_pool!(&self.db, p => Ok(window_on!(p, FAILED, account_id, name, since_ms, limit)))
    }
}

impl Tx {
    /// Takes the lock rows of `keys` (in order, so two transactions cannot deadlock): on
    /// PostgreSQL the upsert holds each row until commit, so transactions counting the same
    /// keys take turns; SQLite has one writer anyway.
    pub async fn lock_issuance_keys(&mut self, keys: &IssuanceKeys) -> Result<(), StoreError> {
        let mut all: Vec<String> = keys
            .domains
            .iter()
            .map(|d| format!("{DOMAIN}:{d}"))
            .collect();
        all.push(format!("{NAMES}:{}", keys.name_set));
        all.sort();
        all.dedup();
        if let Some(c) = self.direct() {
            for k in &all {
                crate::direct::exec(c, LOCK, &[k])?;
            }
            return Ok(());
        }
        on_tx!(self, tx => {
            for k in &all {
                sqlx::query(LOCK)
                    .bind(k)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(())
        })
    }

    /// Certificates for registered domain `domain` after `since_ms`, against a limit of
    /// `limit`, in this transaction.
    pub async fn domain_window(
        &mut self,
        domain: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Window, StoreError> {
        if let Some(c) = self.direct() {
            return window_direct(c, DOMAIN, domain, since_ms, limit);
        }
        on_tx!(self, tx => Ok(window_on!(&mut *tx, WINDOW, DOMAIN, domain, since_ms, limit)))
    }

    /// Certificates for name set `set` after `since_ms`, against a limit of `limit`, in
    /// this transaction.
    pub async fn name_set_window(
        &mut self,
        set: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Window, StoreError> {
        if let Some(c) = self.direct() {
            return window_direct(c, NAMES, set, since_ms, limit);
        }
        on_tx!(self, tx => Ok(window_on!(&mut *tx, WINDOW, NAMES, set, since_ms, limit)))
    }

    /// Records the events of a certificate issued to `account_id` at `now_ms`.
    pub async fn record_issuance(
        &mut self,
        keys: &IssuanceKeys,
        account_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if let Some(c) = self.direct() {
            for d in &keys.domains {
                crate::direct::exec(c, RECORD, &[&DOMAIN, d, &account_id, &now_ms])?;
            }
            crate::direct::exec(c, RECORD, &[&NAMES, &keys.name_set, &account_id, &now_ms])?;
            return Ok(());
        }
        on_tx!(self, tx => {
            let events = keys
                .domains
                .iter()
                .map(|d| (DOMAIN, d.as_str()))
                .chain(std::iter::once((NAMES, keys.name_set.as_str())));
            for (kind, key) in events {
                sqlx::query(RECORD)
                    .bind(kind)
                    .bind(key)
                    .bind(account_id)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(())
        })
    }
}

/// One key's events in a window, for usage reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsage {
    /// `domain` (a registered domain) or `names` (a name set).
    pub kind: String,
    /// The registered domain or the name set.
    pub key: String,
    /// The events and the oldest of them.
    pub window: Window,
}

/// The columns an override row is read with.
const OVERRIDE_COLUMNS: &str =
    "scope, subject, limit_name, count, window_secs, enabled, comment, created_ms";

/// The overrides that can apply to `account_id` (its own, its external account's) and to
/// `domains` (registered domains): one indexed statement.
macro_rules! overrides_for_on {
    ($c:expr, $account:expr, $domains:expr) => {{
        let domains: &[String] = $domains;
        let mut sql = format!(
            "SELECT {OVERRIDE_COLUMNS} FROM rate_limit_overrides \
             WHERE (scope = 'account' AND subject = $1) \
             OR (scope = 'external-account' AND subject = \
                 (SELECT external_kid FROM accounts WHERE id = $1))"
        );
        if !domains.is_empty() {
            let marks: Vec<String> = (0..domains.len()).map(|i| format!("${}", i + 2)).collect();
            sql += &format!(
                " OR (scope = 'domain' AND subject IN ({}))",
                marks.join(", ")
            );
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind($account.unwrap_or(""));
        for d in domains {
            q = q.bind(d);
        }
        let rows = q.fetch_all($c).await?;
        rows.iter()
            .map(override_row)
            .collect::<Result<Vec<_>, StoreError>>()
    }};
}

fn override_row<R: Row>(r: &R) -> Result<StoredOverride, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'q> String: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> Option<String>: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> Option<i64>: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> i64: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> bool: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
{
    build_override(OverrideColumns {
        scope: r.try_get("scope")?,
        subject: r.try_get("subject")?,
        limit: r.try_get("limit_name")?,
        count: r.try_get("count")?,
        window_secs: r.try_get("window_secs")?,
        enabled: r.try_get("enabled")?,
        comment: r.try_get("comment")?,
        created_ms: r.try_get("created_ms")?,
    })
}

/// An override row's columns, as read.
struct OverrideColumns {
    scope: String,
    subject: String,
    limit: String,
    count: Option<i64>,
    window_secs: Option<i64>,
    enabled: bool,
    comment: Option<String>,
    created_ms: i64,
}

fn build_override(c: OverrideColumns) -> Result<StoredOverride, StoreError> {
    let bad = |what: &str| StoreError::Corrupt(format!("rate_limit_overrides: unknown {what}"));
    let scope = Scope::parse(&c.scope).ok_or_else(|| bad("scope"))?;
    let limit = LimitName::parse(&c.limit).ok_or_else(|| bad("limit"))?;
    let mut o = Override::for_subject(scope, &c.subject, limit);
    o.count = c.count.map(|n| n.clamp(0, u32::MAX as i64) as u32);
    o.window_secs = c.window_secs.map(|w| w.max(0) as u64);
    o.enabled = c.enabled;
    o.comment = c.comment;
    Ok(StoredOverride {
        rule: o,
        created_ms: c.created_ms,
    })
}

/// An override row read on the hop-free writer (decoded as [`override_row`] does).
fn override_row_direct(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<StoredOverride, StoreError>> {
    Ok(build_override(OverrideColumns {
        scope: r.get(0)?,
        subject: r.get(1)?,
        limit: r.get(2)?,
        count: r.get(3)?,
        window_secs: r.get(4)?,
        enabled: r.get(5)?,
        comment: r.get(6)?,
        created_ms: r.get(7)?,
    }))
}

/// An override kept in the store, with when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOverride {
    /// The override.
    pub rule: Override,
    /// When it was made or last changed, Unix ms.
    pub created_ms: i64,
}

impl Store {
    /// The stored overrides that can apply to `account_id` and `domains`.
    pub async fn limit_overrides_for(
        &self,
        account_id: Option<&str>,
        domains: &[String],
    ) -> Result<Vec<StoredOverride>, StoreError> {
        read_pool!(&self.db, p => overrides_for_on!(p, account_id, domains))
    }

    /// Every stored override, by scope, subject and limit (at most 10 000).
    pub async fn limit_overrides(&self) -> Result<Vec<StoredOverride>, StoreError> {
        read_pool!(&self.db, p => {
            let sql = format!(
                "SELECT {OVERRIDE_COLUMNS} FROM rate_limit_overrides ORDER BY scope, subject, limit_name LIMIT 10000"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(p).await?;
            rows.iter().map(override_row).collect()
        })
    }

    /// The registered domains and name sets `account_id` was issued certificates for after
    /// `since_ms`, with the account's own events per key.
    pub async fn account_issuance(
        &self,
        account_id: &str,
        since_ms: i64,
    ) -> Result<Vec<KeyUsage>, StoreError> {
        read_pool!(&self.db, p => {
            let rows = sqlx::query(
                "SELECT kind, key, COUNT(*) AS n, MIN(at_ms) AS oldest FROM issuance_events \
                 WHERE account_id = $1 AND at_ms > $2 GROUP BY kind, key ORDER BY kind, key LIMIT 1000",
            )
            .bind(account_id)
            .bind(since_ms)
            .fetch_all(p)
            .await?;
            rows.iter().map(|r| Ok(KeyUsage {
                kind: r.try_get("kind")?,
                key: r.try_get("key")?,
                window: Window { count: r.try_get("n")?, oldest_ms: r.try_get("oldest")?, limiting_ms: None },
            })).collect()
        })
    }

    /// The name sets issued under registered domain `domain` after `since_ms` (each name
    /// set event has a domain event of the same certificate: same account and time).
    pub async fn domain_name_sets(
        &self,
        domain: &str,
        since_ms: i64,
    ) -> Result<Vec<KeyUsage>, StoreError> {
        read_pool!(&self.db, p => {
            let rows = sqlx::query(
                "SELECT n.key AS key, COUNT(*) AS n, MIN(n.at_ms) AS oldest FROM issuance_events n \
                 WHERE n.kind = $1 AND n.at_ms > $3 AND EXISTS (SELECT 1 FROM issuance_events d \
                 WHERE d.kind = $2 AND d.key = $4 AND d.account_id = n.account_id AND d.at_ms = n.at_ms) \
                 GROUP BY n.key ORDER BY n.key LIMIT 1000",
            )
            .bind(NAMES)
            .bind(DOMAIN)
            .bind(since_ms)
            .bind(domain)
            .fetch_all(p)
            .await?;
            rows.iter().map(|r| Ok(KeyUsage {
                kind: NAMES.to_owned(),
                key: r.try_get("key")?,
                window: Window { count: r.try_get("n")?, oldest_ms: r.try_get("oldest")?, limiting_ms: None },
            })).collect()
        })
    }

    /// The account's failed validations after `since_ms`, per name.
    pub async fn failed_validations_by_name(
        &self,
        account_id: &str,
        since_ms: i64,
    ) -> Result<Vec<(String, Window)>, StoreError> {
        read_pool!(&self.db, p => {
            let rows = sqlx::query(
                "SELECT identifier_value, COUNT(*) AS n, MIN(updated_ms) AS oldest FROM authzs \
                 WHERE account_id = $1 AND status = 'invalid' AND updated_ms > $2 \
                 GROUP BY identifier_value ORDER BY identifier_value LIMIT 1000",
            )
            .bind(account_id)
            .bind(since_ms)
            .fetch_all(p)
            .await?;
            rows.iter().map(|r| Ok((
                r.try_get("identifier_value")?,
                Window { count: r.try_get("n")?, oldest_ms: r.try_get("oldest")?, limiting_ms: None },
            ))).collect()
        })
    }

    /// One request against the shared GCRA bucket `key` at `now_us`: one statement that
    /// admits it (moving the bucket's theoretical arrival time on by `interval_us`) unless
    /// that time would run more than `tolerance_us` ahead of now. Returns `None` when
    /// admitted, else the microseconds until the next request would be.
    pub async fn take_request_token(
        &self,
        key: &str,
        now_us: i64,
        interval_us: i64,
        tolerance_us: i64,
    ) -> Result<Option<i64>, StoreError> {
        if let Some(g) = self.gate() {
            // Autocommit on the hop-free writer: one statement, no hop, and in turn with
            // this process's other writes instead of meeting them at the file lock.
            let c = g.lock().await?;
            let row = crate::direct::row(
                &c,
                GCRA_SQLITE,
                &[&key, &now_us, &interval_us, &tolerance_us],
                |r| Ok((r.get::<_, bool>(0)?, r.get::<_, i64>(1)?)),
            )?;
            let (allowed, tat) = row.ok_or_else(|| {
                StoreError::Corrupt("request_buckets: the upsert returned no row".into())
            })?;
            return Ok(gcra_answer(allowed, tat, now_us, interval_us, tolerance_us));
        }
        let row = match &self.db {
            crate::Db::Pg(_, conns) => {
                let mut lent = conns.get().await?;
                let r = sqlx::query(GCRA_PG)
                    .bind(key)
                    .bind(now_us)
                    .bind(interval_us)
                    .bind(tolerance_us)
                    .fetch_one(lent.conn())
                    .await?;
                lent.finish();
                (
                    r.try_get::<bool, _>("allowed")?,
                    r.try_get::<i64, _>("tat_us")?,
                )
            }
            crate::Db::Sqlite { writer, .. } => {
                let r = sqlx::query(GCRA_SQLITE)
                    .bind(key)
                    .bind(now_us)
                    .bind(interval_us)
                    .bind(tolerance_us)
                    .fetch_one(writer)
                    .await?;
                (
                    r.try_get::<bool, _>("allowed")?,
                    r.try_get::<i64, _>("tat_us")?,
                )
            }
        };
        Ok(gcra_answer(row.0, row.1, now_us, interval_us, tolerance_us))
    }

    /// Removes issuance events older than `events_before_ms` (outside every window) and
    /// request buckets that have drained by `now_us` (an absent bucket is a full one), in
    /// batches; returns how many of each.
    pub async fn prune_rate_limit_state(
        &self,
        events_before_ms: i64,
        now_us: i64,
        batch: usize,
    ) -> Result<(u64, u64), StoreError> {
        let batch = batch.max(1) as i64;
        let events = self
            .prune_kind(
                &["DELETE FROM issuance_events WHERE id IN \
                   (SELECT id FROM issuance_events WHERE at_ms < $1 ORDER BY at_ms LIMIT $2)"],
                events_before_ms,
                batch,
            )
            .await?;
        let buckets = self
            .prune_kind(
                &["DELETE FROM request_buckets WHERE key IN \
                   (SELECT key FROM request_buckets WHERE tat_us < $1 ORDER BY tat_us LIMIT $2)"],
                now_us,
                batch,
            )
            .await?;
        Ok((events, buckets))
    }
}

/// `None` when admitted; else the microseconds until the next request fits: the bucket is
/// at `tat`, and a request fits once tat + interval - tolerance is reached.
fn gcra_answer(
    allowed: bool,
    tat: i64,
    now_us: i64,
    interval_us: i64,
    tolerance_us: i64,
) -> Option<i64> {
    (!allowed).then(|| (tat + interval_us - tolerance_us - now_us).max(1))
}

/// GCRA in one statement: a new key is admitted; an existing one is admitted when its
/// moved-on arrival time stays within the tolerance, and `allowed` says which happened
/// (every SET expression reads the row's old values).
const GCRA_PG: &str = "INSERT INTO request_buckets (key, tat_us, allowed) VALUES ($1, $2 + $3, TRUE) \
     ON CONFLICT (key) DO UPDATE SET \
     allowed = GREATEST(request_buckets.tat_us, $2) + $3 - $4 <= $2, \
     tat_us = CASE WHEN GREATEST(request_buckets.tat_us, $2) + $3 - $4 <= $2 \
         THEN GREATEST(request_buckets.tat_us, $2) + $3 ELSE request_buckets.tat_us END \
     RETURNING allowed, tat_us";
const GCRA_SQLITE: &str = "INSERT INTO request_buckets (key, tat_us, allowed) VALUES ($1, $2 + $3, 1) \
     ON CONFLICT (key) DO UPDATE SET \
     allowed = MAX(request_buckets.tat_us, $2) + $3 - $4 <= $2, \
     tat_us = CASE WHEN MAX(request_buckets.tat_us, $2) + $3 - $4 <= $2 \
         THEN MAX(request_buckets.tat_us, $2) + $3 ELSE request_buckets.tat_us END \
     RETURNING allowed, tat_us";

impl Tx {
    /// Whether `account_id` was issued a certificate for name set `set` before, in this
    /// transaction.
    pub async fn is_renewal(&mut self, account_id: &str, set: &str) -> Result<bool, StoreError> {
        if let Some(c) = self.direct() {
            let n = crate::direct::row(c, RENEWAL, &[&NAMES, &set, &account_id], |r| {
                r.get::<_, i64>(0)
            })?;
            return Ok(n.unwrap_or(0) > 0);
        }
        on_tx!(self, tx => Ok(renewal_on!(&mut *tx, account_id, set)))
    }

    /// The external account `account_id` is bound to, in this transaction.
    pub async fn external_kid_of(
        &mut self,
        account_id: &str,
    ) -> Result<Option<String>, StoreError> {
        on_tx!(self, tx => Ok(external_kid_on!(&mut *tx, account_id)))
    }

    /// The stored override of `scope`, `subject` and `limit`.
    pub async fn limit_override(
        &mut self,
        scope: Scope,
        subject: &str,
        limit: LimitName,
    ) -> Result<Option<StoredOverride>, StoreError> {
        on_tx!(self, tx => {
            let sql = format!(
                "SELECT {OVERRIDE_COLUMNS} FROM rate_limit_overrides WHERE scope = $1 AND subject = $2 AND limit_name = $3"
            );
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(scope.as_str())
                .bind(subject)
                .bind(limit.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            row.as_ref().map(override_row).transpose()
        })
    }

    /// Makes or replaces the override of `o`'s subject and limit; returns the one it
    /// replaced.
    pub async fn put_limit_override(
        &mut self,
        o: &Override,
        now_ms: i64,
    ) -> Result<Option<StoredOverride>, StoreError> {
        let (scope, subject) = o
            .subject()
            .map_err(|e| StoreError::BadFilter(e.to_string()))?;
        let before = self.limit_override(scope, &subject, o.limit).await?;
        on_tx!(self, tx => {
            sqlx::query(
                "INSERT INTO rate_limit_overrides (scope, subject, limit_name, count, window_secs, enabled, comment, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (scope, subject, limit_name) DO UPDATE SET count = excluded.count, \
                 window_secs = excluded.window_secs, enabled = excluded.enabled, \
                 comment = excluded.comment, created_ms = excluded.created_ms",
            )
            .bind(scope.as_str())
            .bind(&subject)
            .bind(o.limit.as_str())
            .bind(o.count.map(i64::from))
            .bind(o.window_secs.map(|w| w as i64))
            .bind(o.enabled)
            .bind(o.comment.as_deref())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        });
        Ok(before)
    }

    /// Removes an override; returns it, or `None` when there was none.
    pub async fn delete_limit_override(
        &mut self,
        scope: Scope,
        subject: &str,
        limit: LimitName,
    ) -> Result<Option<StoredOverride>, StoreError> {
        let before = self.limit_override(scope, subject, limit).await?;
        on_tx!(self, tx => {
            sqlx::query(
                "DELETE FROM rate_limit_overrides WHERE scope = $1 AND subject = $2 AND limit_name = $3",
            )
            .bind(scope.as_str())
            .bind(subject)
            .bind(limit.as_str())
            .execute(&mut *tx)
            .await?;
        });
        Ok(before)
    }

    /// The stored overrides that can apply to `account_id` and `domains`, in this
    /// transaction.
    pub async fn limit_overrides_for(
        &mut self,
        account_id: Option<&str>,
        domains: &[String],
    ) -> Result<Vec<StoredOverride>, StoreError> {
        if let Some(c) = self.direct() {
            // One statement per subject (few), each on the primary key.
            let by_account = format!(
                "SELECT {OVERRIDE_COLUMNS} FROM rate_limit_overrides \
                 WHERE (scope = 'account' AND subject = $1) \
                 OR (scope = 'external-account' AND subject = \
                     (SELECT external_kid FROM accounts WHERE id = $1))"
            );
            let by_domain = format!(
                "SELECT {OVERRIDE_COLUMNS} FROM rate_limit_overrides WHERE scope = 'domain' AND subject = $1"
            );
            let account = account_id.unwrap_or("");
            let mut out = crate::direct::rows(c, &by_account, &[&account], override_row_direct)?;
            for d in domains {
                out.extend(crate::direct::rows(
                    c,
                    &by_domain,
                    &[d],
                    override_row_direct,
                )?);
            }
            return out.into_iter().collect();
        }
        on_tx!(self, tx => overrides_for_on!(&mut *tx, account_id, domains))
    }
}
