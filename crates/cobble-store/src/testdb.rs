//! Throwaway PostgreSQL databases for the test suites of this crate and of the server.
//!
//! Every test on PostgreSQL gets a database of its own (about 8 MB each, most of it the
//! system catalogue copied from the template). A full run makes hundreds of them, so they
//! must not pile up on the disk: each name carries the id of the process that made it
//! (`cobble_<kind>_p<pid>_<random>`), and the first database a process asks for first drops
//! every such database whose process has ended. A test binary's databases therefore live
//! until the next binary starts, and a developer's parallel test runs never drop each
//! other's.

use sqlx::Connection;
use std::sync::atomic::{AtomicBool, Ordering};

static REAPED: AtomicBool = AtomicBool::new(false);

/// Creates a fresh database on the server of `admin_url` (a URL whose database may run
/// `CREATE DATABASE`) and returns its URL (`admin_url` with the database replaced, its
/// query kept). `kind` names the suite in the database's name (lowercase letters).
pub async fn fresh_postgres_database(admin_url: &str, kind: &str) -> Result<String, sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    if !REAPED.swap(true, Ordering::SeqCst) {
        reap_ended(&mut conn).await?;
    }
    let name = format!(
        "cobble_{kind}_p{}_{}",
        std::process::id(),
        crate::random_id().to_lowercase().replace(['-', '_'], "")
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let (rest, query) = match admin_url.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let (prefix, _) = rest
        .rsplit_once('/')
        .ok_or_else(|| sqlx::Error::Configuration("the admin URL has no database path".into()))?;
    Ok(format!("{prefix}/{name}{query}"))
}

/// Drops the test databases whose making process no longer runs.
async fn reap_ended(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'cobble\\_%'")
            .fetch_all(&mut *conn)
            .await?;
    for name in names {
        let Some(pid) = maker_pid(&name) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // Another binary reaping at the same moment may have dropped it first.
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut *conn)
        .await
        {
            tracing::debug!(%name, error = %e, "could not drop an ended test's database");
        }
    }
    Ok(())
}

/// The process id in a name made by [`fresh_postgres_database`].
fn maker_pid(name: &str) -> Option<u32> {
    let mut parts = name.split('_');
    if parts.next() != Some("cobble") {
        return None;
    }
    parts.next()?;
    let pid = parts.next()?.strip_prefix('p')?.parse().ok()?;
    let random = parts.next()?;
    (parts.next().is_none() && !random.is_empty()).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::maker_pid;

    #[test]
    fn only_names_this_module_makes_carry_a_pid() {
        assert_eq!(maker_pid("cobble_t_p4242_abc123"), Some(4242));
        assert_eq!(maker_pid("cobble_t_abc123"), None);
        assert_eq!(maker_pid("cobble_t_p12x_abc"), None);
        assert_eq!(maker_pid("cobble_t_p12_"), None);
        assert_eq!(maker_pid("cobble_t_p12_a_b"), None);
        assert_eq!(maker_pid("other_t_p12_abc"), None);
        assert_eq!(maker_pid("postgres"), None);
    }
}
