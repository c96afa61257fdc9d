//! CSRs the ordinary tools will not make, for the badCSR checks: an RSA key of any size
//! (ring refuses RSA under 2048 bits) and a SHA-1 signature (`sha1WithRSAEncryption`).

use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};

/// DER DigestInfo prefix of SHA-256 (RFC 8017 §9.2, note 1).
const SHA256_PREFIX: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
/// DER DigestInfo prefix of SHA-1.
const SHA1_PREFIX: &[u8] = &[
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];
/// The OID sha256WithRSAEncryption (1.2.840.113549.1.1.11), DER-encoded.
const OID_SHA256_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
];
/// The OID sha1WithRSAEncryption (1.2.840.113549.1.1.5), DER-encoded.
const OID_SHA1_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05,
];

/// An RSA key rcgen can sign a CSR with, PKCS#1 v1.5 over SHA-256 or SHA-1.
struct RsaKey {
    key: RsaPrivateKey,
    public_der: Vec<u8>,
    sha1: bool,
}

impl rcgen::PublicKeyData for RsaKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public_der
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

impl rcgen::SigningKey for RsaKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let (alg, prefix) = if self.sha1 {
            (&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, SHA1_PREFIX)
        } else {
            (&ring::digest::SHA256, SHA256_PREFIX)
        };
        let mut digest_info = prefix.to_vec();
        digest_info.extend_from_slice(ring::digest::digest(alg, msg).as_ref());
        self.key
            .sign(Pkcs1v15Sign::new_unprefixed(), &digest_info)
            .map_err(|_| rcgen::Error::RingUnspecified)
    }
}

/// A CSR for `names` with a fresh RSA key of `bits`, signed with SHA-256, or with SHA-1 when
/// `sha1` (the signature algorithm named accordingly).
pub fn rsa_csr(names: &[String], bits: usize, sha1: bool) -> Result<Vec<u8>, String> {
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
        .map_err(|e| format!("RSA-{bits} key: {e}"))?;
    let public_der = key
        .to_public_key()
        .to_pkcs1_der()
        .map_err(|e| format!("RSA public key: {e}"))?
        .as_bytes()
        .to_vec();
    let k = RsaKey {
        key,
        public_der,
        sha1,
    };
    let mut p = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| e.to_string())?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    let mut der = p
        .serialize_request(&k)
        .map_err(|e| format!("CSR: {e}"))?
        .der()
        .to_vec();
    if sha1 {
        // The outer signatureAlgorithm is the last occurrence of the OID (the key's own
        // algorithm inside the request info is rsaEncryption); both OIDs have one length.
        let at = der
            .windows(OID_SHA256_RSA.len())
            .rposition(|w| w == OID_SHA256_RSA)
            .ok_or("no sha256WithRSAEncryption in the CSR")?;
        der[at..at + OID_SHA1_RSA.len()].copy_from_slice(OID_SHA1_RSA);
    }
    Ok(der)
}

#[cfg(test)]
mod tests {
    use x509_parser::prelude::*;

    #[test]
    fn rsa_1024_and_sha1_csrs_verify() {
        for (bits, sha1, oid) in [
            (1024, false, "1.2.840.113549.1.1.11"),
            (2048, true, "1.2.840.113549.1.1.5"),
        ] {
            let der = super::rsa_csr(&["a.example.com".to_owned()], bits, sha1).unwrap();
            let (_, csr) = X509CertificationRequest::from_der(&der).unwrap();
            assert_eq!(csr.signature_algorithm.algorithm.to_id_string(), oid);
            let spki = &csr.certification_request_info.subject_pki;
            let Ok(x509_parser::public_key::PublicKey::RSA(k)) = spki.parsed() else {
                panic!("not RSA")
            };
            assert_eq!(k.key_size(), bits);
            if !sha1 {
                // x509-parser verifies SHA-256 RSA via ring only from 2048 bits; check the
                // structure only for RSA-1024.
                continue;
            }
            csr.verify_signature().unwrap();
        }
    }
}
