//! Bounded growth: housekeeping removes what can no longer matter, in small batches that
//! each hold the writer for a moment only. Used nonces go once they have expired (they can
//! no longer pass the age check). Orders and authorizations go `retention` after they
//! expired, with their challenges and jobs; certificates stay until `retention` after their
//! own expiry, so revocation status stays answerable for them, and keep their order alive.

use crate::{Store, StoreError, on_tx};

/// What one [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Used nonces.
    pub nonces: u64,
    /// Certificates past their expiry plus the retention.
    pub certificates: u64,
    /// Orders past their expiry plus the retention (and with no certificate left).
    pub orders: u64,
    /// Authorizations past their expiry plus the retention, in no remaining order.
    pub authzs: u64,
}

/// The batches one kind of row may take per [`Store::prune`] call, so one call is bounded too.
const MAX_BATCHES: usize = 100;

const ORDER_VICTIMS: &str = "SELECT id FROM orders WHERE expires_ms < $1 \
     AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.order_id = orders.id) \
     ORDER BY expires_ms, id LIMIT $2";
const AUTHZ_VICTIMS: &str = "SELECT id FROM authzs WHERE expires_ms < $1 \
     AND NOT EXISTS (SELECT 1 FROM order_authzs oa WHERE oa.authz_id = authzs.id) \
     ORDER BY expires_ms, id LIMIT $2";

impl Store {
    /// Removes, in transactions of at most `batch` rows each: nonces expired by `now_ms`,
    /// and certificates, orders and authorizations that expired before `now_ms - retention_ms`.
    pub async fn prune(
        &self,
        now_ms: i64,
        retention_ms: i64,
        batch: usize,
    ) -> Result<Pruned, StoreError> {
        let batch = batch.max(1) as i64;
        let cutoff = now_ms.saturating_sub(retention_ms);
        let mut out = Pruned::default();
        // The key is (expires_ms, nonce): a batch is a prefix of it.
        let nonces = ["DELETE FROM used_nonces WHERE (expires_ms, nonce) IN \
             (SELECT expires_ms, nonce FROM used_nonces WHERE expires_ms < $1 ORDER BY expires_ms, nonce LIMIT $2)"];
        out.nonces = self.prune_kind(&nonces, now_ms, batch).await?;
        let certificates = ["DELETE FROM certificates WHERE id IN \
             (SELECT id FROM certificates WHERE not_after_ms < $1 ORDER BY not_after_ms, id LIMIT $2)"];
        out.certificates = self.prune_kind(&certificates, cutoff, batch).await?;
        let orders = [
            format!("DELETE FROM issuance_jobs WHERE order_id IN ({ORDER_VICTIMS})"),
            format!("DELETE FROM order_authzs WHERE order_id IN ({ORDER_VICTIMS})"),
            format!("DELETE FROM orders WHERE id IN ({ORDER_VICTIMS})"),
        ];
        out.orders = self.prune_kind(&orders, cutoff, batch).await?;
        let authzs = [
            format!(
                "DELETE FROM validation_jobs WHERE challenge_id IN \
                 (SELECT id FROM challenges WHERE authz_id IN ({AUTHZ_VICTIMS}))"
            ),
            format!("DELETE FROM challenges WHERE authz_id IN ({AUTHZ_VICTIMS})"),
            format!("DELETE FROM authzs WHERE id IN ({AUTHZ_VICTIMS})"),
        ];
        out.authzs = self.prune_kind(&authzs, cutoff, batch).await?;
        Ok(out)
    }

    /// Runs `statements` (dependents first, the kind's own rows last) as one transaction per
    /// batch until a batch removes fewer than `batch` rows; returns the rows of the last
    /// statement removed.
    pub(crate) async fn prune_kind<S: AsRef<str>>(
        &self,
        statements: &[S],
        cutoff: i64,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        for _ in 0..MAX_BATCHES {
            let mut tx = self.begin().await?;
            let mut removed = 0;
            for sql in statements {
                let sql = sqlx::AssertSqlSafe(sql.as_ref().to_owned());
                removed = on_tx!(tx, c => {
                    sqlx::query(sql)
                        .bind(cutoff)
                        .bind(batch)
                        .execute(&mut *c)
                        .await?
                        .rows_affected()
                });
            }
            tx.commit().await?;
            total += removed;
            if (removed as i64) < batch {
                break;
            }
        }
        Ok(total)
    }
}
