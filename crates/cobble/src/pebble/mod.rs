//! The Pebble drop-in: invoked as `pebble` or `pebble-challtestsrv` (a symlink to the
//! `cobble` binary), Cobble takes those programs' single-dash flags and Pebble's JSON
//! config, keeps nothing on disk unless told (`COBBLE_DATA_DIR`, `COBBLE_DATABASE_URL`),
//! and uses Pebble's documented behaviour where Cobble's own defaults are stricter, so
//! client test suites written for Pebble run unchanged.

mod flags;

use anyhow::Context;
use cobble_core::clock::SystemClock;
use cobble_server::config::ServerConfig;
use cobble_server::pebble_config::{PebbleConfig, go_dial_addr};
use flags::{Flag, FlagError};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which program the binary was started as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    /// `pebble`: the ACME server.
    Pebble,
    /// `pebble-challtestsrv`: the challenge test server.
    Challtestsrv,
}

impl Personality {
    /// The personality `argv0` (the path the binary was started by) names, if any.
    pub fn from_argv0(argv0: &std::ffi::OsStr) -> Option<Self> {
        let name = Path::new(argv0).file_name()?.to_str()?;
        let name = name.strip_suffix(".exe").unwrap_or(name);
        match name {
            "pebble" => Some(Self::Pebble),
            "pebble-challtestsrv" => Some(Self::Challtestsrv),
            _ => None,
        }
    }

    fn program(self) -> &'static str {
        match self {
            Self::Pebble => "pebble",
            Self::Challtestsrv => "pebble-challtestsrv",
        }
    }

    fn flags(self) -> &'static [Flag] {
        match self {
            Self::Pebble => PEBBLE_FLAGS,
            Self::Challtestsrv => CHALLTESTSRV_FLAGS,
        }
    }
}

const fn flag(name: &'static str, default: &'static str, usage: &'static str) -> Flag {
    Flag {
        name,
        boolean: false,
        default,
        usage,
    }
}

const fn switch(name: &'static str, usage: &'static str) -> Flag {
    Flag {
        name,
        boolean: true,
        default: "false",
        usage,
    }
}

/// `pebble`'s flags.
const PEBBLE_FLAGS: &[Flag] = &[
    flag(
        "config",
        "test/config/pebble-config.json",
        "File path to the Pebble configuration file",
    ),
    switch(
        "strict",
        "Enable strict mode to test upcoming API breaking changes",
    ),
    flag(
        "dnsserver",
        "",
        "Define a custom DNS server address (ex: 192.168.0.56:5053 or 8.8.8.8:53).",
    ),
    switch("version", "Print the software version"),
];

/// `pebble-challtestsrv`'s flags (`-dns01` is the older name of `-dnsserver`).
const CHALLTESTSRV_FLAGS: &[Flag] = &[
    flag(
        "http01",
        ":5002",
        "Comma separated bind addresses/ports for HTTP-01 challenges. Set empty to disable.",
    ),
    flag(
        "https01",
        ":5003",
        "Comma separated bind addresses/ports for HTTPS HTTP-01 challenges. Set empty to disable.",
    ),
    flag(
        "doh",
        ":8443",
        "Comma separated bind addresses/ports for DoH queries. Set empty to disable.",
    ),
    flag("doh-cert", "", "Path to certificate file for DoH server."),
    flag(
        "doh-cert-key",
        "",
        "Path to certificate key file for DoH server.",
    ),
    flag(
        "dnsserver",
        ":8053",
        "Comma separated bind addresses/ports for serving DNS queries. Set empty to disable.",
    ),
    flag(
        "dns01",
        ":8053",
        "Older name of -dnsserver (pebble-challtestsrv before 2.5).",
    ),
    flag(
        "tlsalpn01",
        ":5001",
        "Comma separated bind addresses/ports for TLS-ALPN-01 and HTTPS HTTP-01 challenges. Set empty to disable.",
    ),
    flag(
        "management",
        ":8055",
        "Bind address/port for management HTTP interface",
    ),
    flag(
        "defaultIPv4",
        "127.0.0.1",
        "Default IPv4 address for DNS responses to A queries",
    ),
    flag(
        "defaultIPv6",
        "::1",
        "Default IPv6 address for DNS responses to AAAA queries",
    ),
];

/// Runs the drop-in `who` with the arguments after the program name; returns the exit
/// status (Go's: 0 after `-h`, 2 for a bad flag, 1 for a bad config).
pub fn main(who: Personality, args: Vec<OsString>) -> i32 {
    let args: Vec<String> = match args.into_iter().map(OsString::into_string).collect() {
        Ok(a) => a,
        Err(bad) => {
            eprintln!("invalid command line argument: {bad:?}");
            return 2;
        }
    };
    let program = who.program();
    let parsed = match flags::parse(who.flags(), &args) {
        Ok(p) => p,
        Err(FlagError::Help) => {
            eprint!("{}", flags::usage(program, who.flags()));
            return 0;
        }
        Err(e @ FlagError::Positional(_)) => {
            println!("{e}");
            eprint!("{}", flags::usage(program, who.flags()));
            return 1;
        }
        Err(e) => {
            eprintln!("{e}");
            eprint!("{}", flags::usage(program, who.flags()));
            return 2;
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{program}: {e}");
            return 1;
        }
    };
    let result = match who {
        Personality::Pebble => {
            if parsed.flag("version") {
                println!("Pebble version: cobble-{}", env!("CARGO_PKG_VERSION"));
                return 0;
            }
            runtime.block_on(pebble(&parsed))
        }
        Personality::Challtestsrv => runtime.block_on(challtestsrv(&parsed)),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{program}: {e:#}");
            1
        }
    }
}

fn log_filter() -> String {
    std::env::var("COBBLE_LOG").unwrap_or_else(|_| "info".to_owned())
}

/// The server configuration before Pebble's config file: a throwaway data directory and
/// Pebble's documented behaviour where Cobble is stricter by default.
fn drop_in_defaults(data_dir: &Path) -> ServerConfig {
    ServerConfig {
        data_dir: data_dir.to_owned(),
        database_url: format!("sqlite://{}", data_dir.join("cobble.db").display()),
        // Pebble accepts RSA keys from 1024 bits.
        rsa_min_bits: 1024,
        // Pebble lets one EAB key bind any number of accounts.
        eab_reusable: true,
        // Pebble has no rate limits.
        no_rate_limits: true,
        // Pebble checks no CAA (unless the config names caaIdentities, see
        // cobble_server::pebble_config).
        caa_check: false,
        // Pebble answers a deactivated account's requests with 403 unauthorized.
        deactivated_account_status: 403,
        // Pebble finalizes asynchronously: the order is `processing` first.
        finalize_async: true,
        // Pebble's documented defaults for its environment knobs.
        nonce_reject_percent: 5,
        va_sleep_max_secs: 15,
        authz_reuse_percent: 50,
        orders_per_page: 3,
        // Pebble accepts any name outside its block list, and validates any address
        // (docker set-ups resolve names to private networks).
        allow_reserved_names: true,
        va_allow_private: true,
        // Pebble's validator follows http-01 redirects to any port (Go's HTTP client).
        va_redirect_any_port: true,
        serve_ca_keys: true,
        // Pebble's management routes, as Pebble answers them, with no token.
        pebble_management: true,
        // Pebble's CA keys are RSA unless keyAlgorithm says ecdsa.
        ca: cobble_ca::CaConfig {
            key_type: cobble_ca::KeyType::Rsa2048,
            name_prefix: "Pebble".into(),
            ..Default::default()
        },
        ..ServerConfig::default()
    }
}

/// Temp directories of earlier drop-in processes are named with their process id; those
/// whose process is gone (killed without a chance to clean up) are removed.
const TEMP_PREFIX: &str = "cobble-pebble-";

fn sweep_stale_temp_dirs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten().take(10_000) {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A fresh random admin token, kept in memory only.
fn random_token() -> anyhow::Result<String> {
    let mut raw = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
        .map_err(|_| anyhow::anyhow!("the system RNG failed"))?;
    Ok(cobble_core::b64::encode(raw))
}

/// `pebble -config FILE -dnsserver ADDR -strict`.
async fn pebble(flags: &flags::Parsed) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        // Colours only on a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(log_filter()).context("COBBLE_LOG")?,
        )
        .with_writer(std::io::stderr)
        .init();
    let path = PathBuf::from(flags.get("config"));
    anyhow::ensure!(!path.as_os_str().is_empty(), "-config is empty");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "Reading JSON config file into config structure: {}",
            path.display()
        )
    })?;
    let file = PebbleConfig::parse(&text)
        .with_context(|| format!("Reading JSON config file {}", path.display()))?;

    let tmp = std::env::temp_dir();
    sweep_stale_temp_dirs(&tmp);
    let temp = tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .tempdir_in(&tmp)
        .context("making a temporary data directory")?;
    let mut cfg = file.apply(drop_in_defaults(temp.path()))?;
    // Pebble's environment knobs, then Cobble's own "told to keep it" settings.
    // A value Pebble would ignore is ignored here too, with a warning.
    crate::knobs::pebble_knobs(&Default::default(), &mut cfg, crate::knobs::BadKnob::Ignore)?;
    if let Ok(d) = std::env::var("COBBLE_DATA_DIR")
        && !d.is_empty()
    {
        cfg.data_dir = PathBuf::from(d);
        cfg.database_url = String::new();
    }
    if let Ok(u) = std::env::var("COBBLE_DATABASE_URL")
        && !u.is_empty()
    {
        cfg.database_url = u;
    }
    let dns = flags.get("dnsserver");
    if !dns.is_empty() {
        cfg.dns_server = Some(go_dial_addr(dns).context("-dnsserver")?);
    }
    if flags.flag("strict") {
        println!("Running in strict mode");
    }
    // Cobble's own admin routes (not Pebble's, which need none) keep the token:
    // COBBLE_ADMIN_TOKEN's when set, else a random one nobody is told.
    cfg.admin_token = Some(match std::env::var("COBBLE_ADMIN_TOKEN") {
        Ok(t) if !t.is_empty() => t,
        _ => random_token()?,
    });

    println!(
        "Pebble {} Starting Pebble ACME server (Cobble {} drop-in)",
        now(),
        env!("CARGO_PKG_VERSION")
    );
    for line in knob_lines(&cfg) {
        println!("Pebble {} {line}", now());
    }
    let listen = cfg.listen;
    let mgmt = cfg.admin_listen;
    let alternates = cfg.ca.alternate_roots;
    let running = cobble_server::start(cfg, Arc::new(SystemClock))
        .await
        .context("starting the server")?;
    match mgmt {
        Some(m) => {
            println!("Pebble {} Management interface listening on: {m}", now());
            println!(
                "Pebble {} Root CA certificate available at: https://{m}/roots/0",
                now()
            );
            for i in 1..=alternates {
                println!(
                    "Pebble {} Alternate ({i}) root CA certificate available at: https://{m}/roots/{i}",
                    now()
                );
            }
        }
        None => println!("Pebble {} Management interface is disabled", now()),
    }
    println!("Pebble {} Listening on: {listen}", now());
    println!(
        "Pebble {} ACME directory available at: {}",
        now(),
        running.directory_url
    );
    crate::challtestsrv::shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    drop(temp);
    Ok(())
}

/// Pebble's start-up lines for its environment knobs, in its order, from the settings in
/// effect (so a suite, or a person, sees what a knob did, as with Pebble).
fn knob_lines(cfg: &ServerConfig) -> Vec<String> {
    let mut lines = Vec::new();
    match cfg.va_sleep_max_secs {
        0 => lines.push("Disabling random VA sleeps".to_owned()),
        15 => {}
        n => lines.push(format!(
            "Setting maximum random VA sleep time to {n} seconds"
        )),
    }
    if cfg.va_always_valid {
        lines.push("Disabling VA challenge requests. VA always returns valid".to_owned());
    }
    lines.push(format!(
        "Configured to reject {}% of good nonces",
        cfg.nonce_reject_percent
    ));
    lines.push(format!(
        "Configured to attempt authz reuse for each identifier {}% of the time",
        cfg.authz_reuse_percent
    ));
    lines.push(format!(
        "Configured to show {} orders per page",
        cfg.orders_per_page
    ));
    lines
}

/// Go's log timestamp, `2006/01/02 15:04:05`, in UTC.
fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The default value of a `pebble-challtestsrv` flag.
fn default_of(name: &str) -> &'static str {
    CHALLTESTSRV_FLAGS
        .iter()
        .find(|f| f.name == name)
        .map_or("", |f| f.default)
}

/// `pebble-challtestsrv -management :P -dnsserver :P -http01 :P ...`.
async fn challtestsrv(flags: &flags::Parsed) -> anyhow::Result<()> {
    let addr = |name: &str| {
        cobble_challtestsrv::parse_listen_addr(flags.get(name)).with_context(|| format!("-{name}"))
    };
    // `-dnsserver` is today's name, `-dns01` the older one; a non-default value wins.
    let dns = if flags.get("dnsserver") != ":8053" {
        addr("dnsserver")?
    } else {
        addr("dns01")?
    };
    let ip = |name: &str| -> anyhow::Result<Option<std::net::IpAddr>> {
        let v = flags.get(name).trim();
        if v.is_empty() {
            return Ok(None);
        }
        Ok(Some(v.parse().with_context(|| format!("-{name} {v:?}"))?))
    };
    let v4 = match ip("defaultIPv4")? {
        None => None,
        Some(std::net::IpAddr::V4(a)) => Some(a),
        Some(other) => anyhow::bail!("-defaultIPv4 {other} is not an IPv4 address"),
    };
    let v6 = match ip("defaultIPv6")? {
        None => None,
        Some(std::net::IpAddr::V6(a)) => Some(a),
        Some(other) => anyhow::bail!("-defaultIPv6 {other} is not an IPv6 address"),
    };
    let doh_tls = match (flags.get("doh-cert"), flags.get("doh-cert-key")) {
        ("", "") => None,
        ("", _) | (_, "") => {
            anyhow::bail!("-doh-cert and -doh-cert-key are given together or not at all")
        }
        (cert, key) => Some(cobble_challtestsrv::TlsFiles {
            cert: cert.into(),
            key: key.into(),
        }),
    };
    // pebble-challtestsrv serves DoH only with a certificate: at its default address and
    // without one, it serves nothing. An address given on purpose is served, with a
    // self-signed certificate when none is given.
    let doh = if doh_tls.is_none() && flags.get("doh") == default_of("doh") {
        None
    } else {
        addr("doh")?
    };
    let cfg = cobble_challtestsrv::ChalltestConfig {
        dns01: dns,
        http01: addr("http01")?,
        https01: addr("https01")?,
        doh,
        doh_tls,
        tlsalpn01: addr("tlsalpn01")?,
        management: addr("management")?,
        default_ipv4: v4,
        default_ipv6: v6,
    };
    // pebble-challtestsrv logs a listener it cannot bind and serves the others.
    crate::challtestsrv::serve(cfg, &log_filter(), true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personality_from_the_program_name() {
        let rows = [
            ("pebble", Some(Personality::Pebble)),
            ("/usr/local/bin/pebble", Some(Personality::Pebble)),
            ("./pebble-challtestsrv", Some(Personality::Challtestsrv)),
            ("pebble.exe", Some(Personality::Pebble)),
            ("cobble", None),
            ("/tmp/pebble/cobble", None),
        ];
        for (argv0, want) in rows {
            assert_eq!(
                Personality::from_argv0(std::ffi::OsStr::new(argv0)),
                want,
                "{argv0}"
            );
        }
    }

    #[test]
    fn stale_temp_dirs_of_dead_processes_are_swept() {
        let tmp = tempfile::tempdir().unwrap();
        // Process ids beyond the kernel's maximum are never alive.
        let dead = tmp.path().join(format!("{TEMP_PREFIX}4294967294-x"));
        let mine = tmp
            .path()
            .join(format!("{TEMP_PREFIX}{}-y", std::process::id()));
        let other = tmp.path().join("something-else");
        for d in [&dead, &mine, &other] {
            std::fs::create_dir(d).unwrap();
        }
        sweep_stale_temp_dirs(tmp.path());
        assert!(!dead.exists());
        assert!(mine.exists());
        assert!(other.exists());
    }
}
