//! Client-side JWS signing (RFC 7515 flattened serialization), for Cobble's own ACME
//! clients: the conformance suite, the load generator and the tests.

use crate::b64;
use crate::jwk::{Curve, PublicKey};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, KeyPair};
use serde_json::{Value, json};

/// A private key that signs ACME requests.
pub enum Signer {
    /// ECDSA P-256 or P-384 (ring).
    Ecdsa(Curve, sig::EcdsaKeyPair),
    /// ECDSA P-521 (p521 crate; ring lacks it).
    P521(Box<p521::ecdsa::SigningKey>),
    /// Ed25519 (ring).
    Ed25519(sig::Ed25519KeyPair),
    /// RSA PKCS#1 v1.5 SHA-256 from a PKCS#8 key (ring cannot generate RSA keys).
    Rsa(sig::RsaKeyPair),
}

/// Why a key could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// ring refused the key.
    #[error("key rejected: {0}")]
    Rejected(String),
}

impl Signer {
    /// A fresh ECDSA key on `curve`.
    pub fn generate_ec(curve: Curve) -> Result<Self, SignerError> {
        let rng = SystemRandom::new();
        let rej = |e: ring::error::Unspecified| SignerError::Rejected(e.to_string());
        match curve {
            Curve::P256 | Curve::P384 => {
                let alg = if curve == Curve::P256 {
                    &sig::ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &sig::ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(rej)?;
                let kp = sig::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
                    .map_err(|e| SignerError::Rejected(e.to_string()))?;
                Ok(Signer::Ecdsa(curve, kp))
            }
            Curve::P521 => {
                let mut seed = [0u8; 66];
                loop {
                    ring::rand::SecureRandom::fill(&rng, &mut seed).map_err(rej)?;
                    seed[0] &= 1; // scalars are below 2^521
                    if let Ok(k) = p521::ecdsa::SigningKey::from_slice(&seed) {
                        return Ok(Signer::P521(Box::new(k)));
                    }
                }
            }
        }
    }

    /// A fresh Ed25519 key.
    pub fn generate_ed25519() -> Result<Self, SignerError> {
        let rng = SystemRandom::new();
        let pkcs8 = sig::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|e| SignerError::Rejected(e.to_string()))?;
        sig::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map(Signer::Ed25519)
            .map_err(|e| SignerError::Rejected(e.to_string()))
    }

    /// An ECDSA P-256 or P-384 key from PKCS#8 DER.
    pub fn ec_from_pkcs8(curve: Curve, der: &[u8]) -> Result<Self, SignerError> {
        let alg = match curve {
            Curve::P256 => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            Curve::P384 => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
            Curve::P521 => {
                return Err(SignerError::Rejected(
                    "P-521 keys load through generate_ec only".into(),
                ));
            }
        };
        sig::EcdsaKeyPair::from_pkcs8(alg, der, &SystemRandom::new())
            .map(|k| Signer::Ecdsa(curve, k))
            .map_err(|e| SignerError::Rejected(e.to_string()))
    }

    /// An RSA key from PKCS#8 DER.
    pub fn rsa_from_pkcs8(der: &[u8]) -> Result<Self, SignerError> {
        sig::RsaKeyPair::from_pkcs8(der)
            .map(Signer::Rsa)
            .map_err(|e| SignerError::Rejected(e.to_string()))
    }

    /// The JWS `alg` this key signs with.
    pub fn alg(&self) -> &'static str {
        match self {
            Signer::Ecdsa(Curve::P256, _) => "ES256",
            Signer::Ecdsa(_, _) => "ES384",
            Signer::P521(_) => "ES512",
            Signer::Ed25519(_) => "EdDSA",
            Signer::Rsa(_) => "RS256",
        }
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Signer::Ecdsa(curve, kp) => {
                let pt = kp.public_key().as_ref();
                let n = (pt.len() - 1) / 2;
                PublicKey::Ec {
                    curve: *curve,
                    x: pt[1..1 + n].to_vec(),
                    y: pt[1 + n..].to_vec(),
                }
            }
            Signer::P521(k) => {
                let pt = p521::ecdsa::VerifyingKey::from(&**k).to_encoded_point(false);
                PublicKey::Ec {
                    curve: Curve::P521,
                    x: pt.x().expect("uncompressed").to_vec(),
                    y: pt.y().expect("uncompressed").to_vec(),
                }
            }
            Signer::Ed25519(kp) => PublicKey::Ed25519 {
                x: kp.public_key().as_ref().to_vec(),
            },
            Signer::Rsa(kp) => {
                let comps = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(kp.public());
                PublicKey::Rsa {
                    n: comps.n,
                    e: comps.e,
                }
            }
        }
    }

    /// Signs `signing_input` and returns the raw JWS signature.
    pub fn sign_raw(&self, signing_input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Signer::Ecdsa(_, kp) => kp
                .sign(&rng, signing_input)
                .expect("ecdsa signs")
                .as_ref()
                .to_vec(),
            Signer::P521(k) => {
                use p521::ecdsa::signature::Signer as _;
                let s: p521::ecdsa::Signature = k.sign(signing_input);
                s.to_bytes().to_vec()
            }
            Signer::Ed25519(kp) => kp.sign(signing_input).as_ref().to_vec(),
            Signer::Rsa(kp) => {
                let mut out = vec![0; kp.public().modulus_len()];
                kp.sign(&sig::RSA_PKCS1_SHA256, &rng, signing_input, &mut out)
                    .expect("rsa signs");
                out
            }
        }
    }

    /// Builds a flattened JWS. `protected` gets `alg` added; `payload` None means POST-as-GET.
    pub fn sign(&self, mut protected: Value, payload: Option<&Value>) -> Value {
        protected["alg"] = json!(self.alg());
        let protected_b64 = b64::encode(protected.to_string());
        let payload_b64 = payload
            .map(|p| b64::encode(p.to_string()))
            .unwrap_or_default();
        let sig = self.sign_raw(format!("{protected_b64}.{payload_b64}").as_bytes());
        json!({"protected": protected_b64, "payload": payload_b64, "signature": b64::encode(sig)})
    }

    /// A request JWS that embeds the public key (`jwk`), as newAccount uses.
    pub fn sign_with_jwk(&self, url: &str, nonce: Option<&str>, payload: Option<&Value>) -> Value {
        let mut h = json!({"jwk": self.public_key().to_jwk(), "url": url});
        if let Some(n) = nonce {
            h["nonce"] = json!(n);
        }
        self.sign(h, payload)
    }

    /// A request JWS that names the account (`kid`).
    pub fn sign_with_kid(
        &self,
        kid: &str,
        url: &str,
        nonce: &str,
        payload: Option<&Value>,
    ) -> Value {
        self.sign(json!({"kid": kid, "url": url, "nonce": nonce}), payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::KeyPolicy;
    use crate::jws::{Jws, KeyRef};

    fn signers() -> Vec<Signer> {
        vec![
            Signer::generate_ec(Curve::P256).unwrap(),
            Signer::generate_ec(Curve::P384).unwrap(),
            Signer::generate_ec(Curve::P521).unwrap(),
            Signer::generate_ed25519().unwrap(),
            Signer::rsa_from_pkcs8(crate::testkeys::RSA2048_PKCS8).unwrap(),
        ]
    }

    #[test]
    fn every_algorithm_round_trips_and_tampering_fails() {
        for s in signers() {
            let body = s.sign_with_jwk(
                "https://x/acme/new-acct",
                Some("n1"),
                Some(&json!({"a": 1})),
            );
            let jws = Jws::parse(body.to_string().as_bytes(), &KeyPolicy::default()).unwrap();
            let KeyRef::Jwk(k) = &jws.protected.key else {
                panic!("jwk")
            };
            jws.verify(k).unwrap_or_else(|e| panic!("{}: {e}", s.alg()));
            assert_eq!(jws.protected.nonce.as_deref(), Some("n1"));

            // Tamper with the payload: the signature must no longer verify.
            let mut t = body.clone();
            t["payload"] = json!(b64::encode(r#"{"a":2}"#));
            let jws = Jws::parse(t.to_string().as_bytes(), &KeyPolicy::default()).unwrap();
            let e = jws.verify(k).unwrap_err();
            assert_eq!(e.kind.name(), "malformed", "{}", s.alg());
            assert!(e.detail.contains("signature is invalid"));

            // POST-as-GET.
            let g = s.sign_with_kid("https://x/acme/acct/1", "https://x/acme/acct/1", "n", None);
            let jws = Jws::parse(g.to_string().as_bytes(), &KeyPolicy::default()).unwrap();
            assert!(jws.is_post_as_get());
            jws.verify(&s.public_key()).unwrap();
        }
    }

    #[test]
    fn malformed_jws_table() {
        let s = Signer::generate_ec(Curve::P256).unwrap();
        let good = s.sign_with_jwk("u", Some("n"), Some(&json!({})));
        let hdr = |h: Value| {
            let mut b = good.clone();
            b["protected"] = json!(b64::encode(h.to_string()));
            b.to_string()
        };
        let jwk = s.public_key().to_jwk();
        // (body, problem type, detail fragment) — RFC 8555 §6.2 and RFC 7515.
        let cases: Vec<(String, &str, &str)> = vec![
            ("not json".into(), "malformed", "not valid JSON"),
            ("[1]".into(), "malformed", "JWS JSON object"),
            (
                json!({"signatures": []}).to_string(),
                "malformed",
                "general serialization",
            ),
            (
                {
                    let mut b = good.clone();
                    b["header"] = json!({});
                    b.to_string()
                },
                "malformed",
                "unprotected header",
            ),
            (
                {
                    let mut b = good.clone();
                    b.as_object_mut().unwrap().remove("signature");
                    b.to_string()
                },
                "malformed",
                "\"signature\"",
            ),
            (
                {
                    let mut b = good.clone();
                    b["protected"] = json!("!!");
                    b.to_string()
                },
                "malformed",
                "not base64url",
            ),
            (
                hdr(json!({"alg": "none", "jwk": jwk, "url": "u", "nonce": "n"})),
                "badSignatureAlgorithm",
                "\"none\"",
            ),
            (
                hdr(json!({"alg": "HS256", "jwk": jwk, "url": "u", "nonce": "n"})),
                "badSignatureAlgorithm",
                "HS256",
            ),
            (
                hdr(json!({"jwk": jwk, "url": "u", "nonce": "n"})),
                "malformed",
                "no \"alg\"",
            ),
            (
                hdr(json!({"alg": "ES256", "jwk": jwk, "nonce": "n"})),
                "malformed",
                "no \"url\"",
            ),
            (
                hdr(json!({"alg": "ES256", "url": "u", "nonce": "n"})),
                "malformed",
                "one of",
            ),
            (
                hdr(json!({"alg": "ES256", "jwk": jwk, "kid": "k", "url": "u", "nonce": "n"})),
                "malformed",
                "not both",
            ),
            (
                hdr(json!({"alg": "RS256", "jwk": jwk, "url": "u", "nonce": "n"})),
                "malformed",
                "does not match",
            ),
            (
                hdr(json!({"alg": "ES256", "jwk": jwk, "url": "u", "nonce": "n", "crit": ["x"]})),
                "malformed",
                "crit",
            ),
            (
                hdr(json!({"alg": "ES256", "jwk": jwk, "url": 5, "nonce": "n"})),
                "malformed",
                "must be a string",
            ),
        ];
        for (body, kind, frag) in cases {
            let e = Jws::parse(body.as_bytes(), &KeyPolicy::default()).unwrap_err();
            assert_eq!(e.kind.name(), kind, "{body}: {e}");
            assert!(e.detail.contains(frag), "{body}: {e}");
        }
        let e = Jws::parse(
            hdr(json!({"alg": "PS512", "jwk": jwk, "url": "u"})).as_bytes(),
            &KeyPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(e.algorithms, crate::jws::ALGORITHMS);
    }
}
