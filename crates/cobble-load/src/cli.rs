//! `cobble load`: the command line over [`crate::run`].

use crate::{Limit, Options};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Drive an ACME server with concurrent clients looping whole orders, and measure it.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The server's directory URL.
    #[arg(long)]
    pub directory: String,
    /// Concurrent clients, each with its own account and one keep-alive HTTP/1.1 connection.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Start orders for this many seconds, then let those under way finish [default: 10].
    #[arg(long, conflicts_with = "orders")]
    pub duration: Option<u64>,
    /// Run this many orders in all, over every client.
    #[arg(long)]
    pub orders: Option<u64>,
    /// Names ordered are `l<random>.<suffix>`; with --challtestsrv they must resolve to it.
    #[arg(long, default_value = "example.com")]
    pub domain_suffix: String,
    /// PEM roots to trust for the server's HTTPS certificate.
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
    /// Accept any HTTPS certificate from the server.
    #[arg(long)]
    pub insecure: bool,
    /// pebble-challtestsrv compatible management API (e.g. http://127.0.0.1:8055): http-01 key
    /// authorizations are published there, for servers whose validation is real.
    #[arg(long)]
    pub challtestsrv: Option<String>,
    /// Wait as Retry-After says between polls and on 429/503 answers (retried up to 3 times).
    #[arg(long)]
    pub honor_retry_after: bool,
    /// Measure this server process (its CPU with its descendants', e.g. a PostgreSQL
    /// postmaster's backends, and its RSS); repeatable.
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,
    /// Stop and report a stall when no order finished for this many seconds (exit code 3).
    #[arg(long, default_value_t = 10)]
    pub stall_secs: u64,
    /// Timeout of each HTTP request, in seconds.
    #[arg(long, default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Pre-generated P-256 certificate keys, used in turn.
    #[arg(long, default_value_t = 256)]
    pub key_pool: usize,
    /// Print only the JSON object (otherwise a summary comes first; the JSON is always the last line).
    #[arg(long)]
    pub json: bool,
}

impl LoadArgs {
    /// The run options.
    pub fn options(&self) -> Options {
        Options {
            clients: self.clients,
            limit: match self.orders {
                Some(n) => Limit::Orders(n),
                None => Limit::Duration(Duration::from_secs(self.duration.unwrap_or(10))),
            },
            domain_suffix: self.domain_suffix.clone(),
            ca_bundle: self.ca_bundle.clone(),
            insecure: self.insecure,
            challtestsrv: self.challtestsrv.clone(),
            honor_retry_after: self.honor_retry_after,
            server_pids: self.server_pids.clone(),
            stall_secs: self.stall_secs,
            request_timeout_secs: self.request_timeout_secs,
            key_pool: self.key_pool,
            ..Options::new(self.directory.clone())
        }
    }
}

/// Runs the load and prints the report. Exit code: 0 every order completed, 1 some failed,
/// 2 the run could not start, 3 the server stalled.
pub async fn main(args: LoadArgs) -> i32 {
    let tty = std::io::stderr().is_terminal();
    let result = crate::run(args.options(), |p| {
        if !tty {
            return;
        }
        let secs = p.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            p.completed as f64 / secs
        } else {
            0.0
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{secs:6.1} s  {} orders  {rate:.1}/s  {} failed",
            p.completed, p.failed
        );
        let _ = err.flush();
    })
    .await;
    if tty {
        eprint!("\r\x1b[2K");
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cobble load: {e}");
            return 2;
        }
    };
    if !args.json {
        print!("{}", report.text());
    }
    println!("{}", report.to_json());
    report.exit_code()
}
