//! Nonce costs: mint and open (pure, no I/O), and redeem (one transaction) on SQLite and,
//! when COBBLE_TEST_PG_URL is set, on PostgreSQL.

use cobble_core::nonce::NonceSealer;
use cobble_store::{Store, StoreOptions};
use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::atomic::{AtomicI64, Ordering};

fn bench(c: &mut Criterion) {
    let sealer = NonceSealer::new(b"bench key", 42, 3_600_000);
    let now = 1_800_000_000_000i64;
    c.bench_function("nonce_mint", |b| b.iter(|| sealer.mint(now)));
    let n = sealer.mint(now);
    c.bench_function("nonce_open", |b| b.iter(|| sealer.open(&n, now).unwrap()));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut engines = vec![(
        "sqlite_file",
        format!("sqlite://{}", dir.path().join("b.db").display()),
    )];
    if let Ok(admin) = std::env::var("COBBLE_TEST_PG_URL") {
        let name = format!("cobble_bench_{}", std::process::id());
        rt.block_on(async {
            let p = sqlx::PgPool::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .execute(&p)
            .await
            .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&p)
                .await
                .unwrap();
        });
        let (prefix, _) = admin.rsplit_once('/').unwrap();
        engines.push(("postgres", format!("{prefix}/{name}")));
    }
    let clock = AtomicI64::new(now);
    for (label, url) in engines {
        let store = rt
            .block_on(Store::connect(&url, &StoreOptions::default()))
            .unwrap();
        c.bench_function(&format!("nonce_mint_open_redeem/{label}"), |b| {
            b.to_async(&rt).iter(|| async {
                let t = clock.fetch_add(1, Ordering::Relaxed);
                let opened = sealer.open(&sealer.mint(t), t).unwrap();
                store.redeem_nonce(&opened).await.unwrap();
            })
        });
        rt.block_on(store.close());
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
