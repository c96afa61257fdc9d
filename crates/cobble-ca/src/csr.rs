//! CSR checks at finalize (RFC 8555 §7.4; Boulder's `csr.VerifyCSR` and goodkey): parse the
//! PKCS#10 request (RFC 2986), check its key against the profile's key policy (first, so a
//! key the verifier cannot handle, such as RSA-1024, is refused for what it is), verify its
//! signature, check the key against the account key and the blocklist, and its names against
//! the order. Every failure is a `badCSR` problem whose detail says what to change.

use crate::profile::{EcCurve, Profile};
use cobble_core::identifier::Identifier;
use cobble_core::jwk::{Curve, PublicKey};
use cobble_core::{Problem, ProblemType};
use std::collections::BTreeSet;
use std::net::IpAddr;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey as X509Key;

/// The subject key's kind, as the key policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrKey {
    /// RSA with this modulus size in bits.
    Rsa(usize),
    /// ECDSA on a supported curve.
    Ec(EcCurve),
    /// Ed25519 (RFC 8410).
    Ed25519,
}

impl CsrKey {
    /// e.g. `RSA-2048`, `ECDSA P-256`, `Ed25519`.
    pub fn describe(self) -> String {
        match self {
            CsrKey::Rsa(bits) => format!("RSA-{bits}"),
            CsrKey::Ec(c) => format!("ECDSA {}", c.name()),
            CsrKey::Ed25519 => "Ed25519".into(),
        }
    }
}

/// A CSR that passed every check: what signing needs and what the server stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCsr {
    /// The subject public key, SubjectPublicKeyInfo DER.
    pub spki_der: Vec<u8>,
    /// The key's kind.
    pub key: CsrKey,
    /// The key's description, e.g. `RSA-2048`.
    pub key_description: String,
    /// SHA-256 of the SPKI DER (the key-blocking and "same key" digest, as Boulder's).
    pub spki_sha256: [u8; 32],
    /// The names: the subject CN first (if any), then the SANs in CSR order, deduplicated,
    /// DNS names lowercased.
    pub names: Vec<Identifier>,
    /// The CSR asked for the TLS Feature status_request extension (RFC 7633).
    pub must_staple: bool,
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";
const OID_TLS_FEATURE: &str = "1.3.6.1.5.5.7.1.24";

/// Signature algorithms accepted on a CSR: (OID, name). SHA-1 and MD5 are refused.
const SIG_ALGS: &[(&str, &str)] = &[
    ("1.2.840.113549.1.1.11", "sha256WithRSAEncryption"),
    ("1.2.840.113549.1.1.12", "sha384WithRSAEncryption"),
    ("1.2.840.113549.1.1.13", "sha512WithRSAEncryption"),
    ("1.2.840.113549.1.1.10", "RSASSA-PSS"),
    ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256"),
    ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384"),
    ("1.2.840.10045.4.3.4", "ecdsa-with-SHA512"),
    ("1.3.101.112", "Ed25519"),
];
const SIG_SHA1: &[&str] = &[
    "1.2.840.113549.1.1.5",
    "1.2.840.10045.4.1",
    "1.2.840.10040.4.3",
];

fn bad(detail: impl Into<String>) -> Problem {
    Problem::new(ProblemType::BadCsr, detail)
}

/// Checks a finalize CSR (RFC 8555 §7.4) against the order's identifiers, the account key
/// (§11.1: must differ), the profile's key policy and `blocked_keys` (called with the SPKI
/// SHA-256; `true` means compromised).
pub fn check_csr(
    csr_der: &[u8],
    order: &[Identifier],
    account_key: &PublicKey,
    profile: &Profile,
    blocked_keys: &dyn Fn(&[u8]) -> bool,
) -> Result<CheckedCsr, Problem> {
    let (rest, csr) = X509CertificationRequest::from_der(csr_der)
        .map_err(|e| bad(format!("CSR is not a DER PKCS#10 request (RFC 2986): {e}")))?;
    if !rest.is_empty() {
        return Err(bad("CSR has trailing bytes after the PKCS#10 request"));
    }
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    // Key policy before the signature: ring cannot verify with keys the policy refuses
    // (RSA under 2048 bits, P-521), and "does not verify" would hide the real reason.
    let key = match classify_key(spki)? {
        KeyKind::Known(k) if profile.allowed_keys.allows(k) => k,
        KeyKind::Known(k) => return Err(key_not_allowed(&k.describe(), profile)),
        KeyKind::Unsupported(desc) => return Err(key_not_supported(&desc, profile)),
    };

    let sig_oid = csr.signature_algorithm.algorithm.to_id_string();
    if SIG_SHA1.contains(&sig_oid.as_str()) {
        return Err(bad(
            "CSR is signed with SHA-1, which is not accepted; sign it with SHA-256 or better",
        ));
    }
    if !SIG_ALGS.iter().any(|(oid, _)| *oid == sig_oid) {
        let names: Vec<&str> = SIG_ALGS.iter().map(|(_, n)| *n).collect();
        return Err(bad(format!(
            "CSR signature algorithm {sig_oid} is not supported; use one of {}",
            names.join(", ")
        )));
    }
    verify_csr_signature(&csr, key, &sig_oid)?;

    if same_key(spki, account_key) {
        return Err(bad(
            "CSR public key is the account key; use a different key for the certificate \
             (RFC 8555 §11.1)",
        ));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, spki.raw);
    let mut spki_sha256 = [0u8; 32];
    spki_sha256.copy_from_slice(digest.as_ref());
    if blocked_keys(&spki_sha256) {
        return Err(bad(
            "CSR key is blocked (compromised); generate a new key for the certificate",
        ));
    }

    let (names, must_staple) = csr_names(&csr)?;
    if must_staple && !profile.must_staple_allowed {
        return Err(bad(format!(
            "CSR requests OCSP must-staple (TLS Feature), which profile {:?} does not issue; \
             remove the extension",
            profile.name
        )));
    }
    check_names_match(&names, order)?;
    for n in &names {
        if n.is_wildcard() && !profile.allow_wildcard {
            return Err(bad(format!(
                "profile {:?} does not allow wildcard names such as {}",
                profile.name,
                n.value()
            )));
        }
        if matches!(n, Identifier::Ip(_)) && !profile.allow_ip {
            return Err(bad(format!(
                "profile {:?} does not allow IP addresses such as {}",
                profile.name,
                n.value()
            )));
        }
    }
    Ok(CheckedCsr {
        spki_der: spki.raw.to_vec(),
        key,
        key_description: key.describe(),
        spki_sha256,
        names,
        must_staple,
    })
}

/// Verifies the CSR's self-signature. ring's RSA verifiers for SHA-256/384/512 want 2048
/// bits or more; an RSA key under that (only reaching here when the profile allows it, as
/// the Pebble drop-in's does) is verified with ring's legacy 1024-8192 bit verifiers, which
/// exist for SHA-256 and SHA-512.
fn verify_csr_signature(
    csr: &X509CertificationRequest<'_>,
    key: CsrKey,
    sig_oid: &str,
) -> Result<(), Problem> {
    let failed = |e: String| {
        bad(format!(
            "CSR signature does not verify with its own key: {e}"
        ))
    };
    match key {
        CsrKey::Ec(EcCurve::P521) => {
            let info = &csr.certification_request_info;
            crate::p521::verify(
                &info.subject_pki.subject_public_key.data,
                info.raw,
                &csr.signature_value.data,
                sig_oid,
            )
            .map_err(failed)
        }
        CsrKey::Rsa(bits) if bits < 2048 => {
            let alg: &dyn ring::signature::VerificationAlgorithm = match sig_oid {
                "1.2.840.113549.1.1.11" => {
                    &ring::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
                }
                "1.2.840.113549.1.1.13" => {
                    &ring::signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
                }
                other => {
                    return Err(bad(format!(
                        "CSR for an RSA-{bits} key is signed with {other}; sign it with \
                         sha256WithRSAEncryption or sha512WithRSAEncryption"
                    )));
                }
            };
            let info = &csr.certification_request_info;
            ring::signature::UnparsedPublicKey::new(alg, &info.subject_pki.subject_public_key.data)
                .verify(info.raw, &csr.signature_value.data)
                .map_err(|_| failed("the RSA signature is invalid".into()))
        }
        _ => csr.verify_signature().map_err(|e| failed(e.to_string())),
    }
}

/// A CSR key as classified: a kind the key policy can allow, or a description of a kind
/// this CA can never certify (e.g. `ECDSA P-521`).
enum KeyKind {
    Known(CsrKey),
    Unsupported(String),
}

/// The badCSR problem for a key the profile's key policy refuses, naming the allowed set.
fn key_not_allowed(key: &str, profile: &Profile) -> Problem {
    bad(format!(
        "CSR key {key} is not allowed by profile {:?}; allowed: {}",
        profile.name,
        profile.allowed_keys.describe()
    ))
}

/// The badCSR problem for a key this CA can never certify, whatever its profiles say (P-521:
/// ring, the one crypto provider, cannot write one into a certificate), naming the allowed set.
fn key_not_supported(key: &str, profile: &Profile) -> Problem {
    bad(format!(
        "CSR key {key} is not supported (ring, this CA's crypto provider, cannot certify it) \
         and is not allowed by profile {:?}; allowed: {}",
        profile.name,
        profile.allowed_keys.describe()
    ))
}

/// The key's kind from the SPKI algorithm (RFC 5480, RFC 3279, RFC 8410).
fn classify_key(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Result<KeyKind, Problem> {
    let alg = spki.algorithm.algorithm.to_id_string();
    let known = |k| Ok(KeyKind::Known(k));
    let unsupported = |d: String| Ok(KeyKind::Unsupported(d));
    match alg.as_str() {
        OID_RSA => match spki.parsed() {
            Ok(X509Key::RSA(k)) => known(CsrKey::Rsa(bit_len(k.modulus))),
            _ => Err(bad("CSR RSA public key does not parse")),
        },
        OID_EC => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                OID_P256 => known(CsrKey::Ec(EcCurve::P256)),
                OID_P384 => known(CsrKey::Ec(EcCurve::P384)),
                OID_P521 => known(CsrKey::Ec(EcCurve::P521)),
                other => unsupported(format!("ECDSA on curve {other:?}")),
            }
        }
        OID_ED25519 => known(CsrKey::Ed25519),
        other => unsupported(format!("with algorithm {other}")),
    }
}

/// Bits in a big-endian unsigned integer, ignoring leading zero bytes.
fn bit_len(n: &[u8]) -> usize {
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    n.len() * 8 - n[0].leading_zeros() as usize
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[i..]
}

/// True if the CSR's key is the account's key (compared as numbers/points, not encodings).
fn same_key(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>, account: &PublicKey) -> bool {
    match (spki.parsed(), account) {
        (Ok(X509Key::RSA(k)), PublicKey::Rsa { n, e }) => {
            strip_zeros(k.modulus) == strip_zeros(n) && strip_zeros(k.exponent) == strip_zeros(e)
        }
        (Ok(X509Key::EC(point)), PublicKey::Ec { curve, x, y }) => {
            let data = point.data();
            matches!(curve, Curve::P256 | Curve::P384 | Curve::P521)
                && data.len() == 1 + x.len() + y.len()
                && data[0] == 4
                && data[1..1 + x.len()] == x[..]
                && data[1 + x.len()..] == y[..]
        }
        (_, PublicKey::Ed25519 { x }) => {
            spki.algorithm.algorithm.to_id_string() == OID_ED25519
                && spki.subject_public_key.data.as_ref() == x.as_slice()
        }
        _ => false,
    }
}

/// The CSR's names: CN first, then SANs (dNSName, iPAddress), deduplicated; and must-staple.
fn csr_names(csr: &X509CertificationRequest<'_>) -> Result<(Vec<Identifier>, bool), Problem> {
    let mut names = Vec::new();
    let mut push = |id: Identifier| {
        if !names.contains(&id) {
            names.push(id);
        }
    };
    for cn in csr.certification_request_info.subject.iter_common_name() {
        let cn = cn
            .as_str()
            .map_err(|_| bad("CSR subject CN is not a string"))?;
        if cn.len() > 64 {
            return Err(bad(format!(
                "CSR subject CN is {} characters, more than 64 (RFC 5280 ub-common-name); \
                 leave the CN empty and list the name in the SAN extension",
                cn.len()
            )));
        }
        push(match cn.parse::<IpAddr>() {
            Ok(ip) => Identifier::Ip(ip),
            Err(_) => Identifier::Dns(cn.to_ascii_lowercase()),
        });
    }
    let mut must_staple = false;
    for ext in csr.requested_extensions().into_iter().flatten() {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => {
                for gn in &san.general_names {
                    match gn {
                        GeneralName::DNSName(d) => push(Identifier::Dns(d.to_ascii_lowercase())),
                        GeneralName::IPAddress(b) => push(Identifier::Ip(ip_from(b)?)),
                        other => {
                            return Err(bad(format!(
                                "CSR SAN {other} is not supported; only DNS names and IP \
                                 addresses can be certified"
                            )));
                        }
                    }
                }
            }
            ParsedExtension::UnsupportedExtension { oid }
                if oid.to_id_string() == OID_TLS_FEATURE =>
            {
                must_staple = true;
            }
            _ => {}
        }
    }
    if names.is_empty() {
        return Err(bad(
            "CSR contains no names; put the order's identifiers in the SAN extension",
        ));
    }
    Ok((names, must_staple))
}

fn ip_from(b: &[u8]) -> Result<IpAddr, Problem> {
    match b.len() {
        4 => Ok(IpAddr::from(<[u8; 4]>::try_from(b).expect("4 bytes"))),
        16 => Ok(IpAddr::from(<[u8; 16]>::try_from(b).expect("16 bytes"))),
        n => Err(bad(format!("CSR SAN iPAddress has {n} bytes, not 4 or 16"))),
    }
}

/// RFC 8555 §7.4: the CSR's names must be exactly the order's identifiers.
fn check_names_match(csr: &[Identifier], order: &[Identifier]) -> Result<(), Problem> {
    let norm = |id: &Identifier| match id {
        Identifier::Dns(d) => Identifier::Dns(d.to_ascii_lowercase()),
        ip => ip.clone(),
    };
    let have: BTreeSet<Identifier> = csr.iter().map(norm).collect();
    let want: BTreeSet<Identifier> = order.iter().map(norm).collect();
    if have == want {
        return Ok(());
    }
    let list = |s: Vec<&Identifier>| {
        s.iter()
            .map(|i| format!("{}:{}", i.kind(), i.value()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let missing = list(want.difference(&have).collect());
    let extra = list(have.difference(&want).collect());
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing from the CSR: {missing}"));
    }
    if !extra.is_empty() {
        parts.push(format!("in the CSR but not in the order: {extra}"));
    }
    Err(bad(format!(
        "CSR names do not match the order's identifiers (RFC 8555 §7.4); {}",
        parts.join("; ")
    )))
}
