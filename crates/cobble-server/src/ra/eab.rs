//! External Account Binding (RFC 8555 §7.3.4): the `externalAccountBinding` member of a
//! newAccount payload is a JWS, MACed with the external account's HMAC key, whose payload
//! is the new account's public key.
//!
//! Checked in two pure steps around the store lookup, so that the fuzz target `eab` runs
//! the same code as a request: [`parse_binding`] (shape, header, `alg`, no `nonce`, `url`,
//! the bound key) and [`Binding::verify_mac`] (the MAC, with the key of the account the
//! binding's `kid` names).

use crate::error::AcmeResult;
use crate::state::AppState;
use cobble_core::jwk::{KeyPolicy, PublicKey};
use cobble_core::{Problem, ProblemType, ResultCode, b64};
use cobble_store::ExternalAccount;
use ring::hmac;
use serde::Deserialize;

/// The flattened JWS JSON serialization the binding arrives in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

#[derive(Debug, Deserialize)]
struct EabHeader {
    alg: String,
    kid: String,
    url: String,
    /// Whether the header has a `nonce` member, whatever its value (`null` included).
    #[serde(default, deserialize_with = "present", rename = "nonce")]
    has_nonce: bool,
}

/// True for a member that is there, `null` or not (serde calls it only for those).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// A binding whose shape, header, `url` and bound key are checked; only its MAC is left,
/// which needs the HMAC key of the external account [`Binding::kid`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The external account's key id (the protected header's `kid`).
    pub kid: String,
    /// The MAC algorithm the header names: HS256, HS384 or HS512 (RFC 7518 §3.2).
    pub alg: hmac::Algorithm,
    /// What the MAC is over: `protected.payload`, both as sent (RFC 7515 §5.2).
    pub signing_input: String,
    /// The `signature` member as sent, not yet decoded.
    pub signature: String,
}

fn eab_malformed(why: impl std::fmt::Display) -> Problem {
    Problem::malformed(format!("externalAccountBinding: {why} (RFC 8555 §7.3.4)"))
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str, what: &str) -> Result<T, Problem> {
    let bytes = b64::decode(part).map_err(|_| eab_malformed(format!("{what} is not base64url")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| eab_malformed(format!("{what} is not the expected JSON: {e}")))
}

/// The HMAC key of an external account, as bytes (padding tolerated, as Certigna's
/// instructions warn some tools add it).
fn key_bytes(ea: &ExternalAccount) -> Result<Vec<u8>, Problem> {
    b64::decode(ea.hmac_key.trim_end_matches('=')).map_err(|_| {
        tracing::error!(kid = %ea.kid, "stored EAB key is not base64url");
        Problem::coded(
            ResultCode::AcmeOtherError,
            "the external account's key cannot be read on the server; it has been logged",
        )
    })
}

/// RFC 8555 §7.3.4: checks everything of `binding` that needs no HMAC key, for a newAccount
/// request to `url` whose account key is `account_key`: a flattened JWS, a header with
/// `alg`, `kid` and `url`, an HS* `alg`, no `nonce`, the newAccount `url`, and a payload
/// that is the account key.
pub fn parse_binding(
    binding: &serde_json::Value,
    url: &str,
    account_key: &PublicKey,
) -> Result<Binding, Problem> {
    let f: Flattened = serde_json::from_value(binding.clone()).map_err(|e| {
        eab_malformed(format!(
            "not a flattened JWS with protected, payload and signature: {e}"
        ))
    })?;
    let header: EabHeader = decode_json(&f.protected, "the protected header")?;
    let alg = match header.alg.as_str() {
        "HS256" => hmac::HMAC_SHA256,
        "HS384" => hmac::HMAC_SHA384,
        "HS512" => hmac::HMAC_SHA512,
        other => {
            return Err(Problem::new(
                ProblemType::BadSignatureAlgorithm,
                format!(
                    "externalAccountBinding alg {other:?} is not a MAC this server accepts: HS256, HS384 or HS512"
                ),
            ));
        }
    };
    if header.has_nonce {
        return Err(eab_malformed("the protected header must not carry a nonce"));
    }
    if header.url != url {
        return Err(eab_malformed(format!(
            "the protected header's url {:?} is not the newAccount URL {url:?}",
            header.url
        )));
    }
    let payload: serde_json::Value = decode_json(&f.payload, "the payload")?;
    let bound_key = PublicKey::from_jwk(
        &payload,
        &KeyPolicy {
            rsa_min_bits: 0,
            rsa_max_bits: usize::MAX,
        },
    )
    .map_err(|p| eab_malformed(format!("the payload is not a public JWK: {}", p.detail)))?;
    if bound_key.thumbprint() != account_key.thumbprint() {
        return Err(Problem::unauthorized(
            "externalAccountBinding: the payload is not the key this request is signed with; bind the new account's own public key (RFC 8555 §7.3.4)",
        ));
    }
    Ok(Binding {
        kid: header.kid,
        alg,
        signing_input: format!("{}.{}", f.protected, f.payload),
        signature: f.signature,
    })
}

/// RFC 8555 §7.3.4: the refusal for a binding whose `kid` names no external account.
pub fn not_found(kid: &str) -> Problem {
    Problem::coded(
        ResultCode::ExternalAccountNotFound,
        format!(
            "external account {kid:?} is not known to this CA; check the EAB key id you were given"
        ),
    )
}

impl Binding {
    /// RFC 8555 §7.3.4: checks the MAC with the HMAC key `hmac_key` gives (the key of the
    /// external account [`Binding::kid`] names). The signature is decoded first, so a badly
    /// encoded one is reported before a stored key the server cannot read.
    pub fn verify_mac(
        &self,
        hmac_key: impl FnOnce() -> Result<Vec<u8>, Problem>,
    ) -> Result<(), Problem> {
        let sig = b64::decode(&self.signature)
            .map_err(|_| eab_malformed("the signature is not base64url"))?;
        let key = hmac::Key::new(self.alg, &hmac_key()?);
        hmac::verify(&key, self.signing_input.as_bytes(), &sig).map_err(|_| {
            Problem::unauthorized(format!(
                "externalAccountBinding: the MAC does not verify with the HMAC key of external account {}; check the key you were given (base64url, without padding)",
                self.kid
            ))
        })
    }
}

/// Checks `binding` for a newAccount request to `url` whose account key is `account_key`,
/// and returns the external account it names (in any status: the caller decides).
pub async fn verify(
    s: &AppState,
    binding: &serde_json::Value,
    url: &str,
    account_key: &PublicKey,
) -> AcmeResult<ExternalAccount> {
    let b = parse_binding(binding, url, account_key)?;
    let ea = s
        .store
        .external_account(&b.kid)
        .await?
        .ok_or_else(|| not_found(&b.kid))?;
    b.verify_mac(|| key_bytes(&ea))?;
    Ok(ea)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 8555 §7.3.4: the binding's header has no `nonce`, not even a `null` one (the fuzz
    /// target `eab` found a `null` one accepted: serde read it as an absent member).
    #[test]
    fn a_nonce_member_is_refused_whatever_its_value() {
        let key = PublicKey::from_jwk(
            &json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
            &KeyPolicy::default(),
        )
        .unwrap();
        let url = "https://cobble.test/acme/new-acct";
        let binding = |header: serde_json::Value| {
            json!({
                "protected": b64::encode(header.to_string()),
                "payload": b64::encode(key.to_jwk().to_string()),
                "signature": "",
            })
        };
        let header = json!({"alg": "HS256", "kid": "k", "url": url});
        let b = parse_binding(&binding(header.clone()), url, &key).expect("no nonce");
        assert_eq!(b.kid, "k");
        for nonce in [json!(null), json!("n"), json!(0), json!({})] {
            let mut h = header.clone();
            h["nonce"] = nonce.clone();
            let p = parse_binding(&binding(h), url, &key).unwrap_err();
            assert_eq!((p.kind, p.status), (ProblemType::Malformed, 400), "{nonce}");
            assert!(
                p.detail.contains("must not carry a nonce"),
                "{nonce}: {p:?}"
            );
        }
    }
}
