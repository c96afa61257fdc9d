//! SQLite reads without a thread hop, on the writer's own connection (issue 10).
//!
//! sqlx-sqlite runs every statement on a worker thread of its connection and wakes the
//! caller back through a channel; under load that hop cost more than SQLite itself. The hot
//! reads (the account of every request, orders, authorizations, challenges, certificates)
//! run here instead, synchronously on the calling task: a read of a few cached pages takes
//! microseconds, less than one hop.
//!
//! They run on the hop-free writer's connection (direct.rs), taking the write gate for the
//! few microseconds of the read. A separate reader connection would read beside the writer,
//! but in WAL mode SQLite throws a connection's whole page cache away whenever another
//! connection has committed since its last read, and an order commits about ten times: the
//! profile showed a tenth of the server's CPU re-reading pages (`pread`) into reader caches.
//! The writer's cache survives its own commits, so reads on it find their pages in memory.
//! Like the sqlx reader pool these reads see the last committed state. A memory database
//! has no second connection, so it keeps the sqlx path.
//!
//! The gate is not reentrant: a task that holds it (an open [`crate::Store::begin_hot`] or
//! [`crate::Store::begin`] transaction) must read through its `Tx`, never through these
//! `Store` reads, or it waits for itself until the gate's wait runs out.

use crate::StoreError;
use crate::account::Account;
use crate::cert::Certificate;
use crate::order::{Authz, Challenge, Order};
use cobble_core::account::AccountStatus;
use cobble_core::challenge::ChallengeType;
use cobble_core::identifier::Identifier;
use cobble_core::nonce::OpenedNonce;
use cobble_core::status::{AuthzStatus, ChallengeStatus, OrderStatus};
use rusqlite::{Connection, OptionalExtension, Row};

/// The hot reads, on the hop-free writer's connection.
pub(crate) struct Readers {
    gate: crate::direct::Gate,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").finish_non_exhaustive()
    }
}

/// Every statement run here, at trace level under `cobble_store::sql` (sqlx logs its own
/// under `sqlx::query`), so that tests/plans.rs sees what runs.
fn logged(sql: &str) -> &str {
    tracing::trace!(target: "cobble_store::sql", statement = sql);
    sql
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {v:?}"))
}

/// Ends a read transaction when dropped, also when the read failed or panicked: the
/// connection must never stay inside it (the next writer's `BEGIN IMMEDIATE` would fail).
/// A redeeming read that did not reach its `COMMIT` is rolled back with its nonce (the
/// request's error path uses the nonce up on its own).
struct EndRead<'c>(&'c Connection);

impl Drop for EndRead<'_> {
    fn drop(&mut self) {
        let c = self.0;
        if c.is_autocommit() {
            return;
        }
        // Read only, or a redemption that did not commit: nothing to keep.
        let ended = c
            .prepare_cached("ROLLBACK")
            .and_then(|mut st| st.execute([]));
        if ended.is_err()
            && !c.is_autocommit()
            && let Err(e) = c.execute_batch("ROLLBACK")
        {
            tracing::warn!(error = %e, "ending a SQLite read transaction failed");
        }
    }
}

impl Readers {
    /// Reads on the connection behind `gate`.
    pub(crate) fn new(gate: crate::direct::Gate) -> Self {
        Self { gate }
    }

    /// Runs `f` in one read transaction (one snapshot for every statement in it), holding
    /// the write gate for its duration (microseconds: pages are cached and nothing waits).
    /// With `redeem`, the transaction is a write transaction that first redeems that nonce
    /// (RFC 8555 §6.5) and commits once `f` has read: a POST-as-GET's nonce and its read in
    /// one hold of the gate and one transaction, instead of two of each.
    async fn read<T>(
        &self,
        redeem: Option<&OpenedNonce>,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let c = self.gate.lock().await?;
        // BEGIN and its end as cached statements: parsed once per connection, not per read.
        c.prepare_cached(logged(if redeem.is_some() {
            "BEGIN IMMEDIATE"
        } else {
            "BEGIN"
        }))?
        .execute([])?;
        let _end = EndRead(&c);
        let Some(nonce) = redeem else {
            return f(&c);
        };
        crate::nonce::redeem_direct(&c, nonce)?;
        let out = f(&c)?;
        c.prepare_cached(logged("COMMIT"))?.execute([])?;
        Ok(out)
    }

    /// Runs `f`, one statement (which is its own snapshot), holding the write gate for its
    /// duration: no transaction around it. With `redeem`, as [`Self::read`].
    async fn read_one<T>(
        &self,
        redeem: Option<&OpenedNonce>,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if redeem.is_some() {
            return self.read(redeem, f).await;
        }
        let c = self.gate.lock().await?;
        f(&c)
    }

    pub(crate) async fn account(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Option<Account>, StoreError> {
        let sql = format!(
            "SELECT {} FROM accounts WHERE {column} = ?1",
            crate::account::COLUMNS
        );
        self.read_one(None, |c| {
            let mut st = c.prepare_cached(logged(&sql))?;
            st.query_row([value], |r| Ok(account_row(r)))
                .optional()?
                .transpose()
        })
        .await
    }

    pub(crate) async fn order(
        &self,
        id: &str,
        redeem: Option<&OpenedNonce>,
    ) -> Result<Option<Order>, StoreError> {
        let sql = format!(
            "SELECT {} FROM orders WHERE id = ?1",
            crate::order::ORDER_COLS
        );
        self.read(redeem, |c| {
            let Some(order) = c
                .prepare_cached(logged(&sql))?
                .query_row([id], |r| Ok(order_row(r)))
                .optional()?
            else {
                return Ok(None);
            };
            let mut order = order?;
            let mut st = c.prepare_cached(logged(
                "SELECT a.id, a.status, a.expires_ms FROM order_authzs oa JOIN authzs a ON a.id = oa.authz_id \
                 WHERE oa.order_id = ?1 ORDER BY oa.position",
            ))?;
            let mut rows = st.query([id])?;
            while let Some(r) = rows.next()? {
                let status: String = r.get(1)?;
                order.authzs.push((
                    r.get(0)?,
                    AuthzStatus::parse(&status).ok_or_else(|| corrupt("authz status", &status))?,
                    r.get(2)?,
                ));
            }
            Ok(Some(order))
        })
        .await
    }

    /// The authorization `key` names, with its challenges.
    pub(crate) async fn authz(
        &self,
        key: crate::order::AuthzKey<'_>,
        redeem: Option<&OpenedNonce>,
    ) -> Result<Option<Authz>, StoreError> {
        let sql = format!(
            "SELECT {} FROM authzs WHERE {}",
            crate::order::AUTHZ_COLS,
            key.condition("id", "?1")
        );
        let chall = format!(
            "SELECT {} FROM challenges WHERE authz_id = ?1 ORDER BY type",
            crate::order::CHALL_COLS
        );
        self.read(redeem, |c| {
            let Some(a) = c
                .prepare_cached(logged(&sql))?
                .query_row([key.value()], |r| Ok(authz_row(r)))
                .optional()?
            else {
                return Ok(None);
            };
            let mut a = a?;
            let mut st = c.prepare_cached(logged(&chall))?;
            let mut rows = st.query([&a.id])?;
            while let Some(r) = rows.next()? {
                a.challenges.push(challenge_row(r)?);
            }
            a.challenges
                .sort_by_key(|c| ChallengeType::ALL.iter().position(|t| *t == c.kind));
            Ok(Some(a))
        })
        .await
    }

    pub(crate) async fn reusable_authz(
        &self,
        account_id: &str,
        identifier: &Identifier,
        wildcard: bool,
        include_pending: bool,
        now_ms: i64,
    ) -> Result<Option<Authz>, StoreError> {
        let sql = format!(
            "SELECT {} FROM authzs WHERE account_id = ?1 AND identifier_type = ?2 AND identifier_value = ?3 \
             AND wildcard = ?4 AND (status = 'valid' OR (status = 'pending' AND ?5 = 1)) AND expires_ms > ?6 \
             ORDER BY (status = 'valid') DESC, expires_ms DESC LIMIT 1",
            crate::order::AUTHZ_COLS
        );
        self.read_one(None, |c| {
            let row = c
                .prepare_cached(logged(&sql))?
                .query_row(
                    rusqlite::params![
                        account_id,
                        identifier.kind(),
                        identifier.value(),
                        wildcard as i64,
                        include_pending as i64,
                        now_ms
                    ],
                    |r| Ok(authz_row(r)),
                )
                .optional()?;
            row.transpose()
        })
        .await
    }

    pub(crate) async fn certificate(
        &self,
        column: &str,
        value: &str,
        redeem: Option<&OpenedNonce>,
    ) -> Result<Option<Certificate>, StoreError> {
        let sql = format!(
            "SELECT {} FROM certificates WHERE {column} = ?1",
            crate::cert::CERT_COLS
        );
        self.read_one(redeem, |c| {
            c.prepare_cached(logged(&sql))?
                .query_row([value], |r| Ok(cert_row(r)))
                .optional()?
                .transpose()
        })
        .await
    }

    pub(crate) async fn is_key_blocked(&self, spki_sha256: &str) -> Result<bool, StoreError> {
        self.read_one(None, |c| {
            let n: i64 = c
                .prepare_cached(logged(
                    "SELECT COUNT(*) FROM blocked_keys WHERE spki_sha256 = ?1",
                ))?
                .query_row([spki_sha256], |r| r.get(0))?;
            Ok(n > 0)
        })
        .await
    }
}

// Decoders: rows of the same column lists as the sqlx path (crate::account::COLUMNS, ...),
// read by position; a driver error or a value that does not parse is a StoreError.

fn account_row(r: &Row<'_>) -> Result<Account, StoreError> {
    // id, key_thumbprint, jwk, status, contact, tos_agreed, initial_ip, created_ms
    let id: String = r.get(0)?;
    let status: String = r.get(3)?;
    let contact: String = r.get(4)?;
    let (key_thumbprint, jwk, tos, initial_ip, created_ms) = (
        r.get(1)?,
        r.get(2)?,
        r.get::<_, i64>(5)?,
        r.get(6)?,
        r.get(7)?,
    );
    // external_kid, approval, expires_ms (the operator's columns)
    let approval: String = r.get(9)?;
    Ok(Account {
        external_kid: r.get(8)?,
        approval: cobble_core::operator::Approval::parse(&approval)
            .ok_or_else(|| corrupt(&format!("account {id} approval"), &approval))?,
        expires_ms: r.get(10)?,
        status: AccountStatus::parse(&status)
            .ok_or_else(|| corrupt(&format!("account {id} status"), &status))?,
        contact: crate::account::serde_json_contact(&contact)
            .ok_or_else(|| corrupt(&format!("account {id} contact"), &contact))?,
        key_thumbprint,
        jwk,
        tos_agreed: tos != 0,
        initial_ip,
        created_ms,
        id,
    })
}

fn identifiers(text: &str) -> Result<Vec<Identifier>, StoreError> {
    let pairs: Vec<(String, String)> =
        serde_json::from_str(text).map_err(|_| corrupt("identifiers", text))?;
    pairs
        .iter()
        .map(|(k, v)| Identifier::from_wire(k, v).map_err(|_| corrupt("identifier", v)))
        .collect()
}

fn order_row(r: &Row<'_>) -> Result<Order, StoreError> {
    // id, account_id, status, identifiers, not_before_ms, not_after_ms, expires_ms, error,
    // profile, created_ms, certificate_id, replaces
    let status: String = r.get(2)?;
    let ids: String = r.get(3)?;
    let (id, account_id) = (r.get(0)?, r.get(1)?);
    let (not_before_ms, not_after_ms, expires_ms) = (r.get(4)?, r.get(5)?, r.get(6)?);
    let (error, profile, created_ms, certificate_id, replaces) =
        (r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?);
    Ok(Order {
        id,
        account_id,
        stored_status: OrderStatus::parse(&status)
            .ok_or_else(|| corrupt("order status", &status))?,
        identifiers: identifiers(&ids)?,
        not_before_ms,
        not_after_ms,
        expires_ms,
        error,
        profile,
        created_ms,
        certificate_id,
        replaces,
        authzs: Vec::new(),
    })
}

fn authz_row(r: &Row<'_>) -> Result<Authz, StoreError> {
    // id, account_id, identifier_type, identifier_value, wildcard, preauth, status, expires_ms
    let kind: String = r.get(2)?;
    let value: String = r.get(3)?;
    let status: String = r.get(6)?;
    let (id, account_id) = (r.get(0)?, r.get(1)?);
    let (wildcard, preauth, expires_ms) = (r.get::<_, i64>(4)?, r.get::<_, i64>(5)?, r.get(7)?);
    Ok(Authz {
        id,
        account_id,
        identifier: Identifier::from_wire(&kind, &value)
            .map_err(|_| corrupt("identifier", &value))?,
        wildcard: wildcard != 0,
        preauth: preauth != 0,
        status: AuthzStatus::parse(&status).ok_or_else(|| corrupt("authz status", &status))?,
        expires_ms,
        challenges: Vec::new(),
    })
}

fn challenge_row(r: &Row<'_>) -> Result<Challenge, StoreError> {
    // id, authz_id, type, token, status, validated_ms, error, validation_record
    let kind: String = r.get(2)?;
    let status: String = r.get(4)?;
    Ok(Challenge {
        id: r.get(0)?,
        authz_id: r.get(1)?,
        kind: ChallengeType::parse(&kind).ok_or_else(|| corrupt("challenge type", &kind))?,
        token: r.get(3)?,
        status: ChallengeStatus::parse(&status)
            .ok_or_else(|| corrupt("challenge status", &status))?,
        validated_ms: r.get(5)?,
        error: r.get(6)?,
        validation_record: r.get(7)?,
    })
}

fn cert_row(r: &Row<'_>) -> Result<Certificate, StoreError> {
    // id, serial, account_id, order_id, pem, identifiers, spki_sha256, ari_id,
    // not_before_ms, not_after_ms, revoked_ms, revoked_reason, replaced_by
    let ids: String = r.get(5)?;
    let (id, serial, account_id, order_id, pem) =
        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
    let (spki_sha256, ari_id, not_before_ms, not_after_ms) =
        (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?);
    let (revoked_ms, revoked_reason, replaced_by) = (r.get(10)?, r.get(11)?, r.get(12)?);
    Ok(Certificate {
        id,
        serial,
        account_id,
        order_id,
        pem,
        identifiers: identifiers(&ids)?,
        spki_sha256,
        ari_id,
        not_before_ms,
        not_after_ms,
        revoked_ms,
        revoked_reason,
        replaced_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// A read that fails or panics still ends its transaction, with or without a nonce to
    /// redeem: the connection is back in autocommit, nothing of it is kept, and a write
    /// transaction can begin on it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_or_panicking_read_leaves_no_transaction_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        // The hop-free writer opens an existing file (sqlx's writer makes it).
        drop(Connection::open(&path).unwrap());
        let gate =
            crate::direct::open(&path, Duration::from_secs(1), Duration::from_secs(1)).unwrap();
        let readers = Arc::new(Readers::new(gate.clone()));
        gate.lock()
            .await
            .unwrap()
            .execute_batch(
                "CREATE TABLE used_nonces (nonce TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL)",
            )
            .unwrap();
        let nonce = OpenedNonce {
            value: "n1".into(),
            expires_ms: 1,
        };
        for redeem in [None, Some(&nonce)] {
            let failed: Result<(), _> = readers
                .read(redeem, |_| {
                    Err(StoreError::Corrupt("a read that fails".into()))
                })
                .await;
            assert!(failed.is_err());
            assert!(gate.lock().await.unwrap().is_autocommit(), "after an error");
            let r = readers.clone();
            let n = redeem.cloned();
            let panicked = tokio::spawn(async move {
                r.read::<()>(n.as_ref(), |_| panic!("a read that panics"))
                    .await
            })
            .await;
            assert!(panicked.is_err(), "the task panicked");
            let c = gate.lock().await.unwrap();
            assert!(c.is_autocommit(), "after a panic");
            // A redemption whose read failed is rolled back with it.
            let kept: i64 = c
                .query_row("SELECT COUNT(*) FROM used_nonces", [], |r| r.get(0))
                .unwrap();
            assert_eq!(kept, 0);
        }
        // A redeeming read that succeeds commits its nonce; the nonce is then refused.
        assert_eq!(readers.read(Some(&nonce), |_| Ok(7)).await.unwrap(), 7);
        let again = readers.read(Some(&nonce), |_| Ok(7)).await.unwrap_err();
        assert!(matches!(again, StoreError::NonceReused), "{again:?}");
        let c = gate.lock().await.unwrap();
        assert!(c.is_autocommit());
        c.execute_batch("BEGIN IMMEDIATE; CREATE TABLE t (x); COMMIT")
            .unwrap();
    }
}
