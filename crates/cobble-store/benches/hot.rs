//! The store's hot request shapes (issue 10): every store call of one whole ACME order as
//! `cobble serve` makes them (tests/common/shapes.rs), per engine: a SQLite file and, when
//! COBBLE_TEST_PG_URL is set, PostgreSQL. Also the three single reads every request or poll
//! makes, to compare designs of the read path.
//!
//! `cargo bench -p cobble-store --bench hot`

#[path = "../tests/common/shapes.rs"]
mod shapes;

use cobble_store::{Store, StoreOptions};
use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::atomic::{AtomicU64, Ordering};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The SQLite file twice: hot reads hop-free (the default), then through sqlx's pool.
    let mut engines = vec![
        (
            "sqlite_file",
            format!("sqlite://{}", dir.path().join("hot.db").display()),
            true,
        ),
        (
            "sqlite_file_sqlx_reads",
            format!("sqlite://{}", dir.path().join("hot2.db").display()),
            false,
        ),
    ];
    if let Ok(admin) = std::env::var("COBBLE_TEST_PG_URL") {
        let name = format!("cobble_bench_hot_{}", std::process::id());
        rt.block_on(async {
            let p = sqlx::PgPool::connect(&admin).await.unwrap();
            for sql in [
                format!("DROP DATABASE IF EXISTS {name}"),
                format!("CREATE DATABASE {name}"),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&p)
                    .await
                    .unwrap();
            }
        });
        let (prefix, _) = admin.rsplit_once('/').unwrap();
        engines.push(("postgres", format!("{prefix}/{name}"), true));
    }
    let now = 1_900_000_000_000i64;
    let n = AtomicU64::new(0);
    for (label, url, hop_free) in engines {
        let opts = StoreOptions {
            sqlite_hop_free_reads: hop_free,
            ..StoreOptions::default()
        };
        let store = rt.block_on(Store::connect(&url, &opts)).unwrap();
        let account = rt.block_on(shapes::account(&store, "bench", now));
        let mut g = c.benchmark_group(format!("hot/{label}"));
        g.sample_size(20);
        g.bench_function("one_order", |b| {
            b.to_async(&rt).iter(|| async {
                let i = n.fetch_add(1, Ordering::Relaxed);
                shapes::one_order(
                    &store,
                    &account,
                    &format!("o{i}.example.com"),
                    &format!("{i:x}"),
                    now,
                )
                .await;
            })
        });
        // Four clients at once, as `cobble load --clients 4`: the writer queue and readers.
        g.bench_function("four_orders_concurrently", |b| {
            b.to_async(&rt).iter(|| async {
                let mut set = Vec::new();
                for _ in 0..4 {
                    let i = n.fetch_add(1, Ordering::Relaxed);
                    let (store, account) = (store.clone(), account.clone());
                    set.push(tokio::spawn(async move {
                        shapes::one_order(
                            &store,
                            &account,
                            &format!("o{i}.example.com"),
                            &format!("{i:x}"),
                            now,
                        )
                        .await;
                    }));
                }
                for h in set {
                    h.await.unwrap();
                }
            })
        });
        g.bench_function("account_read", |b| {
            b.to_async(&rt)
                .iter(|| async { store.account(&account).await.unwrap().unwrap() })
        });
        g.finish();
        rt.block_on(store.close());
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
