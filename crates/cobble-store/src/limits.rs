//! Counting rate limits (issue 12): events of issued certificates per registered domain and
//! per name set over sliding windows, pending authorizations and failed validations per
//! account. The authoritative count runs in the transaction that records the new event,
//! after taking the keys' lock rows, so that two instances never both let the last one in.

use crate::{Store, StoreError, Tx, on_tx, read_pool};
use sqlx::Row;

/// What a certificate counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuanceKeys {
    /// Its registered domains (eTLD+1), deduplicated.
    pub domains: Vec<String>,
    /// Its name set (see `cobble_core::ratelimit::name_set_key`).
    pub name_set: String,
}

/// Events in a window: how many, and when the oldest of them happened (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// Events counted.
    pub count: i64,
    /// The oldest counted event, when there is one.
    pub oldest_ms: Option<i64>,
}

const DOMAIN: &str = "domain";
const NAMES: &str = "names";

macro_rules! window_on {
    ($c:expr, $kind:expr, $key:expr, $since:expr) => {{
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(at_ms) AS oldest FROM issuance_events WHERE kind = $1 AND key = $2 AND at_ms > $3",
        )
        .bind($kind)
        .bind($key)
        .bind($since)
        .fetch_one($c)
        .await?;
        Window {
            count: row.try_get("n")?,
            oldest_ms: row.try_get("oldest")?,
        }
    }};
}

impl Store {
    /// Certificates for registered domain `domain` issued after `since_ms` (early check).
    pub async fn domain_window(&self, domain: &str, since_ms: i64) -> Result<Window, StoreError> {
        read_pool!(&self.db, p => Ok(window_on!(p, DOMAIN, domain, since_ms)))
    }

    /// Certificates for name set `set` issued after `since_ms` (early check).
    pub async fn name_set_window(&self, set: &str, since_ms: i64) -> Result<Window, StoreError> {
        read_pool!(&self.db, p => Ok(window_on!(p, NAMES, set, since_ms)))
    }

    /// Whether `account_id` was issued a certificate for name set `set` before (a renewal).
    pub async fn is_renewal(&self, account_id: &str, set: &str) -> Result<bool, StoreError> {
        read_pool!(&self.db, p => {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM issuance_events WHERE kind = $1 AND key = $2 AND account_id = $3")
                .bind(NAMES)
                .bind(set)
                .bind(account_id)
                .fetch_one(p)
                .await?;
            Ok(n > 0)
        })
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

    /// The account's failed validations of `name` after `since_ms` (invalid authorizations).
    pub async fn failed_validations(
        &self,
        account_id: &str,
        name: &str,
        since_ms: i64,
    ) -> Result<Window, StoreError> {
        read_pool!(&self.db, p => {
            let row = sqlx::query("SELECT COUNT(*) AS n, MIN(updated_ms) AS oldest FROM authzs WHERE account_id = $1 AND identifier_value = $2 AND status = 'invalid' AND updated_ms > $3")
                .bind(account_id)
                .bind(name)
                .bind(since_ms)
                .fetch_one(p)
                .await?;
            Ok(Window { count: row.try_get("n")?, oldest_ms: row.try_get("oldest")? })
        })
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
        on_tx!(self, tx => {
            for k in &all {
                sqlx::query("INSERT INTO rate_limit_locks (key) VALUES ($1) ON CONFLICT (key) DO UPDATE SET key = excluded.key")
                    .bind(k)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(())
        })
    }

    /// Certificates for registered domain `domain` after `since_ms`, in this transaction.
    pub async fn domain_window(
        &mut self,
        domain: &str,
        since_ms: i64,
    ) -> Result<Window, StoreError> {
        on_tx!(self, tx => Ok(window_on!(&mut *tx, DOMAIN, domain, since_ms)))
    }

    /// Certificates for name set `set` after `since_ms`, in this transaction.
    pub async fn name_set_window(
        &mut self,
        set: &str,
        since_ms: i64,
    ) -> Result<Window, StoreError> {
        on_tx!(self, tx => Ok(window_on!(&mut *tx, NAMES, set, since_ms)))
    }

    /// Records the events of a certificate issued to `account_id` at `now_ms`.
    pub async fn record_issuance(
        &mut self,
        keys: &IssuanceKeys,
        account_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, tx => {
            let events = keys
                .domains
                .iter()
                .map(|d| (DOMAIN, d.as_str()))
                .chain(std::iter::once((NAMES, keys.name_set.as_str())));
            for (kind, key) in events {
                sqlx::query("INSERT INTO issuance_events (kind, key, account_id, at_ms) VALUES ($1, $2, $3, $4)")
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
