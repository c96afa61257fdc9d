//! Cobble's validation authority: decides whether an ACME challenge passes
//! (RFC 8555 §8.3 http-01, §8.4 dns-01, RFC 8737 tls-alpn-01) and whether CAA
//! allows issuance (RFC 8659, RFC 8657).
//!
//! The server's validation workers build one [`Validator`] per process and call
//! [`Validator::validate`] and [`Validator::check_caa`]. Every failure is a
//! [`Problem`] naming the identifier, ready to store on the challenge.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod addrs;
mod caa;
pub mod caa_eval;
mod dns;
mod dns01;
mod http01;
mod insecure_tls;
mod tlsalpn01;

use cobble_core::challenge::ChallengeType;
use cobble_core::identifier::Identifier;
use cobble_core::netpolicy::AddressPolicy;
use cobble_core::{Problem, ProblemType};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

pub use caa_eval::{CaaDecision, CaaQuery, CaaRecord, evaluate_caa};

/// The `User-Agent` sent on http-01 requests, naming Cobble (RFC 8555 §8.3).
pub const USER_AGENT: &str = concat!("cobble-va/", env!("CARGO_PKG_VERSION"));

/// The ALPN protocol of tls-alpn-01 (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// How the validation authority reaches applicants' servers and DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaConfig {
    /// Port for http-01 requests (RFC 8555 §8.3 says 80; Pebble's default 5002 here).
    pub http01_port: u16,
    /// The https port an http-01 redirect may go to, besides 80 and `http01_port`
    /// (Boulder's `httpsPort`; RFC 8555 §8.3 lets validation follow redirects).
    pub https01_port: u16,
    /// Let an http-01 redirect go to any port (Pebble's validator follows redirects as Go's
    /// HTTP client does), not only 80, `http01_port` and `https01_port` (Boulder's rule).
    pub redirect_any_port: bool,
    /// Port for tls-alpn-01 handshakes (RFC 8737 §3 says 443; Pebble's default 5001 here).
    pub tlsalpn01_port: u16,
    /// DNS server for every lookup; `None` uses the system's resolvers.
    pub dns_server: Option<SocketAddr>,
    /// Limit on each network step: one DNS query, one TCP connect, one response.
    pub timeout: Duration,
    /// Issuer domain names this CA recognises in CAA `issue`/`issuewild` (RFC 8659 §4.2).
    pub caa_identities: Vec<String>,
    /// Which addresses http-01 and tls-alpn-01 may connect to, checked at every hop
    /// (first connection and every redirect) before connecting.
    pub addresses: AddressPolicy,
}

impl Default for VaConfig {
    fn default() -> Self {
        Self {
            http01_port: 5002,
            https01_port: 443,
            redirect_any_port: false,
            tlsalpn01_port: 5001,
            dns_server: None,
            timeout: Duration::from_secs(10),
            caa_identities: vec!["cobble.test".to_owned()],
            addresses: AddressPolicy::default(),
        }
    }
}

/// Why a [`Validator`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VaError {
    /// The system resolver configuration could not be read or the resolver not built.
    #[error("cannot build the DNS resolver: {0}")]
    Resolver(String),
    /// The configuration is unusable.
    #[error("invalid validation configuration: {0}")]
    Config(String),
}

/// The validation authority: cheap to clone (an `Arc` inside), built once per process.
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: VaConfig,
    dns: dns::Dns,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("cfg", &self.inner.cfg)
            .finish()
    }
}

impl Validator {
    /// Builds the resolver (no cache, so a changed record is seen at once) and
    /// installs ring as the process's rustls provider if none is installed yet.
    pub fn new(cfg: VaConfig) -> Result<Self, VaError> {
        if cfg.timeout.is_zero() {
            return Err(VaError::Config("timeout must be positive".into()));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dns = dns::Dns::new(cfg.dns_server, cfg.timeout)?;
        Ok(Self {
            inner: Arc::new(Inner { cfg, dns }),
        })
    }

    /// The configuration this validator was built with.
    pub fn config(&self) -> &VaConfig {
        &self.inner.cfg
    }

    /// Runs one challenge (RFC 8555 §8.3, §8.4, RFC 8737 §3). `Ok` carries the
    /// validation record, a JSON array in Boulder's `validationRecord` shape
    /// (`url`, `hostname`, `port`, `addressesResolved`, `addressUsed`); `Err`
    /// is the problem to store on the challenge, naming the identifier.
    pub async fn validate(
        &self,
        kind: ChallengeType,
        identifier: &Identifier,
        token: &str,
        key_authorization: &str,
    ) -> Result<serde_json::Value, Problem> {
        let span =
            tracing::info_span!("validate", challenge = kind.as_str(), identifier = %identifier);
        let result = async {
            match kind {
                ChallengeType::Dns01 => {
                    dns01::validate(&self.inner.dns, identifier, key_authorization).await
                }
                ChallengeType::Http01 => {
                    http01::validate(&self.inner, identifier, token, key_authorization).await
                }
                ChallengeType::TlsAlpn01 => {
                    tlsalpn01::validate(&self.inner, identifier, key_authorization).await
                }
            }
        }
        .instrument(span)
        .await;
        match &result {
            Ok(_) => tracing::info!(challenge = kind.as_str(), %identifier, "validation passed"),
            Err(p) => {
                tracing::info!(challenge = kind.as_str(), %identifier, problem = %p, "validation failed")
            }
        }
        result.map_err(|p| p.for_identifier(identifier.kind(), &identifier.value()))
    }

    /// RFC 8659 + RFC 8657 CAA check for one identifier: `Ok` when issuance is
    /// allowed (always for `ip` identifiers). A forbidding record gives a `caa`
    /// problem with code `INVALID_DNSCAA` naming the record; a failed lookup a `dns` problem.
    pub async fn check_caa(
        &self,
        identifier: &Identifier,
        wildcard: bool,
        account_uri: &str,
        method: ChallengeType,
    ) -> Result<(), Problem> {
        let result = match identifier {
            Identifier::Ip(_) => Ok(()),
            Identifier::Dns(name) => {
                let wildcard = wildcard || identifier.is_wildcard();
                let base = name.strip_prefix("*.").unwrap_or(name);
                caa::check(&self.inner, base, wildcard, account_uri, method).await
            }
        };
        if let Err(p) = &result {
            tracing::info!(%identifier, problem = %p, "CAA check failed");
        }
        result.map_err(|p| p.for_identifier(identifier.kind(), &identifier.value()))
    }
}

/// A `malformed` problem for a challenge type that cannot validate this identifier
/// (RFC 8555 §7.1.3 wildcards need dns-01; RFC 8738 §7 ip identifiers cannot use dns-01).
fn unsupported(kind: ChallengeType, why: &str) -> Problem {
    Problem::new(
        ProblemType::Malformed,
        format!("{} cannot validate {why}", kind.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workers share one validator and run validations on spawned tasks.
    #[allow(dead_code)]
    fn validator_is_shareable_and_its_futures_spawnable(v: Validator, id: Identifier) {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<Validator>();
        tokio::spawn(async move {
            let _ = v.validate(ChallengeType::Http01, &id, "t", "t.k").await;
            let _ = v.check_caa(&id, false, "acct", ChallengeType::Http01).await;
        });
    }

    #[test]
    fn defaults_match_pebble() {
        let c = VaConfig::default();
        assert_eq!((c.http01_port, c.tlsalpn01_port), (5002, 5001));
        assert_eq!(c.https01_port, 443, "Boulder's httpsPort");
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.caa_identities, ["cobble.test"]);
        assert_eq!(
            c.addresses,
            AddressPolicy::default(),
            "loopback allowed, private refused"
        );
        assert!(USER_AGENT.starts_with("cobble-va/"));
        let zero = VaConfig {
            timeout: Duration::ZERO,
            ..c
        };
        assert!(matches!(Validator::new(zero), Err(VaError::Config(_))));
    }
}
