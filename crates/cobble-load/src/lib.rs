//! Cobble's load generator: N concurrent ACME clients, each with its own account and one
//! keep-alive HTTP/1.1 connection, loop whole orders (RFC 8555 §7.4) against any ACME server
//! and report orders/s, latencies per step and per order, failures by problem type, and the
//! CPU and memory of the client and of the servers.
//!
//! It talks HTTP only, like any outside client: no server crate is linked.
#![forbid(unsafe_code)]

pub mod cli;
mod client;
pub mod procstat;
pub mod report;
pub mod stats;

pub use report::{Report, ServerUsage};
pub use stats::{Step, Summary};

use client::{Client, Directory, Fail};
use stats::Stats;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Start orders until this much time has passed, then let the ones under way finish.
    Duration(Duration),
    /// Start this many orders in all (over every client).
    Orders(u64),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server's directory URL.
    pub directory: String,
    /// Concurrent clients, each with its own account and connection.
    pub clients: usize,
    /// When to stop.
    pub limit: Limit,
    /// Names ordered are `l<random>.<suffix>`.
    pub domain_suffix: String,
    /// PEM roots to trust for the server's HTTPS certificate.
    pub ca_bundle: Option<PathBuf>,
    /// Accept any HTTPS certificate.
    pub insecure: bool,
    /// pebble-challtestsrv compatible management API: http-01 answers are published there.
    pub challtestsrv: Option<String>,
    /// Wait as Retry-After says, in polls and on 429/503.
    pub honor_retry_after: bool,
    /// Server processes whose CPU (whole tree) and RSS are measured.
    pub server_pids: Vec<u32>,
    /// No order finished for this long: the server is stalled, the run stops.
    pub stall_secs: u64,
    /// Timeout of each HTTP request.
    pub request_timeout_secs: u64,
    /// Pre-generated P-256 certificate keys, used in turn, so key generation is not measured.
    pub key_pool: usize,
}

impl Options {
    /// Defaults: 1 client for 10 s, names under `example.com`, stall after 10 s.
    pub fn new(directory: impl Into<String>) -> Self {
        Options {
            directory: directory.into(),
            clients: 1,
            limit: Limit::Duration(Duration::from_secs(10)),
            domain_suffix: "example.com".into(),
            ca_bundle: None,
            insecure: false,
            challtestsrv: None,
            honor_retry_after: false,
            server_pids: Vec::new(),
            stall_secs: 10,
            request_timeout_secs: 30,
            key_pool: 256,
        }
    }
}

/// A live view of a run, handed to the progress callback about once a second.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Time since the clients started.
    pub elapsed: Duration,
    /// Orders completed so far.
    pub completed: u64,
    /// Orders failed so far.
    pub failed: u64,
}

/// What the clients share.
pub(crate) struct Shared {
    pub(crate) opts: Options,
    pub(crate) dir: Directory,
    /// A plain client for the challenge test server.
    pub(crate) plain: reqwest::Client,
    keys: Vec<rcgen::KeyPair>,
    next_key: AtomicU64,
    stats: Mutex<Stats>,
    pub(crate) requests: AtomicU64,
    pub(crate) bad_nonce_retries: AtomicU64,
    /// JWS requests sent since the start, registrations included (never reset).
    pub(crate) jws_sent: AtomicU64,
    /// JWS requests answered below 400 since the start: each used up one nonce.
    pub(crate) jws_accepted: AtomicU64,
    started: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    /// Milliseconds after `t0` when the last order finished (completed or failed).
    last_finish_ms: AtomicU64,
    stop: AtomicBool,
    t0: Instant,
}

impl Shared {
    pub(crate) fn record(&self, step: Step, d: Duration) {
        self.stats.lock().expect("stats lock").step(step, d);
    }

    /// A CSR for `name` with no subject (RFC 8555 §7.4), signed by the next key of the pool.
    pub(crate) fn csr(&self, name: &str) -> Result<Vec<u8>, Fail> {
        let i = self.next_key.fetch_add(1, Ordering::Relaxed) as usize % self.keys.len();
        let mut p = rcgen::CertificateParams::new(vec![name.to_owned()]).map_err(|e| Fail {
            kind: "client".into(),
            detail: format!("CSR for {name}: {e}"),
        })?;
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.serialize_request(&self.keys[i])
            .map(|c| c.der().to_vec())
            .map_err(|e| Fail {
                kind: "client".into(),
                detail: format!("CSR for {name}: {e}"),
            })
    }

    /// Claims the next order, or says the run is over.
    fn claim(&self, deadline: Option<Instant>) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        match self.opts.limit {
            Limit::Duration(_) => deadline.is_none_or(|d| Instant::now() < d),
            Limit::Orders(n) => self.started.fetch_add(1, Ordering::Relaxed) < n,
        }
    }

    fn finished(&self) {
        let ms = self.t0.elapsed().as_millis() as u64;
        self.last_finish_ms.fetch_max(ms, Ordering::Relaxed);
    }
}

/// One client's loop: orders until the limit, each recorded.
async fn client_loop(mut c: Client, shared: Arc<Shared>, deadline: Option<Instant>) {
    while shared.claim(deadline) {
        match c.order().await {
            Ok(d) => {
                shared.stats.lock().expect("stats lock").orders.push(d);
                shared.completed.fetch_add(1, Ordering::Relaxed);
            }
            Err((step, f)) => {
                shared
                    .stats
                    .lock()
                    .expect("stats lock")
                    .failure(&f.kind, step, &f.detail);
                shared.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        shared.finished();
    }
}

/// Runs the load: sets up one account per client, loops orders until the limit or a stall,
/// and measures. `progress` is called about once a second while the clients run.
/// An error means the run could not start (directory or accounts unreachable).
pub async fn run(opts: Options, mut progress: impl FnMut(&Progress)) -> Result<Report, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if opts.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    let setup_http = client::http_client(&opts)?;
    let r = setup_http
        .get(&opts.directory)
        .send()
        .await
        .map_err(|e| client::transport(e, &opts.directory).detail)?;
    let status = r.status();
    let text = r
        .text()
        .await
        .map_err(|e| format!("GET {}: {e}", opts.directory))?;
    let dir_json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("GET {} (HTTP {status}): not JSON ({e})", opts.directory))?;
    let dir = Directory::parse(&dir_json)?;
    let pool = opts.key_pool.max(1);
    let keys = tokio::task::spawn_blocking(move || {
        (0..pool)
            .map(|_| rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("key pool: {e}"))?;
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(opts.request_timeout_secs))
        .no_proxy()
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let shared = Arc::new(Shared {
        opts: opts.clone(),
        dir,
        plain,
        keys,
        next_key: AtomicU64::new(0),
        stats: Mutex::new(Stats::default()),
        requests: AtomicU64::new(0),
        bad_nonce_retries: AtomicU64::new(0),
        jws_sent: AtomicU64::new(0),
        jws_accepted: AtomicU64::new(0),
        started: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        last_finish_ms: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        t0: Instant::now(),
    });

    // Accounts, all at once; any failure stops the run before it starts.
    let mut regs = tokio::task::JoinSet::new();
    for _ in 0..opts.clients {
        regs.spawn(Client::register(shared.clone()));
    }
    let mut clients = Vec::with_capacity(opts.clients);
    while let Some(r) = regs.join_next().await {
        clients.push(r.map_err(|e| e.to_string())??);
    }
    shared.requests.store(0, Ordering::Relaxed);
    shared.bad_nonce_retries.store(0, Ordering::Relaxed);

    let before: Vec<Option<procstat::Sample>> = opts
        .server_pids
        .iter()
        .map(|&p| procstat::sample(p))
        .collect();
    let client_cpu0 = procstat::self_cpu_ms();
    let t0 = Instant::now();
    // `Shared::t0` is the setup start; measure from here.
    let base_ms = shared.t0.elapsed().as_millis() as u64;
    shared.last_finish_ms.store(base_ms, Ordering::Relaxed);
    let deadline = match opts.limit {
        Limit::Duration(d) => Some(t0 + d),
        Limit::Orders(_) => None,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for c in clients {
        tasks.spawn(client_loop(c, shared.clone(), deadline));
    }

    let stall = Duration::from_secs(opts.stall_secs.max(1));
    let mut stalled = None;
    let mut last_progress = Instant::now();
    loop {
        tokio::select! {
            joined = tasks.join_next() => {
                if joined.is_none() { break; }
                continue;
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let since_last = shared.t0.elapsed().saturating_sub(Duration::from_millis(
            shared.last_finish_ms.load(Ordering::Relaxed),
        ));
        if since_last >= stall {
            stalled = Some(since_last);
            shared.stop.store(true, Ordering::Relaxed);
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            break;
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            progress(&Progress {
                elapsed: t0.elapsed(),
                completed: shared.completed.load(Ordering::Relaxed),
                failed: shared.failed.load(Ordering::Relaxed),
            });
        }
    }
    let elapsed = t0.elapsed();
    let client_cpu_ms = procstat::self_cpu_ms().saturating_sub(client_cpu0);
    let servers = opts
        .server_pids
        .iter()
        .zip(before)
        .map(|(&pid, b)| ServerUsage::between(pid, b, procstat::sample(pid)))
        .collect();
    let stats = std::mem::take(&mut *shared.stats.lock().expect("stats lock"));
    Ok(Report::build(report::Inputs {
        opts: &opts,
        stats,
        elapsed,
        requests: shared.requests.load(Ordering::Relaxed),
        bad_nonce_retries: shared.bad_nonce_retries.load(Ordering::Relaxed),
        jws_sent: shared.jws_sent.load(Ordering::Relaxed),
        jws_accepted: shared.jws_accepted.load(Ordering::Relaxed),
        stalled,
        client_cpu_ms,
        servers,
    }))
}
