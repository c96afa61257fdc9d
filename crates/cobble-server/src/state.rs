//! Shared per-process state: config, store, nonce sealer, clock.

use crate::config::ServerConfig;
use axum::http::HeaderMap;
use cobble_core::clock::Clock;
use cobble_core::jwk::KeyPolicy;
use cobble_core::nonce::NonceSealer;
use cobble_store::Store;
use std::sync::Arc;

/// The profile an order asked for, or the default (the first configured).
impl Inner {
    /// Looks a profile up by name; `None` picks the default.
    pub fn profile(&self, name: Option<&str>) -> Option<&cobble_ca::Profile> {
        match name {
            None => self.cfg.profiles.first(),
            Some(n) => self.cfg.profiles.iter().find(|p| p.name == n),
        }
    }
}

/// Cheap-to-clone handle on the process's state.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

/// The state itself.
pub struct Inner {
    /// Configuration.
    pub cfg: ServerConfig,
    /// Storage.
    pub store: Store,
    /// Nonce minting and checking, with the key shared through the store.
    pub sealer: NonceSealer,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Account key limits.
    pub key_policy: KeyPolicy,
    /// This start's random directory entry name (Boulder does the same, so clients don't hard-code the object).
    pub random_dir_key: String,
    /// The listener's own address, for URLs when a request has no usable Host.
    pub fallback_authority: String,
    /// Identifier policy.
    pub id_policy: cobble_core::policy::IdentifierPolicy,
    /// This process's validations: the budget in flight, the wake-up of the dispatcher,
    /// the in-process handoff of new jobs.
    pub validations: crate::worker::Validations,
    /// The CA hierarchy.
    pub ca: Arc<cobble_ca::Hierarchy>,
    /// Challenge and CAA checks (finalize re-checks stale CAA).
    pub validator: Arc<dyn crate::validate::ChallengeValidator>,
    /// The admin API token (`Authorization: Bearer`).
    pub admin_token: String,
    /// This process's random id: its workers hold job leases under names made from it.
    pub instance_id: String,
    /// Issuance tasks running in this process (aborted at shutdown; their leases hand the
    /// jobs to another worker).
    pub issuing: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
    /// This instance's CRL (revocation generation it was made at, made ms, DER), remade when
    /// stale or when the store's revocation generation moved on.
    pub crl: tokio::sync::Mutex<Option<(i64, i64, Vec<u8>)>>,
    /// This instance's Prometheus metrics (`/metrics` on the management listener).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The fault knobs and the seeded generator of every test knob's random choice.
    pub faults: Arc<crate::faults::Faults>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Inner {
    /// Mints a nonce now.
    pub fn mint_nonce(&self) -> String {
        self.sealer.mint(self.clock.now_ms())
    }

    /// The base URL outside any request (workers): the external URL, else the listener's.
    pub fn account_base(&self) -> String {
        if self.cfg.external_url.is_empty() {
            format!("https://{}", self.fallback_authority)
        } else {
            self.cfg.external_url.trim_end_matches('/').to_owned()
        }
    }

    /// The base URL of this request: the configured external URL, else `https://<Host>`.
    pub fn base_url(&self, headers: &HeaderMap, uri: &axum::http::Uri) -> String {
        if !self.cfg.external_url.is_empty() {
            return self.cfg.external_url.trim_end_matches('/').to_owned();
        }
        let host = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                headers
                    .get(axum::http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .filter(|h| {
                !h.is_empty()
                    && h.len() <= 255
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
            })
            .unwrap_or_else(|| self.fallback_authority.clone());
        format!("https://{host}")
    }
}

/// The URLs of every ACME resource under a base URL.
pub struct Urls<'a>(pub &'a str);

impl Urls<'_> {
    /// The path of newNonce (RFC 8555 §7.2), the one GET resource whose answers carry a nonce.
    pub const NEW_NONCE_PATH: &'static str = "/acme/new-nonce";

    /// Directory (RFC 8555 §7.1.1).
    pub fn directory(&self) -> String {
        format!("{}/dir", self.0)
    }
    /// An account (§7.3).
    pub fn account(&self, id: &str) -> String {
        format!("{}{}{id}", self.0, ACCOUNT_PREFIX)
    }
    /// An account's orders list (§7.1.2.1).
    pub fn account_orders(&self, id: &str) -> String {
        format!("{}{}{id}/orders", self.0, ACCOUNT_PREFIX)
    }
    /// An order (§7.1.3).
    pub fn order(&self, id: &str) -> String {
        format!("{}/acme/order/{id}", self.0)
    }
    /// An order's finalize URL (§7.4).
    pub fn finalize(&self, id: &str) -> String {
        format!("{}/acme/order/{id}/finalize", self.0)
    }
    /// An authorization (§7.1.4).
    pub fn authz(&self, id: &str) -> String {
        format!("{}/acme/authz/{id}", self.0)
    }
    /// A challenge (§7.1.5).
    pub fn challenge(&self, id: &str) -> String {
        format!("{}/acme/chall/{id}", self.0)
    }
    /// A certificate (§7.4.2); `alt` > 0 picks the chain to alternate root `alt`.
    pub fn certificate(&self, id: &str, alt: usize) -> String {
        if alt == 0 {
            format!("{}/acme/cert/{id}", self.0)
        } else {
            format!("{}/acme/cert/{id}/{alt}", self.0)
        }
    }
    /// Any path under the base.
    pub fn path(&self, p: &str) -> String {
        format!("{}{p}", self.0)
    }
}

/// Path prefix of account URLs.
pub const ACCOUNT_PREFIX: &str = "/acme/acct/";
