//! `cobble conformance`: the command line over [`crate::run`].

use crate::report;
use crate::{Options, Report};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Judge an ACME server against RFC 8555 and its companions.
#[derive(Debug, clap::Args)]
pub struct ConformanceArgs {
    /// The server's directory URL.
    #[arg(long)]
    pub directory: String,
    /// PEM roots to trust for the server's HTTPS certificate.
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
    /// Accept any HTTPS certificate from the server.
    #[arg(long)]
    pub insecure: bool,
    /// External Account Binding key id, for servers that require EAB.
    #[arg(long, requires = "eab_hmac_key")]
    pub eab_kid: Option<String>,
    /// External Account Binding MAC key (base64url).
    #[arg(long, requires = "eab_kid")]
    pub eab_hmac_key: Option<String>,
    /// A command printing a fresh `KID HMAC-KEY` pair per account (run by `sh -c` for each
    /// account), for servers whose EAB keys bind one account each.
    #[arg(long, value_name = "CMD", conflicts_with_all = ["eab_kid", "eab_hmac_key"])]
    pub eab_cmd: Option<String>,
    /// Answer http-01 challenges from the suite's own responder on this port (the server must
    /// validate at this port of this machine) instead of through --challtestsrv.
    #[arg(long, value_name = "PORT")]
    pub http01_port: Option<u16>,
    /// URL of the PEM root the chains lead to (e.g. the management `/roots/0` of Pebble or
    /// Cobble); without it, cert.chain-to-root is skipped.
    #[arg(long, value_name = "URL")]
    pub roots_url: Option<String>,
    /// pebble-challtestsrv compatible management API (e.g. http://127.0.0.1:8055); without it,
    /// checks that need a validated challenge are skipped.
    #[arg(long)]
    pub challtestsrv: Option<String>,
    /// Suffix of the names ordered; they must resolve to the challenge test server.
    #[arg(long, default_value = "example.com")]
    pub domain_suffix: String,
    /// Run only these checks: ids, id prefixes (`nonce`) or sections (`7.3`); repeatable.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Leave out these checks (same forms as --only); repeatable.
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// The server's nonce lifetime in seconds: nonce.expired leaves a nonce unused that long
    /// (plus one second) and expects badNonce; without it, that check is skipped.
    #[arg(long, value_name = "SECS")]
    pub nonce_wait: Option<u64>,
    /// Timeout of each HTTP request, in seconds.
    #[arg(long, default_value_t = 15)]
    pub request_timeout_secs: u64,
}

impl ConformanceArgs {
    /// The run options.
    pub fn options(&self) -> Options {
        Options {
            ca_bundle: self.ca_bundle.clone(),
            insecure: self.insecure,
            eab_kid: self.eab_kid.clone(),
            eab_hmac_key: self.eab_hmac_key.clone(),
            eab_cmd: self.eab_cmd.clone(),
            http01_port: self.http01_port,
            roots_url: self.roots_url.clone(),
            challtestsrv: self.challtestsrv.clone(),
            domain_suffix: self.domain_suffix.clone(),
            only: self.only.clone(),
            skip: self.skip.clone(),
            nonce_wait_secs: self.nonce_wait,
            request_timeout_secs: self.request_timeout_secs,
            ..Options::new(self.directory.clone())
        }
    }
}

/// Runs the suite and prints the report; the exit code is 1 when a MUST failed, 2 when the
/// server could not be reached.
pub async fn main(args: ConformanceArgs) -> i32 {
    let json = args.json;
    let tty = std::io::stdout().is_terminal() && !json;
    let result = crate::run(args.options(), |done, total, r| {
        if json {
            return;
        }
        let mut out = std::io::stdout().lock();
        if tty {
            let _ = write!(out, "\r\x1b[2K");
        }
        let _ = writeln!(out, "{}", report::line(r));
        if tty && done < total {
            let _ = write!(out, "{}", bar(done, total));
        }
        let _ = out.flush();
    })
    .await;
    let report: Report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cobble conformance: {e}");
            return 2;
        }
    };
    if json {
        println!("{}", report::json(&report));
    } else {
        print!("{}", report::summary(&report));
    }
    if let Some(path) = &args.junit
        && let Err(e) = std::fs::write(path, report::junit(&report))
    {
        eprintln!("cobble conformance: --junit {}: {e}", path.display());
        return 2;
    }
    if report.must_failed() { 1 } else { 0 }
}

/// A one-line progress bar, e.g. `[#######.............] 35/100`.
fn bar(done: usize, total: usize) -> String {
    let width = 30;
    let filled = (done * width)
        .checked_div(total)
        .unwrap_or(width)
        .min(width);
    format!(
        "[{}{}] {done}/{total}",
        "#".repeat(filled),
        ".".repeat(width - filled)
    )
}
