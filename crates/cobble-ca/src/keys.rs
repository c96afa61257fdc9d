//! CA key types and generation. ring cannot generate RSA keys, so RSA CA keys come from
//! the `rsa` crate, exported as PKCS#8 (RFC 5958) and loaded into rcgen/ring.

use crate::error::CaError;
use rcgen::KeyPair;
use serde::{Deserialize, Serialize};

/// The key type of the CA's own keys (root and intermediates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// ECDSA on NIST P-256 with SHA-256 (the default, as fast as it gets).
    #[default]
    #[serde(alias = "ecdsa", alias = "p256")]
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    #[serde(alias = "p384")]
    EcdsaP384,
    /// RSA 2048-bit, PKCS#1 v1.5 with SHA-256.
    #[serde(alias = "rsa")]
    Rsa2048,
    /// RSA 3072-bit, PKCS#1 v1.5 with SHA-256.
    Rsa3072,
    /// RSA 4096-bit, PKCS#1 v1.5 with SHA-256.
    Rsa4096,
}

impl KeyType {
    /// Every key type with its config name: the one table config parsing and docs read.
    pub const ALL: &'static [(KeyType, &'static str)] = &[
        (KeyType::EcdsaP256, "ecdsa-p256"),
        (KeyType::EcdsaP384, "ecdsa-p384"),
        (KeyType::Rsa2048, "rsa2048"),
        (KeyType::Rsa3072, "rsa3072"),
        (KeyType::Rsa4096, "rsa4096"),
    ];

    /// The config name, e.g. `ecdsa-p256`.
    pub fn name(self) -> &'static str {
        KeyType::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, n)| *n)
            .expect("every KeyType is in KeyType::ALL")
    }

    /// Parses a config name (also Pebble's `rsa`/`ecdsa` shorthands).
    pub fn from_name(name: &str) -> Option<KeyType> {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "rsa" => Some(KeyType::Rsa2048),
            "ecdsa" | "p256" => Some(KeyType::EcdsaP256),
            "p384" => Some(KeyType::EcdsaP384),
            _ => KeyType::ALL
                .iter()
                .find(|(_, n)| *n == lower)
                .map(|(k, _)| *k),
        }
    }

    /// The RSA modulus size in bits, or `None` for ECDSA.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyType::Rsa2048 => Some(2048),
            KeyType::Rsa3072 => Some(3072),
            KeyType::Rsa4096 => Some(4096),
            KeyType::EcdsaP256 | KeyType::EcdsaP384 => None,
        }
    }

    /// Generates a fresh key pair of this type. RSA-4096 takes seconds: call it off the reactor.
    pub fn generate(self) -> Result<KeyPair, CaError> {
        match self {
            KeyType::EcdsaP256 => Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?),
            KeyType::EcdsaP384 => Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?),
            rsa_type => {
                use rsa::pkcs8::EncodePrivateKey;
                let bits = rsa_type.rsa_bits().expect("RSA type has a size");
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
                    .map_err(|e| CaError::Key(format!("RSA-{bits} generation: {e}")))?;
                let der = key
                    .to_pkcs8_der()
                    .map_err(|e| CaError::Key(format!("RSA PKCS#8 export: {e}")))?;
                Ok(KeyPair::from_pkcs8_der_and_sign_algo(
                    &der.as_bytes().into(),
                    &rcgen::PKCS_RSA_SHA256,
                )?)
            }
        }
    }
}

/// Loads a private key from PEM: PKCS#8 (`PRIVATE KEY`) for any type, or PKCS#1
/// (`RSA PRIVATE KEY`, converted here). SEC1 `EC PRIVATE KEY` must be converted first.
pub fn load_key_pem(pem_text: &str) -> Result<KeyPair, CaError> {
    let blocks = crate::pem::decode_all(pem_text)?;
    let (label, der) = blocks
        .iter()
        .find(|(l, _)| l.ends_with("PRIVATE KEY"))
        .ok_or_else(|| CaError::Key("no PRIVATE KEY block in the key file".into()))?;
    match label.as_str() {
        "PRIVATE KEY" => {
            // RSA keys would otherwise be matched to whichever RSA algorithm comes first.
            if is_rsa_pkcs8(der) {
                Ok(KeyPair::from_pkcs8_der_and_sign_algo(
                    &der.as_slice().into(),
                    &rcgen::PKCS_RSA_SHA256,
                )?)
            } else {
                KeyPair::try_from(der.as_slice())
                    .map_err(|e| CaError::Key(format!("PKCS#8 key not usable: {e}")))
            }
        }
        "RSA PRIVATE KEY" => {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::from_pkcs1_der(der)
                .map_err(|e| CaError::Key(format!("PKCS#1 RSA key: {e}")))?;
            let der = key
                .to_pkcs8_der()
                .map_err(|e| CaError::Key(format!("RSA PKCS#8 export: {e}")))?;
            Ok(KeyPair::from_pkcs8_der_and_sign_algo(
                &der.as_bytes().into(),
                &rcgen::PKCS_RSA_SHA256,
            )?)
        }
        other => Err(CaError::Key(format!(
            "{other} keys are not supported; convert with `openssl pkcs8 -topk8 -nocrypt`"
        ))),
    }
}

/// True if the PKCS#8 blob's algorithm is rsaEncryption (OID 1.2.840.113549.1.1.1).
/// A PKCS#8 PEM private key in the form Go's `crypto/x509` writes, as Pebble serves its CA
/// keys: RSA as PKCS#1 (`RSA PRIVATE KEY`, RFC 8017 §A.1.2); any other key as given.
pub fn traditional_pem(pkcs8_pem: &str) -> String {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_pem(pkcs8_pem)
        .ok()
        .and_then(|k| k.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).ok())
        .map_or_else(|| pkcs8_pem.to_owned(), |p| p.as_str().to_owned())
}

fn is_rsa_pkcs8(der: &[u8]) -> bool {
    const RSA_OID: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    der.windows(RSA_OID.len()).take(64).any(|w| w == RSA_OID)
}
