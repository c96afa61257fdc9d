//! Schema migrations, one set per engine with the same meaning, applied at start in one
//! transaction each. On PostgreSQL an advisory lock makes concurrent starts take turns.

use crate::{Db, StoreError, write_tx};

type Migration = (i64, &'static str, &'static str);

const SQLITE: &[Migration] = &[
    (
        1,
        "accounts_nonces",
        include_str!("../../../migrations/sqlite/0001_accounts_nonces.sql"),
    ),
    (
        2,
        "orders_authz",
        include_str!("../../../migrations/sqlite/0002_orders_authz.sql"),
    ),
    (
        3,
        "certificates",
        include_str!("../../../migrations/sqlite/0003_certificates.sql"),
    ),
    (
        4,
        "durability",
        include_str!("../../../migrations/sqlite/0004_durability.sql"),
    ),
    (
        5,
        "retention",
        include_str!("../../../migrations/sqlite/0005_retention.sql"),
    ),
    (
        6,
        "operators",
        include_str!("../../../migrations/sqlite/0006_operators.sql"),
    ),
    (
        7,
        "rate_limits",
        include_str!("../../../migrations/sqlite/0007_rate_limits.sql"),
    ),
    (
        8,
        "limit_overrides",
        include_str!("../../../migrations/sqlite/0008_limit_overrides.sql"),
    ),
    (
        9,
        "lean_indexes",
        include_str!("../../../migrations/sqlite/0009_lean_indexes.sql"),
    ),
    (
        10,
        "authz_reuse_index",
        include_str!("../../../migrations/sqlite/0010_authz_reuse_index.sql"),
    ),
];

const POSTGRES: &[Migration] = &[
    (
        1,
        "accounts_nonces",
        include_str!("../../../migrations/postgres/0001_accounts_nonces.sql"),
    ),
    (
        2,
        "orders_authz",
        include_str!("../../../migrations/postgres/0002_orders_authz.sql"),
    ),
    (
        3,
        "certificates",
        include_str!("../../../migrations/postgres/0003_certificates.sql"),
    ),
    (
        4,
        "durability",
        include_str!("../../../migrations/postgres/0004_durability.sql"),
    ),
    (
        5,
        "retention",
        include_str!("../../../migrations/postgres/0005_retention.sql"),
    ),
    (
        6,
        "operators",
        include_str!("../../../migrations/postgres/0006_operators.sql"),
    ),
    (
        7,
        "rate_limits",
        include_str!("../../../migrations/postgres/0007_rate_limits.sql"),
    ),
    (
        8,
        "limit_overrides",
        include_str!("../../../migrations/postgres/0008_limit_overrides.sql"),
    ),
    (
        9,
        "lean_indexes",
        include_str!("../../../migrations/postgres/0009_lean_indexes.sql"),
    ),
    (
        10,
        "authz_reuse_index",
        include_str!("../../../migrations/postgres/0010_authz_reuse_index.sql"),
    ),
];

const CREATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)";

pub(crate) async fn run(db: &Db) -> Result<(), StoreError> {
    let set = match db {
        Db::Pg(..) => POSTGRES,
        Db::Sqlite { .. } => SQLITE,
    };
    let known = set.last().map_or(0, |m| m.0);
    write_tx!(db, tx => {
        if matches!(db, Db::Pg(..)) {
            sqlx::query("SELECT pg_advisory_xact_lock(7283541009)").execute(&mut *tx).await?;
        }
        sqlx::query(CREATE_TABLE).execute(&mut *tx).await?;
        let current: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await?;
        if current > known {
            return Err(StoreError::SchemaTooNew { found: current, known });
        }
        for (version, name, sql) in set.iter().filter(|m| m.0 > current) {
            sqlx::raw_sql(*sql)
                .execute(&mut *tx)
                .await
                .map_err(|source| StoreError::Migration { version: *version, name, source })?;
            sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
                .bind(version)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            tracing::info!(version, name, "applied migration");
        }
        tx.commit().await?;
        Ok(())
    })
}

/// Whether every migration this build knows is applied (for readiness checks).
pub(crate) async fn is_current(db: &Db) -> Result<bool, StoreError> {
    let known = match db {
        Db::Pg(..) => POSTGRES.len(),
        Db::Sqlite { .. } => SQLITE.len(),
    } as i64;
    let found: Option<i64> = crate::read_pool!(db, p => {
        Ok::<_, StoreError>(
            sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
                .fetch_one(p)
                .await?,
        )
    })?;
    Ok(found == Some(known))
}
