//! No hot statement scans a table (issue 10, scale): every statement one whole order makes
//! (tests/common/shapes.rs, the store calls of `cobble serve`'s requests and workers), on a
//! seeded store, is looked at with the engine's planner: SQLite's `EXPLAIN QUERY PLAN` must
//! show no `SCAN` of a table, PostgreSQL's generic plan (with sequential scans switched off,
//! so that an index is used whenever one can be) no `Seq Scan`. The statements are taken
//! from sqlx's own statement log and the store's hop-free SQLite reads (`cobble_store::sql`),
//! so the test sees exactly what runs.

#[path = "common/shapes.rs"]
mod shapes;

use cobble_store::{SeedPlan, Store};
use sqlx::{Connection, Row};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Statements seen while `CAPTURING`, in order (duplicates kept, to count them).
static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
static CAPTURING: AtomicBool = AtomicBool::new(false);
/// How many of them ran on the hop-free SQLite read path.
static HOP_FREE: AtomicUsize = AtomicUsize::new(0);
/// The log is process-wide: one test at a time, seed to check, so that no statement of the
/// other engine's test lands in this one's list.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Capture;

#[derive(Default)]
struct Fields {
    summary: String,
    statement: String,
}

impl Visit for Fields {
    fn record_str(&mut self, f: &Field, v: &str) {
        match f.name() {
            "summary" => self.summary = v.to_owned(),
            "db.statement" | "statement" => self.statement = v.to_owned(),
            _ => {}
        }
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        if matches!(f.name(), "summary" | "db.statement" | "statement") {
            self.record_str(f, format!("{v:?}").trim_matches('"'));
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, e: &tracing::Event<'_>, _: Context<'_, S>) {
        let target = e.metadata().target();
        if !matches!(target, "sqlx::query" | "cobble_store::sql")
            || !CAPTURING.load(Ordering::SeqCst)
        {
            return;
        }
        let mut f = Fields::default();
        e.record(&mut f);
        let sql = if f.statement.trim().is_empty() {
            f.summary
        } else {
            f.statement
        };
        if target == "cobble_store::sql" {
            HOP_FREE.fetch_add(1, Ordering::SeqCst);
        }
        SEEN.lock().unwrap().push(sql.trim().to_owned());
    }
}

fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let sub = tracing_subscriber::registry()
            .with(
                tracing_subscriber::filter::Targets::new()
                    .with_target("sqlx::query", tracing::Level::DEBUG)
                    .with_target("cobble_store::sql", tracing::Level::TRACE),
            )
            .with(Capture);
        tracing::subscriber::set_global_default(sub).expect("one subscriber");
    });
}

/// The highest `$n` or `?n` in `sql`.
fn param_count(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut max = 0;
    for (i, c) in b.iter().enumerate() {
        if *c == b'$' || *c == b'?' {
            let digits: String = sql[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if let Ok(n) = digits.parse::<usize>() {
                max = max.max(n);
            }
        }
    }
    max
}

const TABLES: &[&str] = &[
    "accounts",
    "used_nonces",
    "orders",
    "authzs",
    "order_authzs",
    "challenges",
    "validation_jobs",
    "certificates",
    "blocked_keys",
    "crl_numbers",
    "counters",
    "issuance_jobs",
    "settings",
];

fn is_transaction_control(sql: &str) -> bool {
    let w = sql
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    matches!(
        w.as_str(),
        "BEGIN" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE"
    )
}

/// Runs one order on a seeded store and returns the distinct statements it made.
async fn statements_of_one_order(store: &Store, label: &str) -> BTreeSet<String> {
    let now = 1_900_000_000_000;
    store
        .seed(
            &SeedPlan {
                certificates: 3_000,
                accounts: 30,
                names: 500,
                batch: 1_000,
                now_ms: now,
            },
            |_| {},
        )
        .await
        .unwrap();
    let account = shapes::account(store, &format!("plans-{label}"), now).await;
    install();
    SEEN.lock().unwrap().clear();
    HOP_FREE.store(0, Ordering::SeqCst);
    CAPTURING.store(true, Ordering::SeqCst);
    shapes::one_order(
        store,
        &account,
        "plans.example.com",
        &format!("abc{label}"),
        now,
    )
    .await;
    CAPTURING.store(false, Ordering::SeqCst);
    let seen = std::mem::take(&mut *SEEN.lock().unwrap());
    eprintln!(
        "{label}: {} statements for one order ({} distinct), {} of them hop-free reads",
        seen.len(),
        seen.iter().collect::<BTreeSet<_>>().len(),
        HOP_FREE.load(Ordering::SeqCst)
    );
    assert!(seen.len() > 20, "the statement log was captured: {seen:?}");
    // A simple-protocol query can carry several statements ("BEGIN; INSERT ...").
    seen.iter()
        .flat_map(|s| s.split("; "))
        .filter(|s| !is_transaction_control(s))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_statements_use_indexes_on_sqlite() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("plans.db").display());
    let store = Store::connect(&url, &Default::default()).await.unwrap();
    let stmts = statements_of_one_order(&store, "sqlite").await;
    let mut bad = Vec::new();
    // With statistics (ANALYZE, as an operator might run), and without, as on a database
    // that never had them (the planner then goes by the shape of the indexes alone; the
    // seeding gathers none on SQLite).
    for stats in [true, false] {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        if stats {
            sqlx::raw_sql("ANALYZE").execute(&mut conn).await.unwrap();
            conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        } else {
            // The bundled SQLite keeps histograms too (SQLITE_ENABLE_STAT4): both go.
            sqlx::raw_sql("DELETE FROM sqlite_stat1; DELETE FROM sqlite_stat4")
                .execute(&mut conn)
                .await
                .unwrap();
            // A new connection plans without them.
            conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        }
        check_plans(&mut conn, &stmts, stats, &mut bad).await;
    }
    assert!(
        bad.is_empty(),
        "table scans or account-wide index walks on SQLite:\n{}",
        bad.join("\n")
    );
    store.close().await;
}

/// Collects into `bad` each statement of `stmts` whose plan scans a table or walks an
/// account's authorizations without narrowing on the identifier.
async fn check_plans(
    conn: &mut sqlx::SqliteConnection,
    stmts: &BTreeSet<String>,
    stats: bool,
    bad: &mut Vec<String>,
) {
    for sql in stmts {
        let explain = sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"));
        let mut q = sqlx::query(explain);
        for _ in 0..param_count(sql) {
            q = q.bind(None::<i64>);
        }
        let rows = q.fetch_all(&mut *conn).await.unwrap();
        for r in rows {
            let detail: String = r.try_get("detail").unwrap();
            let scanned = detail
                .strip_prefix("SCAN ")
                .map(|t| t.split_whitespace().next().unwrap_or(""));
            if scanned.is_some_and(|t| TABLES.contains(&t)) {
                bad.push(format!("{detail} (statistics: {stats})\n    in: {sql}"));
            }
            // A lookup of an account's authorizations for one identifier must narrow on the
            // identifier in the index, not walk every authorization of the account (which
            // grows with the account's history).
            if sql.contains("FROM authzs WHERE account_id")
                && sql.contains("identifier_value = ")
                && detail.starts_with("SEARCH authzs")
                && !detail.contains("identifier_value=?")
            {
                bad.push(format!("{detail} (statistics: {stats})\n    in: {sql}"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_statements_use_indexes_on_postgres() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Ok(admin) = std::env::var("COBBLE_TEST_PG_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "COBBLE_TEST_PG_URL is not set: run the tests with scripts/test.sh"
        );
        return;
    };
    let url = cobble_store::testdb::fresh_postgres_database(&admin, "plans")
        .await
        .unwrap();
    let name = url.rsplit_once('/').unwrap().1.to_owned();
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    let store = Store::connect(&url, &Default::default()).await.unwrap();
    let stmts = statements_of_one_order(&store, "postgres").await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    // The generic plan (what a prepared statement runs with any values); sequential scans
    // only where no index can serve the statement.
    sqlx::raw_sql("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut bad = Vec::new();
    for sql in &stmts {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE hot AS {sql}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
        let n = param_count(sql);
        let args = if n == 0 {
            String::new()
        } else {
            format!("({})", vec!["NULL"; n].join(", "))
        };
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("EXPLAIN EXECUTE hot{args}")))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let plan: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>(0).unwrap())
            .collect();
        if plan.iter().any(|l| l.contains("Seq Scan on")) {
            bad.push(format!("{}\n    in: {sql}", plan.join("\n")));
        }
        sqlx::raw_sql("DEALLOCATE hot")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    assert!(
        bad.is_empty(),
        "table scans on PostgreSQL:\n{}",
        bad.join("\n")
    );
    store.close().await;
    conn.close().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut c)
    .await
    .unwrap();
}
