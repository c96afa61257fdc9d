//! Public JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037): parsing, key policy and
//! RFC 7638 thumbprints.

use crate::b64;
use crate::problem::{Problem, ProblemType};
use serde_json::{Map, Value};

/// The elliptic curves Cobble accepts for ECDSA account keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (ES256).
    P256,
    /// NIST P-384 (ES384).
    P384,
    /// NIST P-521 (ES512).
    P521,
}

impl Curve {
    /// The JWK `crv` name.
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }
    /// Length in bytes of one coordinate.
    fn coord_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}

/// A parsed, policy-checked public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA modulus and exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An ECDSA point on `curve`.
    Ec {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    /// An Ed25519 key (RFC 8037).
    Ed25519 { x: Vec<u8> },
}

/// Limits on account keys. Cobble's defaults follow Boulder's goodkey; Pebble mode lowers `rsa_min_bits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Smallest RSA modulus accepted, in bits.
    pub rsa_min_bits: usize,
    /// Largest RSA modulus accepted, in bits.
    pub rsa_max_bits: usize,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            rsa_min_bits: 2048,
            rsa_max_bits: 8192,
        }
    }
}

fn bad_key(detail: impl Into<String>) -> Problem {
    Problem::new(ProblemType::BadPublicKey, detail)
}

fn member<'a>(m: &'a Map<String, Value>, name: &str) -> Result<&'a str, Problem> {
    match m.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Problem::malformed(format!(
            "JWK member {name:?} must be a string"
        ))),
        None => Err(Problem::malformed(format!(
            "JWK is missing the {name:?} member"
        ))),
    }
}

fn member_bytes(m: &Map<String, Value>, name: &str) -> Result<Vec<u8>, Problem> {
    b64::decode(member(m, name)?)
        .map_err(|_| Problem::malformed(format!("JWK member {name:?} is not base64url")))
}

fn strip_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let lead = v.iter().take_while(|b| **b == 0).count();
    v.drain(..lead);
    v
}

impl PublicKey {
    /// Parses a JWK object and applies `policy`: RSA size and exponent, EC point on its
    /// curve, Ed25519 length. Private members are refused. Bad shapes are `malformed`,
    /// keys that parse but are weak or invalid are `badPublicKey` (RFC 8555 §6.7).
    pub fn from_jwk(jwk: &Value, policy: &KeyPolicy) -> Result<Self, Problem> {
        Self::parse(jwk, Some(policy))
    }

    /// Parses a key this server stored after [`PublicKey::from_jwk`] checked it: no policy
    /// or on-curve check again (the check costs more than the signature on P-384).
    pub fn from_stored_jwk(jwk: &Value) -> Result<Self, Problem> {
        Self::parse(jwk, None)
    }

    fn parse(jwk: &Value, policy: Option<&KeyPolicy>) -> Result<Self, Problem> {
        let m = jwk
            .as_object()
            .ok_or_else(|| Problem::malformed("JWK must be a JSON object"))?;
        if m.contains_key("d") || m.contains_key("p") || m.contains_key("k") {
            return Err(bad_key("JWK contains private or symmetric key material"));
        }
        match member(m, "kty")? {
            "RSA" => {
                let n = strip_zeros(member_bytes(m, "n")?);
                let e = strip_zeros(member_bytes(m, "e")?);
                if n.is_empty() {
                    return Err(bad_key("RSA modulus \"n\" is zero"));
                }
                let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
                if let Some(policy) = policy
                    && (bits < policy.rsa_min_bits || bits > policy.rsa_max_bits)
                {
                    return Err(bad_key(format!(
                        "RSA key of {bits} bits; keys must have {} to {} bits",
                        policy.rsa_min_bits, policy.rsa_max_bits
                    )));
                }
                if n.last().is_none_or(|b| b % 2 == 0) {
                    return Err(bad_key("RSA modulus is even"));
                }
                let exp = e
                    .iter()
                    .fold(0u128, |acc, b| acc.saturating_mul(256) | *b as u128);
                if e.len() > 4 || exp < 3 || exp % 2 == 0 {
                    return Err(bad_key(
                        "RSA public exponent must be odd, at least 3 and at most 32 bits",
                    ));
                }
                Ok(PublicKey::Rsa { n, e })
            }
            "EC" => {
                let curve = match member(m, "crv")? {
                    "P-256" => Curve::P256,
                    "P-384" => Curve::P384,
                    "P-521" => Curve::P521,
                    other => {
                        return Err(bad_key(format!(
                            "EC curve {other:?} is not supported; use P-256, P-384 or P-521"
                        )));
                    }
                };
                let x = member_bytes(m, "x")?;
                let y = member_bytes(m, "y")?;
                if x.len() != curve.coord_len() || y.len() != curve.coord_len() {
                    return Err(bad_key(format!(
                        "{} coordinates must be {} bytes each",
                        curve.name(),
                        curve.coord_len()
                    )));
                }
                let mut sec1 = Vec::with_capacity(1 + 2 * x.len());
                sec1.push(4);
                sec1.extend_from_slice(&x);
                sec1.extend_from_slice(&y);
                let on_curve = policy.is_none()
                    || match curve {
                        Curve::P256 => p256::PublicKey::from_sec1_bytes(&sec1).is_ok(),
                        Curve::P384 => p384::PublicKey::from_sec1_bytes(&sec1).is_ok(),
                        Curve::P521 => p521::PublicKey::from_sec1_bytes(&sec1).is_ok(),
                    };
                if !on_curve {
                    return Err(bad_key(format!(
                        "the point is not on curve {}",
                        curve.name()
                    )));
                }
                Ok(PublicKey::Ec { curve, x, y })
            }
            "OKP" => match member(m, "crv")? {
                "Ed25519" => {
                    let x = member_bytes(m, "x")?;
                    if x.len() != 32 {
                        return Err(bad_key("Ed25519 key must be 32 bytes"));
                    }
                    Ok(PublicKey::Ed25519 { x })
                }
                other => Err(bad_key(format!(
                    "OKP curve {other:?} is not supported; use Ed25519"
                ))),
            },
            other => Err(bad_key(format!(
                "key type {other:?} is not supported; use RSA, EC or OKP (Ed25519)"
            ))),
        }
    }

    /// The key as a canonical public JWK (required members only).
    pub fn to_jwk(&self) -> Value {
        let mut m = Map::new();
        match self {
            PublicKey::Rsa { n, e } => {
                m.insert("e".into(), b64::encode(e).into());
                m.insert("kty".into(), "RSA".into());
                m.insert("n".into(), b64::encode(n).into());
            }
            PublicKey::Ec { curve, x, y } => {
                m.insert("crv".into(), curve.name().into());
                m.insert("kty".into(), "EC".into());
                m.insert("x".into(), b64::encode(x).into());
                m.insert("y".into(), b64::encode(y).into());
            }
            PublicKey::Ed25519 { x } => {
                m.insert("crv".into(), "Ed25519".into());
                m.insert("kty".into(), "OKP".into());
                m.insert("x".into(), b64::encode(x).into());
            }
        }
        Value::Object(m)
    }

    /// RFC 7638 thumbprint (SHA-256, base64url): the account key's identity, also used
    /// in key authorizations (RFC 8555 §8.1).
    pub fn thumbprint(&self) -> String {
        // serde_json's Map is ordered by key, which is exactly RFC 7638's lexicographic order.
        let canonical = serde_json::to_string(&self.to_jwk()).expect("a JWK serializes");
        b64::encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    /// A short description for details and logs, e.g. `RSA-2048` or `EC P-256`.
    pub fn describe(&self) -> String {
        match self {
            PublicKey::Rsa { n, .. } => format!("RSA-{}", n.len() * 8),
            PublicKey::Ec { curve, .. } => format!("EC {}", curve.name()),
            PublicKey::Ed25519 { .. } => "Ed25519".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // RFC 7638 §3.1 example key and thumbprint.
    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    #[test]
    fn rfc7638_thumbprint() {
        let k = PublicKey::from_jwk(
            &json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}),
            &KeyPolicy::default(),
        )
        .unwrap();
        assert_eq!(
            k.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn key_policy_table() {
        let p = KeyPolicy::default();
        let small_n = b64::encode([0xC3u8; 128]); // 1024 bits
        let big_n = b64::encode([0xC3u8; 1025]); // 8200 bits
        let even_n = b64::encode([0xC2u8; 256]);
        // (jwk, expected problem type or None for accepted)
        let cases: Vec<(Value, Option<&str>)> = vec![
            (json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"}), None),
            (
                json!({"kty": "RSA", "n": small_n, "e": "AQAB"}),
                Some("badPublicKey"),
            ),
            (
                json!({"kty": "RSA", "n": big_n, "e": "AQAB"}),
                Some("badPublicKey"),
            ),
            (
                json!({"kty": "RSA", "n": even_n, "e": "AQAB"}),
                Some("badPublicKey"),
            ),
            (
                json!({"kty": "RSA", "n": RFC7638_N, "e": "AQ"}),
                Some("badPublicKey"),
            ),
            (json!({"kty": "RSA", "n": RFC7638_N}), Some("malformed")),
            (
                json!({"kty": "RSA", "n": "***", "e": "AQAB"}),
                Some("malformed"),
            ),
            (
                json!({"kty": "EC", "crv": "P-256", "x": b64::encode([1u8; 32]), "y": b64::encode([2u8; 32])}),
                Some("badPublicKey"),
            ),
            (
                json!({"kty": "EC", "crv": "P-256", "x": b64::encode([1u8; 31]), "y": b64::encode([2u8; 32])}),
                Some("badPublicKey"),
            ),
            (
                json!({"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"}),
                Some("badPublicKey"),
            ),
            (
                json!({"kty": "OKP", "crv": "Ed448", "x": "AA"}),
                Some("badPublicKey"),
            ),
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode([9u8; 32])}),
                None,
            ),
            (json!({"kty": "oct", "k": "AAAA"}), Some("badPublicKey")),
            (
                json!({"kty": "EC", "crv": "P-256", "d": "AA"}),
                Some("badPublicKey"),
            ),
            (json!("not an object"), Some("malformed")),
            // A modulus that decodes to nothing, or to zeros only.
            (
                json!({"kty": "RSA", "n": "", "e": "AQAB"}),
                Some("badPublicKey"),
            ),
            (
                json!({"kty": "RSA", "n": "AAAA", "e": "AQAB"}),
                Some("badPublicKey"),
            ),
            (
                json!({"kty": "RSA", "n": RFC7638_N, "e": ""}),
                Some("badPublicKey"),
            ),
            (
                json!({"kty": 7, "n": RFC7638_N, "e": "AQAB"}),
                Some("malformed"),
            ),
            (json!({"n": RFC7638_N, "e": "AQAB"}), Some("malformed")),
            (
                json!({"kty": "EC", "x": "AA", "y": "AA"}),
                Some("malformed"),
            ),
            (json!({"kty": "OKP", "crv": "Ed25519"}), Some("malformed")),
        ];
        for (jwk, want) in cases {
            let got = PublicKey::from_jwk(&jwk, &p);
            match want {
                None => assert!(got.is_ok(), "{jwk}: {got:?}"),
                Some(t) => assert_eq!(got.unwrap_err().kind.name(), t, "{jwk}"),
            }
        }
    }

    #[test]
    fn stored_keys_with_an_empty_modulus_are_refused_not_panicking() {
        for n in ["", "AAAA"] {
            let got = PublicKey::from_stored_jwk(&json!({"kty": "RSA", "n": n, "e": "AQAB"}));
            let p = got.unwrap_err();
            assert_eq!(p.kind.name(), "badPublicKey");
            assert!(p.detail.contains("modulus"), "{}", p.detail);
        }
    }

    #[test]
    fn relaxed_policy_accepts_rsa_1024() {
        let n = b64::encode([0xC3u8; 128]);
        let p = KeyPolicy {
            rsa_min_bits: 1024,
            ..KeyPolicy::default()
        };
        assert!(PublicKey::from_jwk(&json!({"kty": "RSA", "n": n, "e": "AQAB"}), &p).is_ok());
    }
}
