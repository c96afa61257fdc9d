//! Nonce state: the shared sealing key and the used-nonce table (RFC 8555 §6.5).

use crate::{Store, StoreError, read_pool, write_tx};
use cobble_core::nonce::OpenedNonce;

/// Inserts a nonce into the used-nonce table; a nonce seen before is refused.
const SQL: &str =
    "INSERT INTO used_nonces (nonce, expires_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// [`SQL`] as a PostgreSQL CTE named `n` (one row when the nonce was new, none when it was
/// used), with the nonce in `$2` and its expiry in `$3`: a POST-as-GET puts it in front of
/// its read, so that the read and the redemption take one statement.
pub(crate) const REDEEM_CTE: &str = "WITH n AS (INSERT INTO used_nonces (nonce, expires_ms) VALUES ($2, $3) ON CONFLICT DO NOTHING RETURNING 1)";

/// Reads the first row of a read with [`REDEEM_CTE`] in front: [`StoreError::NonceReused`]
/// when the nonce was used before, else whether the object was found (its `id` not NULL;
/// the read joins it onto a one-row table, so a row comes back either way).
pub(crate) fn redeemed_and_found<R: sqlx::Row>(row: &R) -> Result<bool, StoreError>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    redeemed(row)?;
    Ok(row.try_get::<Option<String>, _>("id")?.is_some())
}

/// [`StoreError::NonceReused`] unless the row's `redeemed` count (of a statement that
/// redeems its nonce in a CTE named `n`) is 1.
pub(crate) fn redeemed<R: sqlx::Row>(row: &R) -> Result<(), StoreError>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    if row.try_get::<i64, _>("redeemed")? == 0 {
        return Err(StoreError::NonceReused);
    }
    Ok(())
}

/// [`SQL`] on the hop-free SQLite writer (direct.rs), in its open transaction or on its own.
pub(crate) fn redeem_direct(
    c: &rusqlite::Connection,
    nonce: &OpenedNonce,
) -> Result<(), StoreError> {
    if crate::direct::exec(c, SQL, &[&nonce.value, &nonce.expires_ms])? == 0 {
        return Err(StoreError::NonceReused);
    }
    Ok(())
}

/// Whether `value` may go into SQL text as a quoted literal: non-empty plain base64url, as
/// every nonce this CA mints (no quote, backslash or other character SQL treats specially).
pub(crate) fn is_literal_safe(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Store {
    /// The nonce sealing key shared by every instance on this database; made on first use.
    pub async fn nonce_key(&self) -> Result<Vec<u8>, StoreError> {
        let mut fresh = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut fresh)
            .expect("the system RNG works");
        let value: String = write_tx!(&self.db, tx => {
            sqlx::query("INSERT INTO settings (name, value) VALUES ('nonce_key', $1) ON CONFLICT DO NOTHING")
                .bind(cobble_core::b64::encode(fresh))
                .execute(&mut *tx)
                .await?;
            let v: String = sqlx::query_scalar("SELECT value FROM settings WHERE name = 'nonce_key'")
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            v
        });
        cobble_core::b64::decode(&value)
            .map_err(|_| StoreError::Corrupt("settings.nonce_key".into()))
    }

    /// Redeems a nonce on its own, for requests that change nothing else (POST-as-GET).
    /// One statement is its own transaction: no `BEGIN`/`COMMIT` round trips.
    pub async fn redeem_nonce(&self, nonce: &OpenedNonce) -> Result<(), StoreError> {
        if let Some(g) = self.gate() {
            // Autocommit on the hop-free writer: one statement, no hop.
            let c = g.lock().await?;
            return redeem_direct(&c, nonce);
        }
        let (value, expires) = (&nonce.value, nonce.expires_ms);
        let done = match &self.db {
            crate::Db::Pg(_, conns) => {
                let mut lent = conns.get().await?;
                let done = sqlx::query(SQL)
                    .bind(value)
                    .bind(expires)
                    .execute(lent.conn())
                    .await?
                    .rows_affected();
                lent.finish();
                done
            }
            crate::Db::Sqlite { writer, .. } => sqlx::query(SQL)
                .bind(value)
                .bind(expires)
                .execute(writer)
                .await?
                .rows_affected(),
        };
        if done == 0 {
            return Err(StoreError::NonceReused);
        }
        Ok(())
    }

    /// How many used nonces are remembered (for tests and metrics).
    pub async fn used_nonce_count(&self) -> Result<i64, StoreError> {
        read_pool!(&self.db, p => Ok(sqlx::query_scalar("SELECT COUNT(*) FROM used_nonces").fetch_one(p).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::is_literal_safe;

    #[test]
    fn only_plain_base64url_goes_into_sql_text() {
        assert!(is_literal_safe("AbC-_09"));
        for bad in [
            "",
            "a'b",
            "a\\b",
            "a b",
            "a;b",
            "é",
            "a\0b",
            &"a".repeat(257),
        ] {
            assert!(!is_literal_safe(bad), "{bad:?}");
        }
    }
}
