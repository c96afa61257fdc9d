//! Shared fixtures for the revocation tests (included with `#[path]` by each
//! `revocation_*.rs` test): small CAs made with rcgen, leaves to revoke, and a runner for
//! the `openssl` CLI that acts as the independent checker.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// The key types the CA signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256 (ecdsa-with-SHA256).
    P256,
    /// ECDSA P-384 (ecdsa-with-SHA384).
    P384,
    /// RSA 2048 (sha256WithRSAEncryption), generated with the `rsa` crate.
    Rsa2048,
}

/// A CA certificate and its key.
pub struct Ca {
    pub der: Vec<u8>,
    pub pem: String,
    pub key: KeyPair,
}

/// A fresh key of `kind` (RSA via the `rsa` crate, since ring cannot generate RSA keys).
pub fn key(kind: KeyKind) -> KeyPair {
    match kind {
        KeyKind::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        KeyKind::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        KeyKind::Rsa2048 => {
            use rsa::pkcs8::EncodePrivateKey;
            let mut rng = rsa::rand_core::OsRng;
            let k = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
            let pem = k.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
            KeyPair::from_pem(&pem).unwrap()
        }
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "Cobble Test");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(365);
    p
}

/// A self-signed root.
pub fn root(kind: KeyKind, cn: &str) -> Ca {
    let key = key(kind);
    let cert = ca_params(cn).self_signed(&key).unwrap();
    Ca {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key,
    }
}

/// An intermediate signed by `parent`.
pub fn intermediate(parent: &Ca, kind: KeyKind, cn: &str) -> Ca {
    let key = key(kind);
    let issuer = Issuer::from_ca_cert_der(&parent.der.as_slice().into(), &parent.key).unwrap();
    let cert = ca_params(cn).signed_by(&key, &issuer).unwrap();
    Ca {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key,
    }
}

/// A leaf for `name` with serial `serial`, issued by `ca`; returns (DER, PEM).
pub fn leaf(ca: &Ca, name: &str, serial: &[u8]) -> (Vec<u8>, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(vec![name.to_owned()]).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.serial_number = Some(SerialNumber::from_slice(serial));
    p.is_ca = IsCa::ExplicitNoCa;
    p.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(90);
    let issuer = Issuer::from_ca_cert_der(&ca.der.as_slice().into(), &ca.key).unwrap();
    let cert = p.signed_by(&key, &issuer).unwrap();
    (cert.der().to_vec(), cert.pem())
}

/// Writes `contents` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Output of one openssl run.
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// stdout and stderr together (openssl prints verify results on stderr).
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `openssl` with `args`.
pub fn openssl(args: &[&str]) -> Out {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl CLI is installed");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Upper-case hex with no separators, as openssl prints serial numbers in CRL listings.
pub fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
