//! The server's configuration: one struct, its defaults in one place. The `cobble` binary
//! fills it from a TOML file, `COBBLE_*` variables and flags.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `cobble serve` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerConfig {
    /// Address of the ACME HTTPS listener.
    pub listen: SocketAddr,
    /// Where Cobble keeps its files (database, HTTPS trust root).
    pub data_dir: PathBuf,
    /// `sqlite://PATH`, `sqlite::memory:` or `postgres://...`; empty means `<data-dir>/cobble.db`.
    pub database_url: String,
    /// Most database connections (PostgreSQL pool, or SQLite readers).
    pub database_max_connections: u32,
    /// Base URL clients reach Cobble at (e.g. behind a load balancer); empty means `https://<Host header>`.
    pub external_url: String,
    /// HTTPS certificate chain (PEM) to serve instead of the generated one.
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Extra DNS names or IP addresses for the generated HTTPS certificate.
    pub tls_names: Vec<String>,
    /// Nonce lifetime in seconds (RFC 8555 §6.5).
    pub nonce_lifetime_secs: u64,
    /// Percentage of valid nonces refused with `badNonce`, to test client retries (Pebble's PEBBLE_WFE_NONCEREJECT).
    pub nonce_reject_percent: u8,
    /// Terms of service URL: unset serves Cobble's own at `/terms`; empty means none (agreement not required).
    pub terms_of_service: Option<String>,
    /// `meta.website`: unset points at Cobble's own page at `/`; empty means none.
    pub website: Option<String>,
    /// `meta.caaIdentities`: the issuer domain names CAA `issue` records must name (RFC 8659).
    pub caa_identities: Vec<String>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Smallest accepted RSA account key, in bits.
    pub rsa_min_bits: usize,
    /// Page size of the account's orders list (RFC 8555 §7.1.2.1).
    pub orders_per_page: usize,
    /// How long in-flight requests may take to finish at shutdown, in seconds.
    pub shutdown_grace_secs: u64,
    /// Order lifetime in seconds.
    pub order_lifetime_secs: u64,
    /// Lifetime of a pending authorization, in seconds.
    pub pending_authz_lifetime_secs: u64,
    /// Lifetime of a valid authorization, in seconds (how long it can be reused).
    pub valid_authz_lifetime_secs: u64,
    /// Percentage of still-valid authorizations reused by new orders of the same account (PEBBLE_AUTHZREUSE).
    pub authz_reuse_percent: u8,
    /// Offer `newAuthz` (RFC 8555 §7.4.1 pre-authorization).
    pub pre_authorization: bool,
    /// Accept `notBefore`/`notAfter` in newOrder.
    pub allow_order_validity: bool,
    /// Most identifiers in one order.
    pub max_identifiers: usize,
    /// Domains (and their subdomains) this CA refuses.
    pub blocked_domains: Vec<String>,
    /// When not empty, the only domains (and subdomains) this CA accepts.
    pub allowed_domains: Vec<String>,
    /// Accept special-use names such as .local and .internal (.test, .example, .invalid, localhost always are).
    pub allow_reserved_names: bool,
    /// Port http-01 validation connects to.
    pub http01_port: u16,
    /// The https port an http-01 redirect may go to, besides 80 and `http01_port` (Boulder's `httpsPort`).
    pub https01_port: u16,
    /// Let an http-01 redirect go to any port, as Pebble's validator does (the Pebble
    /// drop-in); otherwise only 80, `http01_port` and `https01_port` (Boulder's rule).
    pub va_redirect_any_port: bool,
    /// Port tls-alpn-01 validation connects to.
    pub tlsalpn01_port: u16,
    /// DNS server for validation and CAA, e.g. 127.0.0.1:8053; unset uses the system's resolvers.
    pub dns_server: Option<SocketAddr>,
    /// Validations in flight per process: a budget, not a fixed pool, so slow targets do
    /// not hold up everyone else's challenges.
    pub validation_workers: usize,
    /// One validation's overall deadline, every step included, in seconds (kept below
    /// three quarters of the lease).
    pub validation_deadline_secs: u64,
    /// Timeout of each network step of a validation, in seconds.
    pub validation_timeout_secs: u64,
    /// Skip network checks and pass every validation (PEBBLE_VA_ALWAYS_VALID).
    pub va_always_valid: bool,
    /// Let validation connect to RFC 1918, CGNAT (RFC 6598) and ULA (RFC 4193) addresses, and accept
    /// such `ip` identifiers, for lab networks; link-local and metadata addresses stay refused.
    pub va_allow_private: bool,
    /// Refuse loopback addresses in validation and `ip` identifiers, for public-facing deployments.
    pub va_deny_loopback: bool,
    /// Delay each validation by a random time up to this many seconds, so clients learn to poll (PEBBLE_VA_SLEEPTIME; 0 = none).
    pub va_sleep_max_secs: u64,
    /// How long a worker holds a validation job before another may take it over, in seconds.
    pub validation_lease_secs: u64,
    /// How often idle workers look for jobs queued by other instances, in milliseconds.
    pub validation_poll_ms: u64,
    /// Management listener (roots, intermediates, certificate status; HTTPS); unset turns it off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<SocketAddr>,
    /// The admin API token; unset uses `<data-dir>/admin-token`, made (mode 0600) at first start.
    /// Never printed by `--print-config`.
    #[serde(skip_serializing)]
    pub admin_token: Option<String>,
    /// Serve the private keys of a generated CA on the management listener (with the token),
    /// as Pebble's test set-ups expect; an operator-supplied CA's keys are never served.
    pub serve_ca_keys: bool,
    /// Serve Pebble's management routes exactly as Pebble 2.4 does, without the token (the
    /// Pebble drop-in only; not a config-file setting).
    #[serde(skip)]
    pub pebble_management: bool,
    /// How long a request waits for a free database connection before it gets 503, in ms.
    pub database_acquire_timeout_ms: u64,
    /// The CA hierarchy made at first start (key type, chain length, alternate roots).
    pub ca: cobble_ca::CaConfig,
    /// An existing CA to issue from instead: root PEM, intermediates PEM (the leaf's issuer first) and the issuing key PEM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_files: Option<CaFiles>,
    /// Certificate profiles (draft-ietf-acme-profiles); the first is the default.
    pub profiles: Vec<cobble_ca::Profile>,
    /// Answer finalize at once with `processing` and sign in the background (Pebble's way), so clients exercise polling.
    pub finalize_async: bool,
    /// How long an instance holds an issuance job before another may take it over, in seconds.
    pub issuance_lease_secs: u64,
    /// Test hook: wait this long before signing, in ms, so a test can kill an instance mid-issuance.
    pub issuance_pause_ms: u64,
    /// Revocation reason codes clients may give (RFC 8555 §7.6, RFC 5280 §5.3.1).
    pub revocation_reasons: Vec<u8>,
    /// Re-check CAA at finalize for authorizations validated longer ago than this, in seconds.
    pub caa_recheck_secs: u64,
    /// How long a CRL is current (its nextUpdate), in seconds; it is also remade on every revocation.
    pub crl_lifetime_secs: u64,
    /// Days expired orders and authorizations (and expired certificates) are kept before
    /// housekeeping deletes them.
    pub retention_days: u64,
    /// Refuse newAccount without `externalAccountBinding` (RFC 8555 §7.3.4); sets
    /// `meta.externalAccountRequired`.
    pub eab_required: bool,
    /// Let one EAB key bind many ACME account keys, as Pebble does; by default a key binds one.
    pub eab_reusable: bool,
    /// Pre-made EAB keys, kid -> base64url HMAC key (Pebble's `externalAccountMACKeys`);
    /// each becomes a valid external account at start, if not already there.
    pub eab_mac_keys: std::collections::BTreeMap<String, String>,
    /// New ACME accounts wait for an operator's approval before they may order.
    pub operator_approval: bool,
    /// Orders need the organization's documents on record and in date.
    pub require_documents: bool,
    /// ACME accounts expire this many days after creation (EXPIRED_ACCOUNT); 0 = never.
    pub account_lifetime_days: u64,
    /// Turns every rate limit off (Pebble-style test set-ups).
    pub no_rate_limits: bool,
    /// The rate limits (Buypass's numbers by default).
    pub rate_limits: cobble_core::ratelimit::RateLimits,
    /// Check CAA (RFC 8659, RFC 8657) at validation and finalize; the Pebble drop-in turns
    /// it off (Pebble checks no CAA) unless its config names `caaIdentities`.
    pub caa_check: bool,
    /// HTTP status of the `unauthorized` problem a deactivated account's requests get
    /// (RFC 8555 §7.3.6 names no status; Cobble says 401, Pebble 403).
    pub deactivated_account_status: u16,
    /// Fault knobs (`[[faults]]`): injected 429/503/500/badNonce answers, delays and stuck
    /// orders, per endpoint and by percentage; replaceable at run time (`/admin/faults`).
    pub faults: Vec<crate::faults::FaultRule>,
    /// Seed of every random choice of the test knobs (faults, delays, nonce rejection,
    /// authorization reuse, validation sleep); unset picks one at random.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// A plain-HTTP ACME listener for a TLS-terminating proxy in front; unset means none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<SocketAddr>,
    /// Peers whose X-Forwarded-Proto/X-Forwarded-Host the plain listener believes.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:14000".parse().expect("valid"),
            data_dir: PathBuf::from("cobble-data"),
            database_url: String::new(),
            database_max_connections: 16,
            external_url: String::new(),
            tls_cert: None,
            tls_key: None,
            tls_names: Vec::new(),
            nonce_lifetime_secs: 3600,
            nonce_reject_percent: 0,
            terms_of_service: None,
            website: None,
            caa_identities: vec!["cobble.test".into()],
            max_body_bytes: 64 * 1024,
            rsa_min_bits: 2048,
            orders_per_page: 50,
            shutdown_grace_secs: 10,
            order_lifetime_secs: 7 * 86_400,
            pending_authz_lifetime_secs: 7 * 86_400,
            valid_authz_lifetime_secs: 30 * 86_400,
            authz_reuse_percent: 100,
            pre_authorization: true,
            allow_order_validity: false,
            max_identifiers: 100,
            blocked_domains: Vec::new(),
            allowed_domains: Vec::new(),
            allow_reserved_names: false,
            http01_port: 5002,
            https01_port: 443,
            tlsalpn01_port: 5001,
            dns_server: None,
            validation_workers: 64,
            validation_deadline_secs: 60,
            validation_timeout_secs: 10,
            va_always_valid: false,
            va_allow_private: false,
            va_redirect_any_port: false,
            va_deny_loopback: false,
            va_sleep_max_secs: 0,
            validation_lease_secs: 120,
            validation_poll_ms: 500,
            admin_listen: Some("127.0.0.1:15000".parse().expect("valid")),
            admin_token: None,
            serve_ca_keys: false,
            pebble_management: false,
            database_acquire_timeout_ms: 2000,
            ca: cobble_ca::CaConfig::default(),
            ca_files: None,
            profiles: cobble_ca::Profile::defaults(),
            finalize_async: false,
            issuance_lease_secs: 60,
            issuance_pause_ms: 0,
            revocation_reasons: vec![0, 1, 3, 4, 5, 9],
            caa_recheck_secs: 8 * 3600,
            crl_lifetime_secs: 24 * 3600,
            retention_days: 30,
            eab_required: false,
            eab_reusable: false,
            eab_mac_keys: Default::default(),
            operator_approval: false,
            require_documents: false,
            account_lifetime_days: 0,
            no_rate_limits: false,
            rate_limits: Default::default(),
            caa_check: true,
            deactivated_account_status: 401,
            faults: Vec::new(),
            seed: None,
            http_listen: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// The database URL in effect: the configured one, or the SQLite file in the data dir.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("cobble.db").display())
        } else {
            self.database_url.clone()
        }
    }
}

impl ServerConfig {
    /// The identifier policy these settings make.
    pub fn identifier_policy(&self) -> cobble_core::policy::IdentifierPolicy {
        cobble_core::policy::IdentifierPolicy {
            max_identifiers: self.max_identifiers,
            blocked_domains: self.blocked_domains.clone(),
            allowed_domains: self.allowed_domains.clone(),
            allow_reserved: self.allow_reserved_names,
            addresses: self.address_policy(),
            ..Default::default()
        }
    }

    /// The validation address policy these settings make: one policy for every validation
    /// hop and for `ip` identifiers at newOrder.
    pub fn address_policy(&self) -> cobble_core::netpolicy::AddressPolicy {
        cobble_core::netpolicy::AddressPolicy {
            allow_private: self.va_allow_private,
            deny_loopback: self.va_deny_loopback,
        }
    }
}

/// PEM files of an operator-supplied CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CaFiles {
    /// The root certificate.
    pub root: PathBuf,
    /// The intermediates, the leaf's issuer first; absent when the root signs leaves.
    pub intermediates: Option<PathBuf>,
    /// The private key of the certificate that signs leaves (PKCS#8, or PKCS#1 RSA).
    pub issuer_key: PathBuf,
}
