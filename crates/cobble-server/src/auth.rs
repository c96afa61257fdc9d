//! Authenticating an ACME POST (RFC 8555 §6.2-§6.5): content type, body limit, JWS shape,
//! `url` equal to the request URL, a sealed unexpired nonce, the key (`jwk` or an
//! account's `kid`) and the signature. The nonce is redeemed later, in the handler's
//! store transaction.

use crate::error::AcmeResult;
use crate::state::{ACCOUNT_PREFIX, AppState, Urls};
use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use cobble_core::account::AccountStatus;
use cobble_core::jwk::{KeyPolicy, PublicKey};
use cobble_core::jws::{Jws, KeyRef};
use cobble_core::nonce::{NonceError, OpenedNonce};
use cobble_core::{Problem, ProblemType, ResultCode};

use cobble_store::{Account, Tx};
use std::sync::{Arc, Mutex};

/// Which key reference the endpoint takes (RFC 8555 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// `jwk` only: newAccount.
    Jwk,
    /// `kid` only: everything that acts as an account.
    Kid,
    /// Either: revokeCert (by account, or by the certificate's own key, RFC 8555 §7.6).
    Either,
}

/// A request whose JWS checked out.
pub struct Authed {
    /// The parsed JWS (payload, header).
    pub jws: Jws,
    /// The nonce, sealed and unexpired; not yet redeemed.
    pub nonce: OpenedNonce,
    /// The verified signing key.
    pub key: PublicKey,
    /// The account, for `kid` requests.
    pub account: Option<Account>,
    /// The request's base URL.
    pub base: String,
    /// The client's address.
    pub peer: String,
}

impl Authed {
    /// The account of a `kid` request.
    pub fn account(&self) -> &Account {
        self.account
            .as_ref()
            .expect("kid requests carry an account")
    }
}

/// Where [`AppState::authenticate`] leaves the nonce of a request whose signature
/// verified, so that the common layer can use it up if the handler fails (RFC 8555
/// §6.5: a nonce is good for one request, whatever its outcome). Put into every request's
/// extensions by the common layer.
#[derive(Clone, Default)]
pub struct NonceSlot(Arc<Mutex<Option<OpenedNonce>>>);

impl NonceSlot {
    fn put(&self, nonce: OpenedNonce) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(nonce);
    }

    /// The verified request's nonce, if authentication got that far.
    pub fn take(&self) -> Option<OpenedNonce> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The problem for a request by an account that is no longer valid (RFC 8555 §7.3.6).
pub fn inactive_account(account: &Account) -> Problem {
    inactive(&account.id, account.status)
}

/// [`inactive_account`] for an account id and the status it has.
pub fn inactive(id: &str, status: AccountStatus) -> Problem {
    match status {
        AccountStatus::Revoked => Problem::coded(
            ResultCode::RevokedAccount,
            format!("account {id} has been revoked; create a new account"),
        ),
        _ => Problem::coded(
            ResultCode::DeactivatedAccount,
            format!("account {id} is deactivated and can no longer be used"),
        ),
    }
}

impl AppState {
    /// Runs every check of RFC 8555 §6.2-§6.4 on `req` and returns the authenticated request.
    pub async fn authenticate(&self, req: Request, mode: KeyMode) -> AcmeResult<Authed> {
        let (mut parts, body) = req.into_parts();
        let slot = parts.extensions.remove::<NonceSlot>();
        let base = self.base_url(&parts.headers, &parts.uri);
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_default();

        let ctype = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media = ctype.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/jose+json") {
            return Err(Problem::malformed(format!(
                "Content-Type must be application/jose+json (RFC 8555 §6.2), not {:?}",
                ctype
            ))
            .with_status(415)
            .into());
        }
        let limit = self.cfg.max_body_bytes;
        let bytes = axum::body::to_bytes(Body::new(body), limit)
            .await
            .map_err(|_| {
                Problem::malformed(format!("request body is larger than {limit} bytes"))
                    .with_status(413)
            })?;
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let want_url = Urls(&base).path(path);
        let base_ref = &base;
        let (jws, nonce, key, account) = verify_request(
            &bytes,
            &want_url,
            mode,
            &self.key_policy,
            |text| self.open_nonce(text),
            |kid| async move {
                let account = self.account_for_kid(base_ref, &kid).await?;
                let key = stored_account_key(&account.id, &account.jwk)?;
                Ok((account, key))
            },
        )
        .await?;
        // The signature verified: from here on the nonce is used up whatever happens next.
        if let Some(slot) = slot {
            slot.put(nonce.clone());
        }
        if let Some(a) = &account {
            tracing::Span::current().record("account", a.id.as_str());
        }
        Ok(Authed {
            jws,
            nonce,
            key,
            account,
            base,
            peer,
        })
    }

    /// Opens a request's nonce now (RFC 8555 §6.5): sealed by this server and unexpired,
    /// then refused on purpose for `--nonce-reject-percent` of requests.
    fn open_nonce(&self, nonce_text: &str) -> AcmeResult<OpenedNonce> {
        let nonce = self
            .sealer
            .open(nonce_text, self.clock.now_ms())
            .map_err(|e| match e {
                NonceError::Expired => Problem::bad_nonce(
                    "it has expired; retry with the fresh nonce in this response",
                ),
                other => Problem::bad_nonce(format!(
                    "{other}; retry with the fresh nonce in this response"
                )),
            })?;
        // A knob at 0 draws nothing from the seeded sequence.
        if self.faults.roll(self.cfg.nonce_reject_percent as f64) {
            return Err(Problem::bad_nonce(
                "rejected on purpose (nonce-reject-percent test knob); retry with the fresh nonce",
            )
            .into());
        }
        Ok(nonce)
    }

    /// Opens the request's one store transaction with its nonce redeemed inside it
    /// (RFC 8555 §6.5), so the nonce commits with the request's change or not at all.
    pub async fn begin(&self, r: &Authed) -> AcmeResult<Tx> {
        Ok(self.store.begin_redeeming(&r.nonce).await?)
    }

    /// Loads the valid account a `kid` names.
    async fn account_for_kid(&self, base: &str, kid: &str) -> AcmeResult<Account> {
        let id = account_id_of_kid(base, kid)?;
        let account = self.store.account(id).await?.ok_or_else(|| {
            Problem::new(
                ProblemType::AccountDoesNotExist,
                format!("account {kid} does not exist"),
            )
        })?;
        if account.status != AccountStatus::Valid {
            let mut p = inactive_account(&account);
            if account.status == AccountStatus::Deactivated {
                p = p.with_status(self.cfg.deactivated_account_status);
            }
            return Err(p.into());
        }
        Ok(account)
    }
}

/// The checks of RFC 8555 §6.2-§6.4 on a request body, in the server's order, with no I/O
/// of their own: the JWS parsed under `key_policy`, its `url` equal to `want_url`, its nonce
/// opened by `open_nonce`, the key taken from `jwk` or, for `kid`, from `account_for_kid`
/// (given the kid), and the signature verified with that key. [`AppState::authenticate`]
/// runs it with the store's account lookup; the fuzz target `auth` with fixed keys.
pub async fn verify_request<A, F>(
    body: &[u8],
    want_url: &str,
    mode: KeyMode,
    key_policy: &KeyPolicy,
    open_nonce: impl FnOnce(&str) -> AcmeResult<OpenedNonce>,
    account_for_kid: impl FnOnce(String) -> F,
) -> AcmeResult<(Jws, OpenedNonce, PublicKey, Option<A>)>
where
    F: Future<Output = AcmeResult<(A, PublicKey)>>,
{
    let jws = Jws::parse(body, key_policy)?;
    if jws.protected.url != want_url {
        return Err(Problem::unauthorized(format!(
            "JWS \"url\" {:?} does not match the request URL {want_url:?} (RFC 8555 §6.4)",
            jws.protected.url
        ))
        .into());
    }
    let nonce_text = jws.protected.nonce.as_deref().ok_or_else(|| {
        Problem::bad_nonce(
            "the protected header has no \"nonce\"; get one from newNonce (RFC 8555 §6.5)",
        )
    })?;
    let nonce = open_nonce(nonce_text)?;
    let (key, account) = match (&jws.protected.key, mode) {
        (KeyRef::Jwk(k), KeyMode::Jwk | KeyMode::Either) => (k.clone(), None),
        (KeyRef::Kid(kid), KeyMode::Kid | KeyMode::Either) => {
            let (account, key) = account_for_kid(kid.clone()).await?;
            (key, Some(account))
        }
        (KeyRef::Kid(_), KeyMode::Jwk) => {
            return Err(Problem::malformed(
                "this request must carry the account key as \"jwk\", not \"kid\" (RFC 8555 §6.2)",
            )
            .into());
        }
        (KeyRef::Jwk(_), KeyMode::Kid) => {
            return Err(Problem::malformed("this request must name the account with \"kid\", not embed a \"jwk\" (RFC 8555 §6.2)").into());
        }
    };
    jws.verify(&key)?;
    Ok((jws, nonce, key, account))
}

/// The account id a `kid` names: `<base>/acme/acct/<id>` with a non-empty id and no
/// further path (RFC 8555 §6.2, §7.3).
pub fn account_id_of_kid<'k>(base: &str, kid: &'k str) -> Result<&'k str, Problem> {
    let prefix = Urls(base).path(ACCOUNT_PREFIX);
    kid.strip_prefix(&prefix)
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| {
            Problem::malformed(format!(
                "JWS \"kid\" {kid:?} is not an account URL of this server (expected {prefix}<id>)"
            ))
        })
}

/// An account's stored key (its JWK text), loaded without the key-size policy so that
/// accounts made under an older policy still work; unreadable is the operator's problem.
pub fn stored_account_key(account_id: &str, jwk: &str) -> Result<PublicKey, Problem> {
    let jwk: serde_json::Value = serde_json::from_str(jwk).map_err(|e| {
        tracing::error!(account = %account_id, error = %e, "stored account key is unreadable");
        Problem::internal(format!(
            "the stored key of account {account_id} cannot be read; the operator has been told"
        ))
    })?;
    PublicKey::from_jwk(
        &jwk,
        &KeyPolicy {
            rsa_min_bits: 0,
            rsa_max_bits: usize::MAX,
        },
    )
}
