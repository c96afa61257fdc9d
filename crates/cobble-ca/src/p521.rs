//! ECDSA P-521 subject keys, which ring (the one crypto provider) lacks: the CSR signature is
//! checked with the `p521` crate (already in the tree for ES512), and the certificate is
//! made by rcgen for a stand-in key labelled P-384 carrying the same point, then relabelled
//! P-521 (the two curve OIDs have the same length, so nothing else moves) and signed again
//! over the corrected TBSCertificate (RFC 5280 §4.1). Pebble certifies P-521 CSR keys; the
//! Pebble drop-in's key policy allows them, Boulder's default does not.

use crate::error::CaError;
use rcgen::{KeyPair, PublicKeyData, SigningKey};

/// id-ecPublicKey (RFC 5480 §2.1.1).
const OID_EC: &str = "1.2.840.10045.2.1";
/// secp521r1 (RFC 5480 §2.1.1.1).
const OID_P521: &str = "1.3.132.0.35";

/// The public point of a P-521 SubjectPublicKeyInfo; `None` for any other key.
pub(crate) fn point(spki_der: &[u8]) -> Option<Vec<u8>> {
    use x509_parser::prelude::FromDer;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der).ok()?;
    let curve = spki.algorithm.parameters.as_ref()?.as_oid().ok()?;
    (spki.algorithm.algorithm.to_id_string() == OID_EC && curve.to_id_string() == OID_P521)
        .then(|| spki.subject_public_key.data.to_vec())
}

/// Verifies a CSR's ECDSA P-521 signature over `signed` (the CertificationRequestInfo) with
/// the digest `sig_oid` names; a digest shorter than the field is read as ECDSA reads it,
/// as a number (SEC 1 §4.1.4), so SHA-256 and SHA-384 work as well as SHA-512.
pub(crate) fn verify(
    point: &[u8],
    signed: &[u8],
    sig_der: &[u8],
    sig_oid: &str,
) -> Result<(), String> {
    use p521::ecdsa::signature::hazmat::PrehashVerifier;
    let digest = match sig_oid {
        "1.2.840.10045.4.3.2" => &ring::digest::SHA256,
        "1.2.840.10045.4.3.3" => &ring::digest::SHA384,
        "1.2.840.10045.4.3.4" => &ring::digest::SHA512,
        other => return Err(format!("{other} is not an ECDSA signature algorithm")),
    };
    let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map_err(|_| "the P-521 public key is not a point of the curve".to_owned())?;
    let sig = p521::ecdsa::Signature::from_der(sig_der)
        .map_err(|_| "the ECDSA signature is not DER".to_owned())?;
    let hash = ring::digest::digest(digest, signed);
    let mut field = [0u8; 66];
    field[66 - hash.as_ref().len()..].copy_from_slice(hash.as_ref());
    key.verify_prehash(&field, &sig)
        .map_err(|_| "the ECDSA P-521 signature is invalid".to_owned())
}

/// The stand-in rcgen signs for: the P-521 point under P-384's label.
pub(crate) struct StandIn(pub(crate) Vec<u8>);

impl PublicKeyData for StandIn {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P384_SHA384
    }
}

/// `cert` (made for `stand_in`) with its subject key replaced by `spki_der`, the real P-521
/// SubjectPublicKeyInfo, and signed again by `issuer`.
pub(crate) fn relabel(
    cert: &[u8],
    stand_in: &StandIn,
    spki_der: &[u8],
    issuer: &KeyPair,
) -> Result<Vec<u8>, CaError> {
    let bad = |what: &str| CaError::Request(format!("P-521 certificate: {what}"));
    let fake = stand_in.subject_public_key_info();
    if fake.len() != spki_der.len() {
        return Err(bad(
            "the subject key is not a named-curve key of the usual encoding",
        ));
    }
    let (outer, rest) = tlv(cert).ok_or_else(|| bad("not DER"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let (tbs, after) = split(outer).ok_or_else(|| bad("no TBSCertificate"))?;
    let (alg, _signature) = split(after).ok_or_else(|| bad("no signature algorithm"))?;
    let at = tbs
        .windows(fake.len())
        .position(|w| w == fake.as_slice())
        .ok_or_else(|| bad("the stand-in key is not in the TBSCertificate"))?;
    let mut tbs = tbs.to_vec();
    tbs[at..at + fake.len()].copy_from_slice(spki_der);
    let sig = issuer.sign(&tbs)?;
    let mut bits = vec![0u8];
    bits.extend(sig);
    let mut body = tbs;
    body.extend_from_slice(alg);
    body.extend(encode(0x03, &bits));
    Ok(encode(0x30, &body))
}

/// The content of the DER element at the start of `der`, and what follows it.
fn tlv(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, head) = length(der.get(1..)?)?;
    let start = 1 + head;
    let end = start.checked_add(len)?;
    Some((der.get(start..end)?, der.get(end..)?))
}

/// The whole DER element (tag, length and content) at the start of `der`, and what follows.
fn split(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (content, rest) = tlv(der)?;
    let whole = der.len() - rest.len();
    debug_assert!(whole >= content.len());
    Some((&der[..whole], rest))
}

/// A DER length (X.690 §8.1.3) at the start of `b`: its value and how many bytes it took.
fn length(b: &[u8]) -> Option<(usize, usize)> {
    let first = *b.first()?;
    if first < 0x80 {
        return Some((usize::from(first), 1));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let len = b
        .get(1..=n)?
        .iter()
        .fold(0usize, |acc, x| (acc << 8) | usize::from(*x));
    Some((len, 1 + n))
}

/// One DER element: `tag`, the length, `content`.
fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 1000, 70_000] {
            let content = vec![7u8; len];
            let der = encode(0x30, &content);
            let (got, rest) = tlv(&der).unwrap();
            assert_eq!(got.len(), len);
            assert!(rest.is_empty());
            let (whole, rest) = split(&der).unwrap();
            assert_eq!(whole, der.as_slice());
            assert!(rest.is_empty());
        }
        assert!(
            tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none(),
            "5-byte lengths"
        );
        assert!(tlv(&[0x30, 0x05, 1]).is_none(), "short content");
    }
}
