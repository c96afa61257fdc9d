//! Bulk test data for benchmarks (issue 10, scale): accounts, and per certificate one valid
//! order with one valid authorization (and its challenge), generated inside the database by
//! `INSERT ... SELECT` over a number series, in batches of one transaction each, so that a
//! million certificates take minutes, not hours. Seeded rows have ids starting with `seed-`
//! and dates around `now_ms` that housekeeping leaves alone (nothing expires for a week).

use crate::{Engine, Store, StoreError, on_tx};

/// What [`Store::seed`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedPlan {
    /// Certificates, each with its own valid order, authorization and challenge.
    pub certificates: u64,
    /// Accounts the certificates are spread over (round robin).
    pub accounts: u64,
    /// Distinct DNS names the certificates are spread over (round robin).
    pub names: u64,
    /// Certificates per transaction.
    pub batch: u64,
    /// Now, Unix ms: orders expire a week after it, certificates 90 days after.
    pub now_ms: i64,
}

/// A placeholder leaf of a realistic size (a P-256 leaf with a few extensions is ~800 bytes
/// of PEM), so that tables and pages hold as many rows as real ones would.
const PEM: &str = concat!(
    "-----BEGIN CERTIFICATE-----\n",
    "U0VFREVEIENFUlRJRklDQVRFIChub3QgYSByZWFsIG9uZSk6IGNvYmJsZSBzZWVkIGRhdGEgZm9yIGJlbmNo\n",
    "U0VFREVEIENFUlRJRklDQVRFIChub3QgYSByZWFsIG9uZSk6IGNvYmJsZSBzZWVkIGRhdGEgZm9yIGJlbmNo\n",
    "U0VFREVEIENFUlRJRklDQVRFIChub3QgYSByZWFsIG9uZSk6IGNvYmJsZSBzZWVkIGRhdGEgZm9yIGJlbmNo\n",
    "U0VFREVEIENFUlRJRklDQVRFIChub3QgYSByZWFsIG9uZSk6IGNvYmJsZSBzZWVkIGRhdGEgZm9yIGJlbmNo\n",
    "U0VFREVEIENFUlRJRklDQVRFIChub3QgYSByZWFsIG9uZSk6IGNvYmJsZSBzZWVkIGRhdGEgZm9yIGJlbmNo\n",
    "U0VFREVEIENFUlRJRklDQVRFIChub3QgYSByZWFsIG9uZSk6IGNvYmJsZSBzZWVkIGRhdGEgZm9yIGJlbmNo\n",
    "U0VFREVEIENFUlRJRklDQVRFIChub3QgYSByZWFsIG9uZSk6IGNvYmJsZSBzZWVkIGRhdGEgZm9yIGJlbmNo\n",
    "U0VFREVEIENFUlRJRklDQVRFIChub3QgYSByZWFsIG9uZSk6IGNvYmJsZSBzZWVkIGRhdGEgZm9yIGJlbmNo\n",
    "-----END CERTIFICATE-----\n",
);

/// The rows of one batch: `$1` first index, `$2` end index (exclusive), `$3` now, `$4`
/// accounts, `$5` names, `$6` the PEM. `{gen}` is replaced by the engine's number series,
/// which yields `i`.
const BATCH: &[&str] = &[
    "INSERT INTO orders (id, account_id, status, identifiers, expires_ms, profile, created_ms, updated_ms, certificate_id) \
     SELECT 'seed-o-' || CAST(i AS TEXT), 'seed-a-' || CAST(i % $4 AS TEXT), 'valid', \
     '[[\"dns\",\"n' || CAST(i % $5 AS TEXT) || '.seed.test\"]]', $3 + 604800000, NULL, $3 - (i % 604800000), $3, \
     'seed-x-' || CAST(i AS TEXT) FROM {gen} WHERE $6 <> ''",
    "INSERT INTO authzs (id, account_id, identifier_type, identifier_value, wildcard, preauth, status, expires_ms, created_ms, updated_ms) \
     SELECT 'seed-z-' || CAST(i AS TEXT), 'seed-a-' || CAST(i % $4 AS TEXT), 'dns', \
     'n' || CAST(i % $5 AS TEXT) || '.seed.test', 0, 0, 'valid', $3 + 604800000 + (i % 86400000), $3 - (i % 604800000), $3 \
     FROM {gen} WHERE $6 <> ''",
    "INSERT INTO order_authzs (order_id, authz_id, position) \
     SELECT 'seed-o-' || CAST(i AS TEXT), 'seed-z-' || CAST(i AS TEXT), 0 FROM {gen} WHERE $3 + $4 + $5 > 0 AND $6 <> ''",
    "INSERT INTO challenges (id, authz_id, type, token, status, validated_ms) \
     SELECT 'seed-c-' || CAST(i AS TEXT), 'seed-z-' || CAST(i AS TEXT), 'http-01', 'seed-t-' || CAST(i AS TEXT), 'valid', $3 \
     FROM {gen} WHERE $4 + $5 > 0 AND $6 <> ''",
    "INSERT INTO certificates (id, serial, account_id, order_id, pem, identifiers, spki_sha256, ari_id, not_before_ms, not_after_ms, created_ms) \
     SELECT 'seed-x-' || CAST(i AS TEXT), '5eed' || CAST(i AS TEXT), 'seed-a-' || CAST(i % $4 AS TEXT), 'seed-o-' || CAST(i AS TEXT), $6, \
     '[[\"dns\",\"n' || CAST(i % $5 AS TEXT) || '.seed.test\"]]', 'seed-k-' || CAST(i AS TEXT), 'seed.' || CAST(i AS TEXT), \
     $3 - (i % 604800000), $3 + 7776000000, $3 FROM {gen}",
];

fn series(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => "generate_series($1::BIGINT, $2::BIGINT - 1) AS n(i)",
        Engine::Sqlite => {
            "(WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $2) SELECT i FROM n) AS s"
        }
    }
}

impl Store {
    /// Fills the store with `plan`'s accounts and certificates (with their orders,
    /// authorizations and challenges), one transaction per `plan.batch` certificates, calling
    /// `progress` with the certificates made so far after each. Refreshes the planner's
    /// statistics at the end. Runs on an empty store or one seeded with fewer certificates
    /// (it continues from the number already there).
    pub async fn seed(
        &self,
        plan: &SeedPlan,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, StoreError> {
        let accounts = plan.accounts.max(1) as i64;
        let names = plan.names.max(1) as i64;
        let batch = plan.batch.max(1) as i64;
        let engine = self.engine();
        let done: i64 = crate::read_pool!(&self.db, p => {
            Ok::<_, StoreError>(
                sqlx::query_scalar("SELECT COUNT(*) FROM certificates WHERE id LIKE 'seed-x-%'")
                    .fetch_one(p)
                    .await?,
            )
        })?;
        let mut tx = self.begin().await?;
        // `WHERE true`: SQLite needs a WHERE before an upsert clause in INSERT ... SELECT.
        let sql = sqlx::AssertSqlSafe(
            "INSERT INTO accounts (id, key_thumbprint, jwk, status, contact, tos_agreed, initial_ip, created_ms, updated_ms) \
             SELECT 'seed-a-' || CAST(i AS TEXT), 'seed-t-' || CAST(i AS TEXT), '{}', 'valid', '[]', 1, '127.0.0.1', $3, $3 \
             FROM {gen} WHERE true ON CONFLICT DO NOTHING"
                .replace("{gen}", series(engine)),
        );
        on_tx!(tx, c => {
            sqlx::query(sql).bind(0i64).bind(accounts).bind(plan.now_ms).execute(&mut *c).await?;
        });
        tx.commit().await?;
        let total = plan.certificates as i64;
        let mut start = done;
        while start < total {
            let end = (start + batch).min(total);
            let mut tx = self.begin().await?;
            for stmt in BATCH {
                let sql = sqlx::AssertSqlSafe(stmt.replace("{gen}", series(engine)));
                on_tx!(tx, c => {
                    sqlx::query(sql)
                        .bind(start)
                        .bind(end)
                        .bind(plan.now_ms)
                        .bind(accounts)
                        .bind(names)
                        .bind(PEM)
                        .execute(&mut *c)
                        .await?;
                });
            }
            tx.commit().await?;
            start = end;
            progress(end as u64);
        }
        // PostgreSQL: fresh planner statistics, as autovacuum gathers them on a long-lived
        // database. SQLite: none, as nothing in Cobble analyzes its file. The bundled SQLite
        // keeps STAT4 histograms, and with them it plans a statement again on every run whose
        // bound values might change its plan: a seeded and analyzed file cost ~20 % more CPU
        // per order than one never analyzed (bench/README.md).
        if self.engine() == crate::Engine::Postgres {
            let mut tx = self.begin().await?;
            on_tx!(tx, c => { sqlx::query("ANALYZE").execute(&mut *c).await?; });
            tx.commit().await?;
        }
        Ok(total.max(done) as u64)
    }
}
