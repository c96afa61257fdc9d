//! Hand-built JWS for the malformed cases the signer will not produce.

use cobble_core::b64;
use cobble_core::sign::Signer;
use serde_json::{Value, json};

/// A flattened JWS with exactly `protected` as header (no `alg` added), `payload` encoded as
/// given (None: empty), signed by `key` (the signature may not match the header's `alg`).
pub fn raw_jws(key: &Signer, protected: &Value, payload: Option<&str>) -> Value {
    let p = b64::encode(protected.to_string());
    let pl = payload.map(b64::encode).unwrap_or_default();
    let sig = key.sign_raw(format!("{p}.{pl}").as_bytes());
    json!({"protected": p, "payload": pl, "signature": b64::encode(sig)})
}

/// The protected header a kid-signed request would carry.
pub fn kid_header(key: &Signer, kid: &str, url: &str, nonce: &str) -> Value {
    json!({"alg": key.alg(), "kid": kid, "url": url, "nonce": nonce})
}

/// The protected header a jwk-signed request would carry.
pub fn jwk_header(key: &Signer, url: &str, nonce: &str) -> Value {
    json!({"alg": key.alg(), "jwk": key.public_key().to_jwk(), "url": url, "nonce": nonce})
}
