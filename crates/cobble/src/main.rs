//! `cobble`: the ACME server and test CA's one binary.
#![forbid(unsafe_code)]

mod admin;
mod challtestsrv;
mod knobs;
mod pebble;
mod seed;
mod serve;

use clap::{Parser, Subcommand};

/// Cobble, an ACME (RFC 8555) server and test CA.
#[derive(Parser)]
#[command(name = "cobble", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the ACME server (SQLite in the data directory unless told otherwise).
    Serve(Box<serve::ServeArgs>),
    /// Run the challenge test server (mock DNS and DoH, http-01 and https-01, tls-alpn-01), pebble-challtestsrv compatible.
    Challtestsrv(Box<challtestsrv::ChalltestsrvArgs>),
    /// Operator commands over the admin API (external accounts, approvals, revocations).
    Admin(Box<admin::AdminArgs>),
    /// Judge any ACME server against RFC 8555 and its companions (the conformance suite).
    Conformance(Box<cobble_conformance::cli::ConformanceArgs>),
    /// Drive any ACME server with concurrent clients looping whole orders, and measure it.
    Load(Box<cobble_load::cli::LoadArgs>),
    /// Fill a database with benchmark data (a million certificates by default, with their
    /// orders and authorizations), to measure a large store against an empty one.
    Seed(seed::SeedArgs),
}

fn main() -> anyhow::Result<()> {
    // Started as `pebble` or `pebble-challtestsrv` (a symlink): Pebble's own flags.
    let mut argv = std::env::args_os();
    if let Some(who) = argv
        .next()
        .as_deref()
        .and_then(pebble::Personality::from_argv0)
    {
        std::process::exit(pebble::main(who, argv.collect()));
    }
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(*args)),
        Command::Challtestsrv(args) => runtime.block_on(challtestsrv::run(*args)),
        Command::Admin(args) => runtime.block_on(admin::run(*args)),
        Command::Conformance(args) => {
            std::process::exit(runtime.block_on(cobble_conformance::cli::main(*args)))
        }
        Command::Load(args) => std::process::exit(runtime.block_on(cobble_load::cli::main(*args))),
        Command::Seed(args) => runtime.block_on(seed::run(args)),
    }
}
