//! ACME's JWS profile (RFC 8555 §6.2, RFC 7515, RFC 8037): flattened JSON serialization,
//! a protected header with `alg`, `nonce`, `url` and exactly one of `jwk`/`kid`, and
//! signature verification for RS256, ES256, ES384, ES512 and EdDSA (Ed25519): ring for
//! all but ES512 (ring has no P-521; the p521 crate does that one).

use crate::b64;
use crate::jwk::{Curve, KeyPolicy, PublicKey};
use crate::problem::{Problem, ProblemType};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The signature algorithms Cobble verifies, as listed in `badSignatureAlgorithm` problems.
pub const ALGORITHMS: &[&str] = &["RS256", "ES256", "ES384", "ES512", "EdDSA"];

/// A JWS signature algorithm Cobble accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// ECDSA P-521 with SHA-512.
    Es512,
    /// Ed25519 (RFC 8037).
    EdDsa,
}

impl Alg {
    /// Parses an `alg` value; anything outside [`ALGORITHMS`] is `badSignatureAlgorithm`.
    pub fn parse(name: &str) -> Result<Self, Problem> {
        Ok(match name {
            "RS256" => Alg::Rs256,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "ES512" => Alg::Es512,
            "EdDSA" => Alg::EdDsa,
            other => {
                let mut p = Problem::new(
                    ProblemType::BadSignatureAlgorithm,
                    format!(
                        "JWS algorithm {other:?} is not accepted; use one of {}",
                        ALGORITHMS.join(", ")
                    ),
                );
                p.algorithms = ALGORITHMS;
                return Err(p);
            }
        })
    }

    /// Whether `key` is of the type this algorithm signs with.
    fn fits(self, key: &PublicKey) -> bool {
        matches!(
            (self, key),
            (Alg::Rs256, PublicKey::Rsa { .. })
                | (
                    Alg::Es256,
                    PublicKey::Ec {
                        curve: Curve::P256,
                        ..
                    }
                )
                | (
                    Alg::Es384,
                    PublicKey::Ec {
                        curve: Curve::P384,
                        ..
                    }
                )
                | (
                    Alg::Es512,
                    PublicKey::Ec {
                        curve: Curve::P521,
                        ..
                    }
                )
                | (Alg::EdDsa, PublicKey::Ed25519 { .. })
        )
    }
}

/// How the JWS names its signing key (RFC 8555 §6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// An embedded public key: newAccount, revokeCert by certificate key, keyChange's inner JWS.
    Jwk(PublicKey),
    /// An account URL.
    Kid(String),
}

/// The checked protected header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    /// The signature algorithm.
    pub alg: Alg,
    /// The anti-replay nonce, if present (the outer JWS must carry one).
    pub nonce: Option<String>,
    /// The URL the request was sent to.
    pub url: String,
    /// The signing key.
    pub key: KeyRef,
}

/// A parsed flattened JWS whose signature has not been verified yet.
#[derive(Debug, Clone)]
pub struct Jws {
    /// The protected header.
    pub protected: Protected,
    /// The raw (decoded) payload; empty for POST-as-GET.
    pub payload: Vec<u8>,
    payload_b64_empty: bool,
    signing_input: Vec<u8>,
    signature_b64: String,
}

fn str_member<'a>(m: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Problem> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Problem::malformed(format!(
            "JWS protected header member {name:?} must be a string"
        ))),
    }
}

impl Jws {
    /// Parses a request body as a flattened JWS (RFC 7515 §7.2.2) and checks the protected
    /// header's shape. Any key it embeds is checked against `policy`.
    pub fn parse(body: &[u8], policy: &KeyPolicy) -> Result<Self, Problem> {
        let outer: Value = serde_json::from_slice(body)
            .map_err(|e| Problem::malformed(format!("request body is not valid JSON: {e}")))?;
        let outer = outer
            .as_object()
            .ok_or_else(|| Problem::malformed("request body must be a JWS JSON object"))?;
        if outer.contains_key("signatures") {
            return Err(Problem::malformed(
                "JWS general serialization is not accepted; use the flattened JSON serialization (RFC 8555 §6.2)",
            ));
        }
        if outer.contains_key("header") {
            return Err(Problem::malformed(
                "JWS unprotected header is not allowed (RFC 8555 §6.2)",
            ));
        }
        let field = |name: &str| -> Result<&str, Problem> {
            match outer.get(name) {
                Some(Value::String(s)) => Ok(s),
                Some(_) => Err(Problem::malformed(format!(
                    "JWS member {name:?} must be a string"
                ))),
                None => Err(Problem::malformed(format!(
                    "JWS is missing the {name:?} member"
                ))),
            }
        };
        let protected_b64 = field("protected")?;
        let payload_b64 = field("payload")?;
        let signature_b64 = field("signature")?;

        let protected_raw = b64::decode(protected_b64)
            .map_err(|_| Problem::malformed("JWS protected header is not base64url"))?;
        let header: Value = serde_json::from_slice(&protected_raw)
            .map_err(|e| Problem::malformed(format!("JWS protected header is not JSON: {e}")))?;
        let header = header
            .as_object()
            .ok_or_else(|| Problem::malformed("JWS protected header must be a JSON object"))?;
        let payload = b64::decode(payload_b64)
            .map_err(|_| Problem::malformed("JWS payload is not base64url"))?;
        if b64::decode(signature_b64).is_err() {
            return Err(Problem::malformed("JWS signature is not base64url"));
        }

        let alg = str_member(header, "alg")?
            .ok_or_else(|| Problem::malformed("JWS protected header has no \"alg\""))?;
        let alg = Alg::parse(alg)?;
        if header.contains_key("crit") || header.contains_key("b64") {
            return Err(Problem::malformed(
                "JWS \"crit\" and \"b64\" header parameters are not supported (RFC 8555 §6.2)",
            ));
        }
        let nonce = str_member(header, "nonce")?.map(str::to_owned);
        let url = str_member(header, "url")?
            .ok_or_else(|| {
                Problem::malformed("JWS protected header has no \"url\" (RFC 8555 §6.4)")
            })?
            .to_owned();
        let key = match (header.get("jwk"), str_member(header, "kid")?) {
            (Some(_), Some(_)) => {
                return Err(Problem::malformed(
                    "JWS protected header must have exactly one of \"jwk\" and \"kid\", not both",
                ));
            }
            (None, None) => {
                return Err(Problem::malformed(
                    "JWS protected header must have one of \"jwk\" or \"kid\"",
                ));
            }
            (Some(jwk), None) => KeyRef::Jwk(PublicKey::from_jwk(jwk, policy)?),
            (None, Some(kid)) => KeyRef::Kid(kid.to_owned()),
        };
        if let KeyRef::Jwk(k) = &key
            && !alg.fits(k)
        {
            return Err(Problem::malformed(format!(
                "JWS algorithm {:?} does not match the {} key",
                alg,
                k.describe()
            )));
        }

        let mut signing_input = Vec::with_capacity(protected_b64.len() + payload_b64.len() + 1);
        signing_input.extend_from_slice(protected_b64.as_bytes());
        signing_input.push(b'.');
        signing_input.extend_from_slice(payload_b64.as_bytes());
        Ok(Jws {
            protected: Protected {
                alg,
                nonce,
                url,
                key,
            },
            payload,
            payload_b64_empty: payload_b64.is_empty(),
            signing_input,
            signature_b64: signature_b64.to_owned(),
        })
    }

    /// Verifies the signature with `key` (the embedded `jwk`, or the account's key for `kid`).
    pub fn verify(&self, key: &PublicKey) -> Result<(), Problem> {
        let alg = self.protected.alg;
        if !alg.fits(key) {
            return Err(Problem::malformed(format!(
                "JWS algorithm {alg:?} does not match the account's {} key",
                key.describe()
            )));
        }
        let Ok(sig) = b64::decode(&self.signature_b64) else {
            return Err(Problem::malformed("JWS signature is not base64url"));
        };
        let msg = &self.signing_input;
        let ok = match key {
            PublicKey::Rsa { n, e } => ring::signature::RsaPublicKeyComponents { n, e }
                .verify(
                    &ring::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                    msg,
                    &sig,
                )
                .is_ok(),
            PublicKey::Ec {
                curve: Curve::P521,
                x,
                y,
            } => verify_es512(x, y, &sig, msg),
            PublicKey::Ec { curve, x, y } => {
                let alg = if *curve == Curve::P256 {
                    &ring::signature::ECDSA_P256_SHA256_FIXED
                } else {
                    &ring::signature::ECDSA_P384_SHA384_FIXED
                };
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(4);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                ring::signature::UnparsedPublicKey::new(alg, point)
                    .verify(msg, &sig)
                    .is_ok()
            }
            PublicKey::Ed25519 { x } => {
                ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, x)
                    .verify(msg, &sig)
                    .is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Problem::malformed("JWS signature is invalid"))
        }
    }

    /// True for POST-as-GET: the payload is the empty string (RFC 8555 §6.3).
    pub fn is_post_as_get(&self) -> bool {
        self.payload_b64_empty
    }

    /// Decodes the payload, which must be a JSON object (RFC 8555 §7: every request
    /// payload is one), into `T`. POST-as-GET, non-JSON, and any other JSON value (an
    /// array would otherwise fill a struct through serde's sequence form) are `malformed`.
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        if self.payload_b64_empty {
            return Err(Problem::malformed(
                "this request needs a JSON payload, not POST-as-GET",
            ));
        }
        let value: Value = serde_json::from_slice(&self.payload)
            .map_err(|e| Problem::malformed(format!("JWS payload is not JSON: {e}")))?;
        if !value.is_object() {
            return Err(Problem::malformed(format!(
                "JWS payload must be a JSON object, not {}",
                json_kind(&value)
            )));
        }
        serde_json::from_value(value)
            .map_err(|e| Problem::malformed(format!("JWS payload is not the expected JSON: {e}")))
    }
}

/// How a JSON value is named in problem details.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// ES512 through the p521 crate: ring has no P-521.
fn verify_es512(x: &[u8], y: &[u8], sig_raw: &[u8], msg: &[u8]) -> bool {
    use p521::ecdsa::signature::Verifier;
    let mut sec1 = Vec::with_capacity(133);
    sec1.push(4);
    sec1.extend_from_slice(x);
    sec1.extend_from_slice(y);
    let Ok(vk) = p521::ecdsa::VerifyingKey::from_sec1_bytes(&sec1) else {
        return false;
    };
    match p521::ecdsa::Signature::from_slice(sig_raw) {
        Ok(sig) => vk.verify(msg, &sig).is_ok(),
        Err(_) => false,
    }
}
