//! Certificates (RFC 8555 §7.4.2), finalization state, revocation (§7.6), blocked keys,
//! CRL numbers.

use crate::nonce::REDEEM_CTE;
use crate::{Store, StoreError, Tx, direct, on_tx, random_id, read_pool};
use cobble_core::identifier::Identifier;
use cobble_core::nonce::OpenedNonce;
use sqlx::Row;

/// A stored certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Random id, the last segment of the certificate URL.
    pub id: String,
    /// Serial number, lowercase hex.
    pub serial: String,
    /// The account it was issued to.
    pub account_id: String,
    /// The order it finalized.
    pub order_id: String,
    /// The leaf, PEM.
    pub pem: String,
    /// Its identifiers.
    pub identifiers: Vec<Identifier>,
    /// SHA-256 of its SubjectPublicKeyInfo, hex.
    pub spki_sha256: String,
    /// RFC 9773 certID.
    pub ari_id: String,
    /// Validity, Unix ms.
    pub not_before_ms: i64,
    /// Validity, Unix ms.
    pub not_after_ms: i64,
    /// When it was revoked.
    pub revoked_ms: Option<i64>,
    /// RFC 5280 reason code.
    pub revoked_reason: Option<i64>,
    /// The order that replaces it (ARI).
    pub replaced_by: Option<String>,
}

/// What finalization stores.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// Serial, lowercase hex.
    pub serial: String,
    /// The leaf, PEM.
    pub pem: String,
    /// SHA-256 of the SPKI, hex.
    pub spki_sha256: String,
    /// RFC 9773 certID.
    pub ari_id: String,
    /// Validity, Unix ms.
    pub not_before_ms: i64,
    /// Validity, Unix ms.
    pub not_after_ms: i64,
}

pub(crate) const CERT_COLS: &str = "id, serial, account_id, order_id, pem, identifiers, spki_sha256, ari_id, not_before_ms, not_after_ms, revoked_ms, revoked_reason, replaced_by";

#[allow(clippy::extra_unused_type_parameters)]
pub(crate) fn cert_from_row<R: Row>(row: &R) -> Result<Certificate, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    let ids: String = row.try_get("identifiers")?;
    let pairs: Vec<(String, String)> = serde_json::from_str(&ids)
        .map_err(|_| StoreError::Corrupt(format!("certificate identifiers {ids:?}")))?;
    Ok(Certificate {
        id: row.try_get("id")?,
        serial: row.try_get("serial")?,
        account_id: row.try_get("account_id")?,
        order_id: row.try_get("order_id")?,
        pem: row.try_get("pem")?,
        identifiers: pairs
            .iter()
            .map(|(k, v)| {
                Identifier::from_wire(k, v)
                    .map_err(|_| StoreError::Corrupt(format!("identifier {v:?}")))
            })
            .collect::<Result<_, _>>()?,
        spki_sha256: row.try_get("spki_sha256")?,
        ari_id: row.try_get("ari_id")?,
        not_before_ms: row.try_get("not_before_ms")?,
        not_after_ms: row.try_get("not_after_ms")?,
        revoked_ms: row.try_get("revoked_ms")?,
        revoked_reason: row.try_get("revoked_reason")?,
        replaced_by: row.try_get("replaced_by")?,
    })
}

impl Store {
    async fn certificate_where(
        &self,
        column: &'static str,
        value: &str,
        redeem: Option<&OpenedNonce>,
    ) -> Result<Option<Certificate>, StoreError> {
        if let Some(r) = self.fast() {
            return r.certificate(column, value, redeem).await;
        }
        let sql = sqlx::AssertSqlSafe(match redeem {
            None => format!("SELECT {CERT_COLS} FROM certificates WHERE {column} = $1"),
            // The redemption in front (one row even when there is no such certificate).
            Some(_) => format!(
                "{REDEEM_CTE} SELECT (SELECT COUNT(*) FROM n) AS redeemed, {CERT_COLS} \
                 FROM (SELECT 1) one LEFT JOIN certificates ON {column} = $1"
            ),
        });
        read_pool!(&self.db, p => {
            let mut q = sqlx::query(sql).bind(value);
            if let Some(n) = redeem {
                q = q.bind(&n.value).bind(n.expires_ms);
            }
            let Some(row) = q.fetch_optional(p).await? else {
                return Ok(None);
            };
            if redeem.is_some() && !crate::nonce::redeemed_and_found(&row)? {
                return Ok(None);
            }
            cert_from_row(&row).map(Some)
        })
    }

    /// A certificate by id.
    pub async fn certificate(&self, id: &str) -> Result<Option<Certificate>, StoreError> {
        self.certificate_where("id", id, None).await
    }

    /// [`Store::certificate`] for a POST-as-GET, with the request's nonce redeemed on the
    /// same trip to the store, as [`Store::order_redeeming`].
    pub async fn certificate_redeeming(
        &self,
        id: &str,
        nonce: &OpenedNonce,
    ) -> Result<Option<Certificate>, StoreError> {
        if !self.redeems_in_read() {
            let cert = self.certificate_where("id", id, None).await?;
            self.redeem_nonce(nonce).await?;
            return Ok(cert);
        }
        self.certificate_where("id", id, Some(nonce)).await
    }

    /// A certificate by serial (lowercase hex).
    pub async fn certificate_by_serial(
        &self,
        serial: &str,
    ) -> Result<Option<Certificate>, StoreError> {
        self.certificate_where("serial", serial, None).await
    }

    /// A certificate by RFC 9773 certID.
    pub async fn certificate_by_ari_id(
        &self,
        ari_id: &str,
    ) -> Result<Option<Certificate>, StoreError> {
        self.certificate_where("ari_id", ari_id, None).await
    }

    /// The revocation generation: it grows with every revocation, in the revocation's own
    /// transaction, so an instance whose CRL was made at an older generation remakes it.
    pub async fn revocation_generation(&self) -> Result<i64, StoreError> {
        read_pool!(&self.db, p => {
            let v: Option<i64> = sqlx::query_scalar("SELECT value FROM counters WHERE name = 'revocation_generation'")
                .fetch_optional(p)
                .await?;
            Ok(v.unwrap_or(0))
        })
    }

    /// Whether a key (SHA-256 of its SPKI, hex) is blocked.
    pub async fn is_key_blocked(&self, spki_sha256: &str) -> Result<bool, StoreError> {
        if let Some(r) = self.fast() {
            return r.is_key_blocked(spki_sha256).await;
        }
        read_pool!(&self.db, p => {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blocked_keys WHERE spki_sha256 = $1").bind(spki_sha256).fetch_one(p).await?;
            Ok(n > 0)
        })
    }

    /// Revoked, unexpired certificates as (serial hex, revoked ms, reason) for the CRL.
    pub async fn revoked_certificates(
        &self,
        now_ms: i64,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        read_pool!(&self.db, p => {
            let rows = sqlx::query(
                "SELECT serial, revoked_ms, revoked_reason FROM certificates WHERE revoked_ms IS NOT NULL AND not_after_ms > $1 ORDER BY revoked_ms",
            )
            .bind(now_ms)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("serial")?, r.try_get("revoked_ms")?, r.try_get::<Option<i64>, _>("revoked_reason")?.unwrap_or(0))))
                .collect()
        })
    }

    /// The identifiers the account holds valid, unexpired authorizations for (RFC 8555 §7.6:
    /// such an account may revoke certificates for them).
    pub async fn authorized_identifiers(
        &self,
        account_id: &str,
        now_ms: i64,
    ) -> Result<Vec<Identifier>, StoreError> {
        read_pool!(&self.db, p => {
            let rows = sqlx::query(
                "SELECT DISTINCT identifier_type, identifier_value FROM authzs WHERE account_id = $1 AND status = 'valid' AND expires_ms > $2",
            )
            .bind(account_id)
            .bind(now_ms)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    let (k, v): (String, String) = (r.try_get("identifier_type")?, r.try_get("identifier_value")?);
                    Identifier::from_wire(&k, &v).map_err(|_| StoreError::Corrupt(format!("identifier {v:?}")))
                })
                .collect()
        })
    }
}

impl Tx {
    /// Moves a ready order to `processing` (RFC 8555 §7.1.6, §7.4), deciding on the state
    /// at this statement, not on an earlier read: the order must be pending and unexpired,
    /// and every one of its authorizations valid and unexpired. False when it is not (an
    /// authorization deactivated or expired meanwhile, or another finalize got there first).
    pub async fn begin_finalize(
        &mut self,
        order_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE orders SET status = 'processing', updated_ms = $2 \
             WHERE id = $1 AND status = 'pending' AND expires_ms > $2 \
             AND NOT EXISTS (SELECT 1 FROM order_authzs oa JOIN authzs a ON a.id = oa.authz_id \
             WHERE oa.order_id = $1 AND (a.status <> 'valid' OR a.expires_ms <= $2))";
        if let Some(c) = self.direct() {
            return Ok(direct::exec(c, SQL, &[&order_id, &now_ms])? == 1);
        }
        on_tx!(self, tx => {
            let n = sqlx::query(SQL)
                .bind(order_id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    /// Stores the certificate, makes its order `valid` and removes the issuance job, in this
    /// transaction, if `worker` still holds the job; `None` (store nothing, drop the
    /// transaction) when another worker took it over.
    pub async fn finish_issuance(
        &mut self,
        order_id: &str,
        worker: &str,
        cert: &NewCertificate,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let id = random_id();
        if let Some(c) = self.pg() {
            return finish_issuance_pg(c, &id, order_id, worker, cert, now_ms).await;
        }
        if !self.release_issuance_job(order_id, worker).await? {
            return Ok(None);
        }
        const ORDER: &str =
            "SELECT account_id, identifiers FROM orders WHERE id = $1 AND status = 'processing'";
        const INSERT: &str = "INSERT INTO certificates (id, serial, account_id, order_id, pem, identifiers, spki_sha256, ari_id, not_before_ms, not_after_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
        const VALID: &str = "UPDATE orders SET status = 'valid', certificate_id = $2, updated_ms = $3 WHERE id = $1";
        if let Some(c) = self.direct() {
            let Some((account_id, identifiers)) = direct::row(c, ORDER, &[&order_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            else {
                return Err(StoreError::Corrupt(format!(
                    "order {order_id} is not processing"
                )));
            };
            direct::exec(
                c,
                INSERT,
                &[
                    &id,
                    &cert.serial,
                    &account_id,
                    &order_id,
                    &cert.pem,
                    &identifiers,
                    &cert.spki_sha256,
                    &cert.ari_id,
                    &cert.not_before_ms,
                    &cert.not_after_ms,
                    &now_ms,
                ],
            )?;
            direct::exec(c, VALID, &[&order_id, &id, &now_ms])?;
            return Ok(Some(id));
        }
        on_tx!(self, tx => {
            let order: Option<(String, String)> = {
                let row = sqlx::query(ORDER)
                    .bind(order_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                match row {
                    Some(r) => Some((r.try_get("account_id")?, r.try_get("identifiers")?)),
                    None => None,
                }
            };
            let Some((account_id, identifiers)) = order else {
                return Err(StoreError::Corrupt(format!("order {order_id} is not processing")));
            };
            sqlx::query(INSERT)
            .bind(&id)
            .bind(&cert.serial)
            .bind(&account_id)
            .bind(order_id)
            .bind(&cert.pem)
            .bind(&identifiers)
            .bind(&cert.spki_sha256)
            .bind(&cert.ari_id)
            .bind(cert.not_before_ms)
            .bind(cert.not_after_ms)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            sqlx::query(VALID)
                .bind(order_id)
                .bind(&id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            Ok(Some(id))
        })
    }

    /// Marks a processing order `invalid` with `problem_json` and removes its issuance job,
    /// if `worker` still holds it (false otherwise: store nothing).
    pub async fn fail_issuance(
        &mut self,
        order_id: &str,
        worker: &str,
        problem_json: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if !self.release_issuance_job(order_id, worker).await? {
            return Ok(false);
        }
        self.fail_order(order_id, problem_json, now_ms).await?;
        Ok(true)
    }

    /// Marks a processing order `invalid` with `problem_json`.
    pub async fn fail_order(
        &mut self,
        order_id: &str,
        problem_json: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE orders SET status = 'invalid', error = $2, updated_ms = $3 WHERE id = $1 AND status = 'processing'";
        if let Some(c) = self.direct() {
            direct::exec(c, SQL, &[&order_id, &problem_json, &now_ms])?;
            return Ok(());
        }
        on_tx!(self, tx => {
            sqlx::query(SQL)
                .bind(order_id)
                .bind(problem_json)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }

    /// The next CRL number for `issuer` (monotonic across instances and restarts).
    pub async fn next_crl_number(&mut self, issuer: &str) -> Result<i64, StoreError> {
        on_tx!(self, tx => {
            let n: i64 = sqlx::query_scalar(
                "INSERT INTO crl_numbers (issuer, number) VALUES ($1, 1) ON CONFLICT (issuer) DO UPDATE SET number = crl_numbers.number + 1 RETURNING number",
            )
            .bind(issuer)
            .fetch_one(&mut *tx)
            .await?;
            Ok(n)
        })
    }
    /// Revokes a certificate (RFC 8555 §7.6) and bumps the revocation generation;
    /// with `block_key` (reason keyCompromise) its key is refused in future CSRs.
    /// Returns false when it was already revoked.
    pub async fn revoke_certificate(
        &mut self,
        id: &str,
        reason: i64,
        block_key: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = on_tx!(self, tx => {
            let row = sqlx::query("UPDATE certificates SET revoked_ms = $2, revoked_reason = $3 WHERE id = $1 AND revoked_ms IS NULL RETURNING spki_sha256")
                .bind(id)
                .bind(now_ms)
                .bind(reason)
                .fetch_optional(&mut *tx)
                .await?;
            let done = match row {
                Some(r) => {
                    if block_key {
                        let spki: String = r.try_get("spki_sha256")?;
                        sqlx::query("INSERT INTO blocked_keys (spki_sha256, reason, created_ms) VALUES ($1, 'keyCompromise', $2) ON CONFLICT DO NOTHING")
                            .bind(spki)
                            .bind(now_ms)
                            .execute(&mut *tx)
                            .await?;
                    }
                    true
                }
                None => false,
            };
            Ok::<_, StoreError>(done)
        })?;
        if done {
            self.bump_revocation_generation().await?;
        }
        Ok(done)
    }

    /// Tells every instance that the revocation set changed (their CRL caches are stale).
    pub(crate) async fn bump_revocation_generation(&mut self) -> Result<(), StoreError> {
        on_tx!(self, tx => {
            sqlx::query(
                "INSERT INTO counters (name, value) VALUES ('revocation_generation', 1) \
                 ON CONFLICT (name) DO UPDATE SET value = counters.value + 1",
            )
            .execute(&mut *tx)
            .await?;
            Ok(())
        })
    }
}

/// [`Tx::finish_issuance`] on PostgreSQL in one round trip instead of four: the job's
/// release, the order's read, the certificate's insert and the order's move to `valid` are
/// data-modifying CTEs of one statement (one snapshot; a failure rolls all of them back with
/// the transaction).
async fn finish_issuance_pg(
    c: &mut sqlx::PgConnection,
    id: &str,
    order_id: &str,
    worker: &str,
    cert: &NewCertificate,
    now_ms: i64,
) -> Result<Option<String>, StoreError> {
    const SQL: &str = "WITH released AS (DELETE FROM issuance_jobs WHERE order_id = $1 AND claimed_by = $2 RETURNING order_id), \
         o AS (SELECT id, account_id, identifiers FROM orders WHERE id IN (SELECT order_id FROM released) AND status = 'processing'), \
         stored AS (INSERT INTO certificates (id, serial, account_id, order_id, pem, identifiers, spki_sha256, ari_id, not_before_ms, not_after_ms, created_ms) \
             SELECT $3, $4, o.account_id, o.id, $5, o.identifiers, $6, $7, $8, $9, $10 FROM o RETURNING id), \
         valid AS (UPDATE orders SET status = 'valid', certificate_id = $3, updated_ms = $10 WHERE id IN (SELECT id FROM o) RETURNING id) \
         SELECT (SELECT COUNT(*) FROM released) AS released, (SELECT COUNT(*) FROM stored) AS stored, (SELECT COUNT(*) FROM valid) AS valid";
    let row = sqlx::query(SQL)
        .bind(order_id)
        .bind(worker)
        .bind(id)
        .bind(&cert.serial)
        .bind(&cert.pem)
        .bind(&cert.spki_sha256)
        .bind(&cert.ari_id)
        .bind(cert.not_before_ms)
        .bind(cert.not_after_ms)
        .bind(now_ms)
        .fetch_one(&mut *c)
        .await?;
    let (released, stored, valid): (i64, i64, i64) = (
        row.try_get("released")?,
        row.try_get("stored")?,
        row.try_get("valid")?,
    );
    if released == 0 {
        return Ok(None);
    }
    if stored != 1 || valid != 1 {
        return Err(StoreError::Corrupt(format!(
            "order {order_id} is not processing"
        )));
    }
    Ok(Some(id.to_owned()))
}
