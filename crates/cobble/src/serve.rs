//! `cobble serve`: configuration from flags, `COBBLE_*` variables and a TOML file (in that
//! order of precedence), Pebble's environment knobs, then the server until Ctrl-C/SIGTERM.

use anyhow::Context;
use clap::Args;
use cobble_core::clock::SystemClock;
use cobble_server::config::ServerConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Options of `cobble serve`; each overrides the config file, and defaults are ServerConfig's.
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML config file (keys as the long flags, e.g. `listen = "127.0.0.1:14000"`).
    #[arg(long, env = "COBBLE_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Log filter (tracing EnvFilter syntax), e.g. `info`, `debug`, `cobble_server=debug`.
    #[arg(long, env = "COBBLE_LOG", default_value = "info")]
    log: String,

    /// ACME HTTPS listener address [default: 127.0.0.1:14000].
    #[arg(long, env = "COBBLE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory: database, HTTPS trust root [default: ./cobble-data].
    #[arg(long, env = "COBBLE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database: sqlite://PATH, sqlite::memory: (keeps nothing) or postgres://... (also read from DATABASE_URL) [default: sqlite://<data-dir>/cobble.db].
    #[arg(long, env = "COBBLE_DATABASE_URL")]
    database_url: Option<String>,
    /// Most database connections [default: 16].
    #[arg(long, env = "COBBLE_DATABASE_MAX_CONNECTIONS")]
    database_max_connections: Option<u32>,
    /// Base URL clients use, e.g. behind a load balancer [default: https://<Host header>].
    #[arg(long, env = "COBBLE_EXTERNAL_URL")]
    external_url: Option<String>,
    /// HTTPS certificate chain (PEM) to serve instead of the generated one (with --tls-key).
    #[arg(long, env = "COBBLE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, env = "COBBLE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Extra DNS name or IP for the generated HTTPS certificate (repeatable).
    #[arg(long = "tls-name", env = "COBBLE_TLS_NAMES", value_delimiter = ',')]
    tls_names: Vec<String>,
    /// Nonce lifetime in seconds [default: 3600].
    #[arg(long, env = "COBBLE_NONCE_LIFETIME_SECS")]
    nonce_lifetime_secs: Option<u64>,
    /// Percentage of valid nonces refused with badNonce (test knob; also PEBBLE_WFE_NONCEREJECT) [default: 0].
    #[arg(long, env = "COBBLE_NONCE_REJECT_PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub(crate) nonce_reject_percent: Option<u8>,
    /// Terms of service URL; "" for none (then agreement is not required) [default: Cobble's own at /terms].
    #[arg(long, env = "COBBLE_TERMS_OF_SERVICE")]
    terms_of_service: Option<String>,
    /// meta.website URL; "" for none [default: Cobble's own page at /].
    #[arg(long, env = "COBBLE_WEBSITE")]
    website: Option<String>,
    /// CAA issuer domain (repeatable) [default: cobble.test].
    #[arg(
        long = "caa-identity",
        env = "COBBLE_CAA_IDENTITIES",
        value_delimiter = ','
    )]
    caa_identities: Vec<String>,
    /// Largest request body in bytes [default: 65536].
    #[arg(long, env = "COBBLE_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Smallest RSA account key in bits [default: 2048].
    #[arg(long, env = "COBBLE_RSA_MIN_BITS")]
    rsa_min_bits: Option<usize>,
    /// Seconds in-flight requests get to finish at shutdown [default: 10].
    #[arg(long, env = "COBBLE_SHUTDOWN_GRACE_SECS")]
    shutdown_grace_secs: Option<u64>,
    /// Order lifetime in seconds [default: 604800].
    #[arg(long, env = "COBBLE_ORDER_LIFETIME_SECS")]
    order_lifetime_secs: Option<u64>,
    /// Pending authorization lifetime in seconds [default: 604800].
    #[arg(long, env = "COBBLE_PENDING_AUTHZ_LIFETIME_SECS")]
    pending_authz_lifetime_secs: Option<u64>,
    /// Valid authorization lifetime (reuse window) in seconds [default: 2592000].
    #[arg(long, env = "COBBLE_VALID_AUTHZ_LIFETIME_SECS")]
    valid_authz_lifetime_secs: Option<u64>,
    /// Percentage of valid authorizations reused by new orders (also PEBBLE_AUTHZREUSE) [default: 100].
    #[arg(long, env = "COBBLE_AUTHZ_REUSE_PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub(crate) authz_reuse_percent: Option<u8>,
    /// Offer newAuthz pre-authorization (RFC 8555 §7.4.1) [default: true].
    #[arg(long, env = "COBBLE_PRE_AUTHORIZATION", num_args = 0..=1, default_missing_value = "true")]
    pre_authorization: Option<bool>,
    /// Accept notBefore/notAfter in newOrder [default: false].
    #[arg(long, env = "COBBLE_ALLOW_ORDER_VALIDITY", num_args = 0..=1, default_missing_value = "true")]
    allow_order_validity: Option<bool>,
    /// Most identifiers per order [default: 100].
    #[arg(long, env = "COBBLE_MAX_IDENTIFIERS")]
    max_identifiers: Option<usize>,
    /// Refuse this domain and its subdomains (repeatable).
    #[arg(
        long = "block-domain",
        env = "COBBLE_BLOCKED_DOMAINS",
        value_delimiter = ','
    )]
    blocked_domains: Vec<String>,
    /// Accept only this domain and its subdomains (repeatable; none = all).
    #[arg(
        long = "allow-domain",
        env = "COBBLE_ALLOWED_DOMAINS",
        value_delimiter = ','
    )]
    allowed_domains: Vec<String>,
    /// Accept special-use names such as .local and .internal [default: false].
    #[arg(long, env = "COBBLE_ALLOW_RESERVED_NAMES", num_args = 0..=1, default_missing_value = "true")]
    allow_reserved_names: Option<bool>,
    /// Port http-01 validation connects to [default: 5002].
    #[arg(long, env = "COBBLE_HTTP01_PORT")]
    http01_port: Option<u16>,
    /// The https port an http-01 redirect may go to, besides 80 and the http-01 port (Boulder's httpsPort) [default: 443].
    #[arg(long, env = "COBBLE_HTTPS01_PORT")]
    https01_port: Option<u16>,
    /// Port tls-alpn-01 validation connects to [default: 5001].
    #[arg(long, env = "COBBLE_TLSALPN01_PORT")]
    tlsalpn01_port: Option<u16>,
    /// DNS server for validation and CAA, e.g. 127.0.0.1:8053 [default: the system's resolvers].
    #[arg(long, env = "COBBLE_DNS_SERVER")]
    dns_server: Option<SocketAddr>,
    /// Validations in flight in this process [default: 64].
    #[arg(long, env = "COBBLE_VALIDATION_WORKERS")]
    validation_workers: Option<usize>,
    /// Days expired orders, authorizations and certificates are kept before they are deleted [default: 30].
    #[arg(long, env = "COBBLE_RETENTION_DAYS")]
    retention_days: Option<u64>,
    /// One validation's overall deadline in seconds, all steps together (at most 3/4 of the lease) [default: 60].
    #[arg(long, env = "COBBLE_VALIDATION_DEADLINE_SECS")]
    validation_deadline_secs: Option<u64>,
    /// Timeout of each network step of a validation, in seconds [default: 10].
    #[arg(long, env = "COBBLE_VALIDATION_TIMEOUT_SECS")]
    validation_timeout_secs: Option<u64>,
    /// Pass every challenge without network checks (also PEBBLE_VA_ALWAYS_VALID=1) [default: false].
    #[arg(long, env = "COBBLE_VA_ALWAYS_VALID", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) va_always_valid: Option<bool>,
    /// Let validation reach RFC 1918, CGNAT and ULA addresses (and accept them as ip identifiers), for lab networks; link-local stays refused [default: false].
    #[arg(long, env = "COBBLE_VA_ALLOW_PRIVATE", num_args = 0..=1, default_missing_value = "true")]
    va_allow_private: Option<bool>,
    /// Refuse loopback addresses in validation and as ip identifiers, for public-facing deployments [default: false].
    #[arg(long, env = "COBBLE_VA_DENY_LOOPBACK", num_args = 0..=1, default_missing_value = "true")]
    va_deny_loopback: Option<bool>,
    /// Management listener (roots, intermediates, certificate status); "" turns it off [default: 127.0.0.1:15000].
    #[arg(long, env = "COBBLE_ADMIN_LISTEN")]
    admin_listen: Option<String>,
    /// Admin API token (Authorization: Bearer) [default: the one in <data-dir>/admin-token, made at first start].
    #[arg(long, env = "COBBLE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Serve a generated CA's private keys on the management listener, with the token [default: false].
    #[arg(long, env = "COBBLE_SERVE_CA_KEYS", num_args = 0..=1, default_missing_value = "true")]
    serve_ca_keys: Option<bool>,
    /// Milliseconds a request waits for a free database connection before it gets 503 [default: 2000].
    #[arg(long, env = "COBBLE_DATABASE_ACQUIRE_TIMEOUT_MS")]
    database_acquire_timeout_ms: Option<u64>,
    /// Answer finalize at once with "processing" and sign in the background, as Pebble does [default: false].
    #[arg(long, env = "COBBLE_FINALIZE_ASYNC", num_args = 0..=1, default_missing_value = "true")]
    finalize_async: Option<bool>,
    /// Key type of the CA made at first start: ecdsa-p256, ecdsa-p384, rsa2048, rsa3072, rsa4096 [default: ecdsa-p256].
    #[arg(long, env = "COBBLE_CA_KEY_TYPE")]
    ca_key_type: Option<String>,
    /// Intermediates between root and leaf (also PEBBLE_CHAIN_LENGTH) [default: 1].
    #[arg(long, env = "COBBLE_CHAIN_LENGTH")]
    pub(crate) chain_length: Option<usize>,
    /// Extra cross-signing roots, offered as alternate chains (also PEBBLE_ALTERNATE_ROOTS) [default: 0].
    #[arg(long, env = "COBBLE_ALTERNATE_ROOTS")]
    pub(crate) alternate_roots: Option<usize>,
    /// Delay validations by a random time up to this many seconds (also PEBBLE_VA_SLEEPTIME; PEBBLE_VA_NOSLEEP=1 sets 0) [default: 0].
    #[arg(long, env = "COBBLE_VA_SLEEP_MAX_SECS")]
    pub(crate) va_sleep_max_secs: Option<u64>,
    /// Refuse new accounts without External Account Binding [default: false].
    #[arg(long, env = "COBBLE_EAB_REQUIRED", num_args = 0..=1, default_missing_value = "true")]
    eab_required: Option<bool>,
    /// Let one EAB key bind many account keys, as Pebble does [default: false: one key, one account].
    #[arg(long, env = "COBBLE_EAB_REUSABLE", num_args = 0..=1, default_missing_value = "true")]
    eab_reusable: Option<bool>,
    /// New accounts wait for an operator's approval before they may order [default: false].
    #[arg(long, env = "COBBLE_OPERATOR_APPROVAL", num_args = 0..=1, default_missing_value = "true")]
    operator_approval: Option<bool>,
    /// Orders need the organization's documents on record and in date [default: false].
    #[arg(long, env = "COBBLE_REQUIRE_DOCUMENTS", num_args = 0..=1, default_missing_value = "true")]
    require_documents: Option<bool>,
    /// ACME accounts expire this many days after creation; 0 = never [default: 0].
    #[arg(long, env = "COBBLE_ACCOUNT_LIFETIME_DAYS")]
    account_lifetime_days: Option<u64>,
    /// Turn every rate limit off, for Pebble-style test set-ups [default: limits on, Buypass's numbers].
    #[arg(long, env = "COBBLE_NO_RATE_LIMITS", num_args = 0..=1, default_missing_value = "true")]
    no_rate_limits: Option<bool>,
    /// Check CAA (RFC 8659/8657) at validation and finalize [default: true].
    #[arg(long, env = "COBBLE_CAA_CHECK", num_args = 0..=1, default_missing_value = "true")]
    caa_check: Option<bool>,
    /// HTTP status of the problem a deactivated account's requests get (Pebble: 403) [default: 401].
    #[arg(long, env = "COBBLE_DEACTIVATED_ACCOUNT_STATUS", value_parser = clap::value_parser!(u16).range(400..=499))]
    deactivated_account_status: Option<u16>,
    /// Log format: `text` for people, `json` for one JSON object a line, with the request's
    /// span fields (request_id, method, path, account) [default: text].
    #[arg(long, env = "COBBLE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Fault knob (repeatable), e.g. `kind=rate-limited,percent=10,endpoint=/acme/new-order`;
    /// kinds: rate-limited, unavailable, internal, bad-nonce, delay, stuck-processing.
    #[arg(long = "fault", value_parser = cobble_server::faults::FaultRule::parse_flag)]
    faults: Vec<cobble_server::faults::FaultRule>,
    /// Seed of every random choice of the test knobs, for reproducible runs [default: random].
    #[arg(long, env = "COBBLE_SEED")]
    seed: Option<u64>,
    /// Plain-HTTP ACME listener for a TLS-terminating proxy in front [default: none].
    #[arg(long, env = "COBBLE_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// Address of a trusted proxy whose X-Forwarded-Proto/Host the plain listener believes (repeatable).
    #[arg(
        long = "trusted-proxy",
        env = "COBBLE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<std::net::IpAddr>,
}

impl ServeArgs {
    /// Layers defaults < file < environment/flags (clap already ranks flags over env).
    fn effective(&self) -> anyhow::Result<ServerConfig> {
        let mut c = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => ServerConfig::default(),
        };
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f.clone() { c.$f = v; } )* };
        }
        set!(
            listen,
            data_dir,
            database_url,
            database_max_connections,
            external_url,
            nonce_lifetime_secs,
            nonce_reject_percent,
            max_body_bytes,
            rsa_min_bits,
            shutdown_grace_secs,
            order_lifetime_secs,
            pending_authz_lifetime_secs,
            valid_authz_lifetime_secs,
            authz_reuse_percent,
            pre_authorization,
            allow_order_validity,
            max_identifiers,
            allow_reserved_names,
            http01_port,
            https01_port,
            tlsalpn01_port,
            validation_workers,
            validation_deadline_secs,
            retention_days,
            validation_timeout_secs,
            va_always_valid,
            va_allow_private,
            va_deny_loopback,
            va_sleep_max_secs,
            finalize_async,
            serve_ca_keys,
            database_acquire_timeout_ms,
            eab_required,
            eab_reusable,
            operator_approval,
            require_documents,
            account_lifetime_days,
            no_rate_limits,
            caa_check,
            deactivated_account_status
        );
        if self.admin_token.is_some() {
            c.admin_token = self.admin_token.clone();
        }
        if !self.faults.is_empty() {
            c.faults = self.faults.clone();
        }
        if self.seed.is_some() {
            c.seed = self.seed;
        }
        if self.http_listen.is_some() {
            c.http_listen = self.http_listen;
        }
        if !self.trusted_proxies.is_empty() {
            c.trusted_proxies = self.trusted_proxies.clone();
        }
        if let Some(a) = self.admin_listen.as_deref() {
            c.admin_listen = if a.is_empty() {
                None
            } else {
                Some(a.parse().with_context(|| format!("--admin-listen {a:?}"))?)
            };
        }
        if let Some(k) = self.ca_key_type.as_deref() {
            c.ca.key_type = cobble_ca::KeyType::from_name(k).with_context(|| {
                format!(
                    "--ca-key-type {k:?} is not one of {}",
                    cobble_ca::KeyType::ALL
                        .iter()
                        .map(|(_, n)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        }
        if let Some(n) = self.chain_length {
            c.ca.chain_length = n;
        }
        if let Some(n) = self.alternate_roots {
            c.ca.alternate_roots = n;
        }
        if self.dns_server.is_some() {
            c.dns_server = self.dns_server;
        }
        if !self.blocked_domains.is_empty() {
            c.blocked_domains = self.blocked_domains.clone();
        }
        if !self.allowed_domains.is_empty() {
            c.allowed_domains = self.allowed_domains.clone();
        }
        if self.tls_cert.is_some() {
            c.tls_cert = self.tls_cert.clone();
            c.tls_key = self.tls_key.clone();
        }
        if self.terms_of_service.is_some() {
            c.terms_of_service = self.terms_of_service.clone();
        }
        if self.website.is_some() {
            c.website = self.website.clone();
        }
        if !self.tls_names.is_empty() {
            c.tls_names = self.tls_names.clone();
        }
        if !self.caa_identities.is_empty() {
            c.caa_identities = self.caa_identities.clone();
        }
        if self.database_url.is_none()
            && let Ok(url) = std::env::var("DATABASE_URL")
            && !url.is_empty()
        {
            c.database_url = url;
        }
        // Pebble's knobs, where Cobble's own setting was not given.
        crate::knobs::pebble_knobs(self, &mut c, crate::knobs::BadKnob::Refuse)?;
        Ok(c)
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = args.effective()?;
    if args.print_config {
        print!("{}", toml::to_string(&cfg)?);
        return Ok(());
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log).context("--log")?;
    if args.log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            // Colours only on a terminal: a log file or a pipe gets plain text.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let (data_dir, admin_listen) = (cfg.data_dir.clone(), cfg.admin_listen);
    let running = cobble_server::start(cfg, Arc::new(SystemClock))
        .await
        .context("starting the server")?;
    // Before the banner, so that whoever waits for "ready" finds the file current.
    record_admin_url(&data_dir, admin_listen, running.admin_url.as_deref())?;
    // The banner is written in one piece and a closed stdout is not an error: a script that
    // reads the directory line and then stops reading (`| head`, a test harness) must not
    // take the server down with a broken pipe.
    let mut banner = format!("Cobble {} is ready\n", env!("CARGO_PKG_VERSION"));
    let mut line = |l: String| {
        banner.push_str(&l);
        banner.push('\n');
    };
    line(format!("  directory:  {}", running.directory_url));
    line(match &running.trust_root {
        Some(p) => format!("  trust root: {}", p.display()),
        None => "  trust root: the operator-supplied --tls-cert chain".to_owned(),
    });
    line(format!(
        "  issuing root: {}",
        running.issuing_root.display()
    ));
    if let Some(u) = &running.admin_url {
        line(format!("  admin:      {u}"));
    }
    line(match &running.admin_token_file {
        Some(p) => format!("  admin token: {}", p.display()),
        None => "  admin token: the one given by --admin-token".to_owned(),
    });
    line(format!("  listening:  {}", running.addr));
    if let Some(a) = running.http_addr {
        line(format!("  plain HTTP: {a} (for a TLS-terminating proxy)"));
    }
    line(format!("  database:   {}", redact(&running.database_url)));
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(banner.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "could not write the ready banner to stdout");
        }
    }
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    running.shutdown().await;
    Ok(())
}

/// Writes `<data-dir>/admin-url`, where `cobble admin` finds the management listener: the
/// URL of the address bound, or no file when the listener is off (a file left by an earlier
/// run would point at a port nobody holds).
fn record_admin_url(
    data_dir: &std::path::Path,
    listen: Option<SocketAddr>,
    served: Option<&str>,
) -> anyhow::Result<()> {
    let path = data_dir.join("admin-url");
    match listen.zip(served).and_then(|(l, u)| local_admin_url(l, u)) {
        Some(url) => std::fs::write(&path, format!("{url}\n"))
            .with_context(|| format!("writing {}", path.display())),
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        },
    }
}

/// The management URL a client on this machine uses: the configured address with the port
/// actually bound (taken from the server's URL, which says `localhost` for 127.0.0.1), an
/// unspecified address (0.0.0.0, ::) replaced by loopback. The HTTPS identity covers
/// 127.0.0.1 and ::1, so the URL verifies against `<data-dir>/tls/ca.pem`.
fn local_admin_url(listen: SocketAddr, served: &str) -> Option<String> {
    let port: u16 = served
        .rsplit_once(':')?
        .1
        .trim_end_matches('/')
        .parse()
        .ok()?;
    let ip = match listen.ip() {
        std::net::IpAddr::V4(a) if a.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(a) if a.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    Some(format!("https://{}", SocketAddr::new(ip, port)))
}

/// Hides a password in a database URL.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_url_file_names_the_bound_port_on_a_reachable_address() {
        let url = |l: &str, u: &str| local_admin_url(l.parse().unwrap(), u);
        for (listen, served, want) in [
            (
                "127.0.0.1:0",
                "https://localhost:40123",
                "https://127.0.0.1:40123",
            ),
            (
                "127.0.0.2:15000",
                "https://localhost:15000",
                "https://127.0.0.2:15000",
            ),
            (
                "0.0.0.0:0",
                "https://0.0.0.0:40124",
                "https://127.0.0.1:40124",
            ),
            ("[::]:0", "https://[::]:40125", "https://[::1]:40125"),
            ("[::1]:15000", "https://[::1]:15000", "https://[::1]:15000"),
            (
                "192.0.2.7:15000",
                "https://192.0.2.7:15000",
                "https://192.0.2.7:15000",
            ),
        ] {
            assert_eq!(
                url(listen, served).as_deref(),
                Some(want),
                "{listen} {served}"
            );
        }
        assert_eq!(url("127.0.0.1:0", "https://localhost"), None);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:1\"\nnonce-lifetime-secs = 5\n").unwrap();
        let args = ServeArgs {
            config: Some(f),
            listen: Some("127.0.0.1:2".parse().unwrap()),
            ..Default::default()
        };
        let c = args.effective().unwrap();
        assert_eq!(c.listen.port(), 2, "flag beats file");
        assert_eq!(c.nonce_lifetime_secs, 5, "file beats default");
        assert_eq!(c.max_body_bytes, 65536, "default");
    }

    #[test]
    fn rate_limits_are_set_in_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        // The README's example, as printed there.
        let readme = include_str!("../../../README.md");
        let section = &readme[readme.find("## Rate limits").unwrap()..];
        let start = section.find("```toml\n").unwrap() + "```toml\n".len();
        let example = &section[start..start + section[start..].find("```").unwrap()];
        std::fs::write(&f, example).unwrap();
        let c = ServeArgs {
            config: Some(f),
            ..Default::default()
        }
        .effective()
        .unwrap();
        assert_eq!(c.rate_limits.certificates_per_domain.count, 50);
        assert!(!c.rate_limits.duplicate_certificates.enabled);
        assert_eq!(c.rate_limits.failed_validations.count, 5);
        assert!(!c.rate_limits.shared_request_rates);
        let o = &c.rate_limits.overrides;
        assert_eq!(o.len(), 2, "{o:?}");
        assert_eq!(o[0].domain.as_deref(), Some("example.com"));
        assert_eq!(o[0].count, Some(200));
        assert_eq!(o[1].external_account.as_deref(), Some("0d5a9c0e-..."));
        assert!(!o[1].enabled);
        for x in o {
            x.subject().unwrap();
        }
        let off = ServeArgs {
            no_rate_limits: Some(true),
            ..Default::default()
        };
        assert!(off.effective().unwrap().no_rate_limits);
    }

    #[test]
    fn unknown_config_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let err = ServeArgs {
            config: Some(f),
            ..Default::default()
        }
        .effective()
        .unwrap_err();
        assert!(format!("{err:#}").contains("lisen"), "{err:#}");
    }
}
