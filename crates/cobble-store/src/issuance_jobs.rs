//! The issuance job queue (RFC 8555 §7.4 finalize): the move to `processing` queues a job in
//! the same transaction, claimed at once by the instance that took the request; if that
//! instance dies (kill -9, SIGTERM, a crash), the lease runs out and a worker in any
//! instance claims the job again. The certificate, the order's `valid` state and the job's
//! removal commit together, and only while the job is still held, so an order gets one
//! certificate, never two.

use crate::{StoreError, Tx, direct, on_tx};
use sqlx::Row;

/// A claimed issuance job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuanceJob {
    /// The order to issue for.
    pub order_id: String,
    /// What finalize checked, for the signer (JSON, the server's own format).
    pub request: String,
    /// How many times it has been claimed (this claim included).
    pub attempts: i64,
}

impl Tx {
    /// Queues the issuance of `order_id`, claimed by `worker` until `now_ms + lease_ms`.
    pub async fn enqueue_issuance(
        &mut self,
        order_id: &str,
        request: &str,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO issuance_jobs (order_id, request, run_after_ms, claimed_by, lease_until_ms, attempts, created_ms) \
             VALUES ($1, $2, $3, $4, $5, 1, $3)";
        if let Some(c) = self.direct() {
            direct::exec(
                c,
                SQL,
                &[&order_id, &request, &now_ms, &worker, &(now_ms + lease_ms)],
            )?;
            return Ok(());
        }
        on_tx!(self, tx => {
            sqlx::query(SQL)
            .bind(order_id)
            .bind(request)
            .bind(now_ms)
            .bind(worker)
            .bind(now_ms + lease_ms)
            .execute(&mut *tx)
            .await?;
            Ok(())
        })
    }

    /// Claims the next issuance job whose lease ran out (or was never taken) for `worker`.
    pub async fn claim_issuance_job(
        &mut self,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<IssuanceJob>, StoreError> {
        let sql = crate::jobs::claim_statement(
            self.engine(),
            "issuance_jobs",
            "order_id",
            "order_id, request, attempts",
        );
        if let Some(c) = self.direct() {
            return direct::row(c, &sql.0, &[&worker, &(now_ms + lease_ms), &now_ms], |r| {
                Ok(IssuanceJob {
                    order_id: r.get("order_id")?,
                    request: r.get("request")?,
                    attempts: r.get("attempts")?,
                })
            });
        }
        on_tx!(self, tx => {
            let row = sqlx::query(sql)
                .bind(worker)
                .bind(now_ms + lease_ms)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?;
            match row {
                Some(r) => Ok(Some(IssuanceJob {
                    order_id: r.try_get("order_id")?,
                    request: r.try_get("request")?,
                    attempts: r.try_get("attempts")?,
                })),
                None => Ok(None),
            }
        })
    }

    /// Removes `worker`'s job for `order_id`; false when the job is no longer `worker`'s
    /// (its lease ran out and another worker took it, or it is done): the caller must then
    /// drop this transaction and store nothing.
    pub(crate) async fn release_issuance_job(
        &mut self,
        order_id: &str,
        worker: &str,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM issuance_jobs WHERE order_id = $1 AND claimed_by = $2";
        if let Some(c) = self.direct() {
            return Ok(direct::exec(c, SQL, &[&order_id, &worker])? == 1);
        }
        on_tx!(self, tx => {
            let n = sqlx::query(SQL)
                .bind(order_id)
                .bind(worker)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }
}

impl crate::Store {
    /// A finalize request's whole change, as one transaction: `nonce` redeemed
    /// ([`StoreError::NonceReused`] when it was used), [`Tx::begin_finalize`] and, when the
    /// order moved, [`Tx::enqueue_issuance`]. False (nothing but the nonce changed) when the
    /// order was no longer ready. On PostgreSQL one statement with the three as CTEs (one
    /// round trip instead of four); elsewhere a hot transaction.
    pub async fn finalize_redeeming(
        &self,
        nonce: &cobble_core::nonce::OpenedNonce,
        order_id: &str,
        request: &str,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let crate::Db::Pg(_, conns) = &self.db else {
            let mut tx = self.begin_hot_redeeming(nonce).await?;
            let moved = tx.begin_finalize(order_id, now_ms).await?;
            if moved {
                tx.enqueue_issuance(order_id, request, worker, now_ms, lease_ms)
                    .await?;
            }
            tx.commit().await?;
            return Ok(moved);
        };
        // As Tx::begin_finalize and Tx::enqueue_issuance, on the nonce's redemption.
        const SQL: &str = "WITH n AS (INSERT INTO used_nonces (nonce, expires_ms) VALUES ($6, $7) ON CONFLICT DO NOTHING RETURNING 1), \
             f AS (UPDATE orders SET status = 'processing', updated_ms = $2 \
                 WHERE id = $1 AND status = 'pending' AND expires_ms > $2 AND EXISTS (SELECT 1 FROM n) \
                 AND NOT EXISTS (SELECT 1 FROM order_authzs oa JOIN authzs a ON a.id = oa.authz_id \
                 WHERE oa.order_id = $1 AND (a.status <> 'valid' OR a.expires_ms <= $2)) RETURNING id), \
             j AS (INSERT INTO issuance_jobs (order_id, request, run_after_ms, claimed_by, lease_until_ms, attempts, created_ms) \
                 SELECT id, $3, $2, $4, $5, 1, $2 FROM f RETURNING 1) \
             SELECT (SELECT COUNT(*) FROM n) AS redeemed, (SELECT COUNT(*) FROM j) AS queued";
        conns
            .with(async |c| {
                let row = sqlx::query(SQL)
                    .bind(order_id)
                    .bind(now_ms)
                    .bind(request)
                    .bind(worker)
                    .bind(now_ms + lease_ms)
                    .bind(&nonce.value)
                    .bind(nonce.expires_ms)
                    .fetch_one(c)
                    .await?;
                crate::nonce::redeemed(&row)?;
                Ok(row.try_get::<i64, _>("queued")? == 1)
            })
            .await
    }

    /// How many issuance jobs are queued or running (for tests and metrics).
    pub async fn issuance_jobs_pending(&self) -> Result<i64, StoreError> {
        crate::read_pool!(&self.db, p => Ok(sqlx::query_scalar("SELECT COUNT(*) FROM issuance_jobs").fetch_one(p).await?))
    }

    /// How many certificates an order has (one at most: the schema enforces it).
    pub async fn certificates_of_order(&self, order_id: &str) -> Result<i64, StoreError> {
        crate::read_pool!(&self.db, p => Ok(sqlx::query_scalar("SELECT COUNT(*) FROM certificates WHERE order_id = $1").bind(order_id).fetch_one(p).await?))
    }
}
