//! The HTTPS identity of the ACME listener: a trust root made at first start and kept in
//! `<data-dir>/tls/`, and a leaf for localhost, 127.0.0.1, ::1 (and configured names)
//! issued from it at every start. Clients trust `<data-dir>/tls/ca.pem`.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};

/// Why the HTTPS identity could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Certificate generation or parsing failed.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
}

/// PEM certificate chain and key for the listener, and the trust root's path.
pub struct TlsIdentity {
    /// Leaf then root, PEM.
    pub cert_chain_pem: String,
    /// Leaf key, PEM (PKCS#8).
    pub key_pem: String,
    /// The file clients should trust (`None` when the operator supplied the certificate).
    pub trust_root: Option<PathBuf>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), TlsError> {
    std::fs::write(path, text).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    }
    Ok(())
}

/// Loads the operator's certificate, or loads/creates the trust root in `data_dir/tls`
/// and issues a fresh leaf for `names` (plus localhost, 127.0.0.1 and ::1).
pub fn identity(
    data_dir: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
    names: &[String],
    now_ms: i64,
) -> Result<TlsIdentity, TlsError> {
    let now = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    if let (Some(c), Some(k)) = (cert, key) {
        return Ok(TlsIdentity {
            cert_chain_pem: std::fs::read_to_string(c).map_err(io(c))?,
            key_pem: std::fs::read_to_string(k).map_err(io(k))?,
            trust_root: None,
        });
    }
    let dir = data_dir.join("tls");
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let ca_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca-key.pem");
    let (ca_pem, ca_key) = if ca_path.exists() && ca_key_path.exists() {
        let pem = std::fs::read_to_string(&ca_path).map_err(io(&ca_path))?;
        let key_pem = std::fs::read_to_string(&ca_key_path).map_err(io(&ca_key_path))?;
        (pem, KeyPair::from_pem(&key_pem)?)
    } else {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(
            DnType::CommonName,
            format!(
                "Cobble HTTPS trust root {}",
                &cobble_store::random_id()[..8]
            ),
        );
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.not_before = now - time::Duration::hours(1);
        p.not_after = now + time::Duration::days(3650);
        let cert = p.self_signed(&key)?;
        write_private(&ca_key_path, &key.serialize_pem())?;
        std::fs::write(&ca_path, cert.pem()).map_err(io(&ca_path))?;
        (cert.pem(), key)
    };
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;

    let leaf_key = KeyPair::generate()?;
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "localhost");
    let mut sans = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    sans.extend(names.iter().cloned());
    sans.dedup();
    for n in sans {
        p.subject_alt_names.push(match n.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(n.as_str().try_into()?),
        });
    }
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(365);
    let leaf = p.signed_by(&leaf_key, &issuer)?;
    Ok(TlsIdentity {
        cert_chain_pem: format!("{}{}", leaf.pem(), ca_pem),
        key_pem: leaf_key.serialize_pem(),
        trust_root: Some(ca_path),
    })
}
