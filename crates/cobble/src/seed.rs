//! `cobble seed`: fills a database with benchmark data (issue 10, scale), so that the load
//! benchmark can compare a store holding a million certificates with an empty one.

use anyhow::Context;
use cobble_core::clock::{Clock, SystemClock};
use cobble_store::{SeedPlan, Store, StoreOptions};
use std::time::Instant;

/// Arguments of `cobble seed`.
#[derive(clap::Args, Debug)]
pub struct SeedArgs {
    /// The database to fill (created and migrated when new): `sqlite://PATH` or `postgres://...`.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Certificates to make, each with its own valid order, authorization and challenge.
    #[arg(long, default_value_t = 1_000_000)]
    certificates: u64,
    /// Accounts the certificates are spread over.
    #[arg(long, default_value_t = 1_000)]
    accounts: u64,
    /// Distinct DNS names (`nN.seed.test`) the certificates are spread over.
    #[arg(long, default_value_t = 100_000)]
    names: u64,
    /// Certificates per transaction.
    #[arg(long, default_value_t = 50_000)]
    batch: u64,
}

/// Runs `cobble seed`.
pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.database_url, &StoreOptions::default())
        .await
        .with_context(|| format!("opening {}", args.database_url))?;
    let now_ms = SystemClock.now_ms();
    let plan = SeedPlan {
        certificates: args.certificates,
        accounts: args.accounts,
        names: args.names,
        batch: args.batch,
        now_ms,
    };
    let started = Instant::now();
    let total = store
        .seed(&plan, |n| {
            eprintln!(
                "{n} certificates ({:.1} s)",
                started.elapsed().as_secs_f64()
            )
        })
        .await?;
    store.close().await;
    println!(
        "seeded {total} certificates over {} accounts and {} names in {:.1} s",
        args.accounts,
        args.names,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
