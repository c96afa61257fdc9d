//! Cobble's conformance suite: a catalogue of RFC 8555 (and companion RFC) checks run over
//! HTTPS against any ACME server's directory URL, as an outside client.
//!
//! The catalogue is data (`conformance/catalogue.toml`); [`checks`] implements each entry by
//! id; [`run`] runs the selected ones in catalogue order and returns a [`Report`].
#![forbid(unsafe_code)]

pub mod catalogue;
pub mod checks;
pub mod cli;
pub mod client;
pub mod ctx;
pub mod fixtures;
pub mod model;
pub mod report;
pub mod responder;
pub mod rsa_csr;

pub use model::{CheckResult, Exchange, Level, Outcome, Report};

use client::Halt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What a run needs to know about the server and the environment.
#[derive(Debug, Clone)]
pub struct Options {
    /// The directory URL.
    pub directory: String,
    /// PEM file of roots to trust for the server's HTTPS certificate.
    pub ca_bundle: Option<PathBuf>,
    /// Accept any HTTPS certificate.
    pub insecure: bool,
    /// External Account Binding key id (RFC 8555 §7.3.4).
    pub eab_kid: Option<String>,
    /// External Account Binding MAC key, base64url.
    pub eab_hmac_key: Option<String>,
    /// A command (run by `sh -c`) that prints a fresh `KID HMAC-KEY` pair for each account, for
    /// servers whose EAB keys bind one account each; it wins over `eab_kid`/`eab_hmac_key`.
    pub eab_cmd: Option<String>,
    /// Answer http-01 challenges from the suite's own responder on this port instead of through
    /// the challenge test server (the server must validate at this port of this machine).
    pub http01_port: Option<u16>,
    /// URL of the PEM root the server's chains lead to (e.g. Pebble's or Cobble's management
    /// `/roots/0`), for `cert.chain-to-root`.
    pub roots_url: Option<String>,
    /// pebble-challtestsrv compatible management API URL.
    pub challtestsrv: Option<String>,
    /// The suffix of the DNS names the suite orders (they must resolve to the challenge test
    /// server for validations to succeed).
    pub domain_suffix: String,
    /// Only these checks (ids, id prefixes such as `nonce`, or sections such as `7.3`).
    pub only: Vec<String>,
    /// Not these checks (same forms).
    pub skip: Vec<String>,
    /// The server's nonce lifetime in seconds: `nonce.expired` holds a nonce that long (and
    /// one second more) and expects it refused; without it, that check is skipped.
    pub nonce_wait_secs: Option<u64>,
    /// Timeout of each HTTP request.
    pub request_timeout_secs: u64,
    /// Timeout of each check.
    pub check_timeout_secs: u64,
}

impl Options {
    /// Options for `directory` with the defaults for everything else.
    pub fn new(directory: impl Into<String>) -> Self {
        Options {
            directory: directory.into(),
            ca_bundle: None,
            insecure: false,
            eab_kid: None,
            eab_hmac_key: None,
            eab_cmd: None,
            http01_port: None,
            roots_url: None,
            challtestsrv: None,
            domain_suffix: "example.com".into(),
            only: Vec::new(),
            skip: Vec::new(),
            nonce_wait_secs: None,
            request_timeout_secs: 15,
            check_timeout_secs: 90,
        }
    }
}

/// Whether `token` (an id, an id prefix, or an RFC section like `7.3` or `§7.3`) selects `e`.
pub fn selects(token: &str, e: &catalogue::Entry) -> bool {
    let t = token.trim();
    if t == e.id || e.id.starts_with(&format!("{t}.")) {
        return true;
    }
    let sec = t.trim_start_matches('§');
    e.section
        .split('§')
        .nth(1)
        .map(|s| s.trim())
        .is_some_and(|s| !sec.is_empty() && (s == sec || s.starts_with(&format!("{sec}."))))
}

/// Runs the selected checks against `opts.directory`, calling `progress(done, total, result)`
/// after each one. Fails only when the directory cannot be fetched at all.
pub async fn run(
    opts: Options,
    mut progress: impl FnMut(usize, usize, &CheckResult),
) -> Result<Report, String> {
    let entries: Vec<_> = catalogue::entries()
        .into_iter()
        .filter(|e| opts.only.is_empty() || opts.only.iter().any(|t| selects(t, e)))
        .filter(|e| !opts.skip.iter().any(|t| selects(t, e)))
        .collect();
    let check_timeout = Duration::from_secs(opts.check_timeout_secs);
    // nonce.expired sleeps out the nonce lifetime on top of its requests.
    let nonce_wait = Duration::from_secs(opts.nonce_wait_secs.map_or(0, |w| w + 1));
    let directory = opts.directory.clone();
    let ctx = ctx::Ctx::connect(opts).await?;
    let registry = checks::registry();
    let mut results = Vec::new();
    let total = entries.len();
    for (i, e) in entries.iter().enumerate() {
        *ctx.current.lock().unwrap() = e.id.clone();
        ctx.judges_rate_limits
            .store(e.rate_limits, std::sync::atomic::Ordering::Relaxed);
        let start = Instant::now();
        let limit = if e.id == "nonce.expired" {
            check_timeout + nonce_wait
        } else {
            check_timeout
        };
        let outcome = match registry.iter().find(|(id, _)| *id == e.id) {
            None => Outcome::Fail {
                reason: format!("internal: no code implements catalogue entry {}", e.id),
                exchange: None,
            },
            Some((_, f)) => match tokio::time::timeout(limit, f(&ctx)).await {
                Err(_) => Outcome::Fail {
                    reason: format!("the check did not finish within {} s", limit.as_secs()),
                    exchange: None,
                },
                Ok(Ok(())) => Outcome::Pass,
                Ok(Err(Halt::Fail(reason, exchange))) => Outcome::Fail {
                    reason,
                    exchange: exchange.map(|b| *b),
                },
                Ok(Err(Halt::Skip(reason))) => Outcome::Skip { reason },
                Ok(Err(Halt::NotApplicable(reason))) => Outcome::NotApplicable { reason },
            },
        };
        let r = CheckResult {
            id: e.id.clone(),
            section: e.section.clone(),
            level: e.level,
            title: e.title.clone(),
            outcome,
            millis: start.elapsed().as_millis() as u64,
        };
        progress(i + 1, total, &r);
        results.push(r);
    }
    Ok(Report { directory, results })
}
