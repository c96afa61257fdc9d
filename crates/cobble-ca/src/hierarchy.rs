//! The issuing hierarchy (RFC 5280 §3.2): one root per chain, `chain_length` intermediates
//! under it, the last of which signs leaves. With `alternate_roots`, every extra root gets its
//! own chain whose leaf-signing intermediate has the same subject and key as the primary's
//! (a cross-sign), so one leaf chains to every root (Pebble's `PEBBLE_ALTERNATE_ROOTS`).
//!
//! Kept in a directory: `root-<i>.pem`, `root-<i>-key.pem`, `intermediate-<i>.pem` and
//! `intermediate-<i>-key.pem` (the leaf signer under root `i`), `intermediate-<i>-<j>.pem`
//! for the extra intermediates (`j` = 1 signs the leaf signer, ..., `chain_length-1` is
//! signed by the root) and `hierarchy.json` recording the configuration. Keys are mode 0600.

use crate::error::CaError;
use crate::keys::{KeyType, load_key_pem};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// How the hierarchy is generated at first start. Defaults match Pebble's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct CaConfig {
    /// Key type of the roots and intermediates.
    pub key_type: KeyType,
    /// Intermediates between a root and leaves, at least 1 (Pebble's `PEBBLE_CHAIN_LENGTH`:
    /// 1 = root -> intermediate -> leaf).
    pub chain_length: usize,
    /// Extra roots, each cross-signing the leaf-signing intermediate (`PEBBLE_ALTERNATE_ROOTS`).
    pub alternate_roots: usize,
    /// Common-name prefix, e.g. `Cobble` gives `Cobble Root CA 1a2b3c`.
    pub name_prefix: String,
    /// Validity of generated roots and intermediates, in days.
    pub ca_validity_days: u32,
}

impl Default for CaConfig {
    fn default() -> Self {
        CaConfig {
            key_type: KeyType::EcdsaP256,
            chain_length: 1,
            alternate_roots: 0,
            name_prefix: "Cobble".into(),
            ca_validity_days: 30 * 365,
        }
    }
}

/// One CA certificate as kept on disk.
#[derive(Debug, Clone)]
pub(crate) struct CaCert {
    pub(crate) der: Vec<u8>,
    pub(crate) pem: String,
    pub(crate) key_pem: Option<String>,
}

/// A root and the intermediates below it, the leaf's issuer first.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub(crate) root: CaCert,
    pub(crate) intermediates: Vec<CaCert>,
}

/// The roots, intermediates and the leaf-signing key (RFC 5280 §6 certification paths).
pub struct Hierarchy {
    pub(crate) chains: Vec<Chain>,
    pub(crate) issuer: Issuer<'static, KeyPair>,
    pub(crate) issuer_der: Vec<u8>,
}

impl std::fmt::Debug for Hierarchy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hierarchy")
            .field("roots", &self.chains.len())
            .field("chain_length", &self.chains[0].intermediates.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Manifest {
    key_type: KeyType,
    chain_length: usize,
    alternate_roots: usize,
}

const MANIFEST: &str = "hierarchy.json";

impl Hierarchy {
    /// Loads the hierarchy kept in `dir`, or creates one there per `cfg` at first start.
    /// A stored hierarchy made with another key type, chain length or root count is an
    /// error (delete the directory to regenerate), so a restart never silently changes roots.
    pub fn load_or_create(
        dir: &Path,
        cfg: &CaConfig,
        now: OffsetDateTime,
    ) -> Result<Self, CaError> {
        let want = Manifest {
            key_type: cfg.key_type,
            chain_length: cfg.chain_length,
            alternate_roots: cfg.alternate_roots,
        };
        let manifest_path = dir.join(MANIFEST);
        if manifest_path.exists() {
            let text = read(&manifest_path)?;
            let have: Manifest = serde_json::from_str(&text)
                .map_err(|e| CaError::Parse(format!("{}: {e}", manifest_path.display())))?;
            if have != want {
                return Err(CaError::Config(format!(
                    "{} holds a hierarchy with key type {}, chain length {}, {} alternate roots, \
                     but the config asks for {}, {}, {}; restore the config or remove the directory",
                    dir.display(),
                    have.key_type.name(),
                    have.chain_length,
                    have.alternate_roots,
                    want.key_type.name(),
                    want.chain_length,
                    want.alternate_roots
                )));
            }
            return Self::load_dir(dir, &have);
        }
        if dir.join("root-0.pem").exists() {
            return Err(CaError::Config(format!(
                "{} holds CA files but no {MANIFEST} (an interrupted first start?); remove it",
                dir.display()
            )));
        }
        let h = Self::generate(cfg, now)?;
        h.save(dir)?;
        let manifest = serde_json::to_string_pretty(&want).expect("manifest serializes");
        write(&manifest_path, &manifest, false)?;
        tracing::info!(dir = %dir.display(), roots = h.chains.len(), "created CA hierarchy");
        Ok(h)
    }

    /// Generates a fresh hierarchy in memory (nothing written), as Pebble does at each start.
    pub fn generate(cfg: &CaConfig, now: OffsetDateTime) -> Result<Self, CaError> {
        if cfg.chain_length == 0 {
            return Err(CaError::Config(
                "chain_length must be at least 1 (root -> intermediate -> leaf)".into(),
            ));
        }
        let not_before = now - Duration::minutes(1);
        let not_after = not_before + Duration::days(i64::from(cfg.ca_validity_days));
        let prefix = &cfg.name_prefix;
        let shared_key = cfg.key_type.generate()?;
        let shared_key_pem = shared_key.serialize_pem();
        let shared_cn = format!("{prefix} Intermediate CA {}", hex(&random::<3>()));
        let mut chains = Vec::with_capacity(cfg.alternate_roots + 1);
        for _ in 0..=cfg.alternate_roots {
            let chain_id = hex(&random::<3>());
            let root_key = cfg.key_type.generate()?;
            let root_params = ca_params(
                &format!("{prefix} Root CA {chain_id}"),
                not_before,
                not_after,
            );
            let root_cert = root_params.self_signed(&root_key)?;
            let root = CaCert {
                der: root_cert.der().to_vec(),
                pem: root_cert.pem(),
                key_pem: Some(root_key.serialize_pem()),
            };
            let mut signer = Issuer::new(root_params, root_key);
            let mut upper = Vec::new();
            for j in (1..cfg.chain_length).rev() {
                let key = cfg.key_type.generate()?;
                let cn = format!("{prefix} Intermediate CA {chain_id} #{j}");
                let params = ca_params(&cn, not_before, not_after);
                let cert = params.signed_by(&key, &signer)?;
                upper.push(CaCert {
                    der: cert.der().to_vec(),
                    pem: cert.pem(),
                    key_pem: Some(key.serialize_pem()),
                });
                signer = Issuer::new(params, key);
            }
            let params = ca_params(&shared_cn, not_before, not_after);
            let cert = params.signed_by(&shared_key, &signer)?;
            let mut intermediates = vec![CaCert {
                der: cert.der().to_vec(),
                pem: cert.pem(),
                key_pem: Some(shared_key_pem.clone()),
            }];
            upper.reverse();
            intermediates.extend(upper);
            chains.push(Chain {
                root,
                intermediates,
            });
        }
        Self::assemble(chains, load_key_pem(&shared_key_pem)?)
    }

    /// Uses a root and intermediates given as PEM (e.g. files named in the config).
    /// `intermediates_pem` holds zero or more certificates, the leaf's issuer first; with
    /// none, the root signs leaves. `issuer_key_pem` is the leaf signer's PKCS#8/PKCS#1 key.
    pub fn from_pem(
        root_pem: &str,
        intermediates_pem: Option<&str>,
        issuer_key_pem: &str,
    ) -> Result<Self, CaError> {
        let root_der = crate::pem::certificates(root_pem)?
            .into_iter()
            .next()
            .expect("certificates() is never empty");
        let root = CaCert {
            pem: crate::pem::encode("CERTIFICATE", &root_der),
            der: root_der,
            key_pem: None,
        };
        let mut intermediates = Vec::new();
        if let Some(text) = intermediates_pem {
            for der in crate::pem::certificates(text)? {
                intermediates.push(CaCert {
                    pem: crate::pem::encode("CERTIFICATE", &der),
                    der,
                    key_pem: None,
                });
            }
        }
        let key = load_key_pem(issuer_key_pem)?;
        let chain = Chain {
            root,
            intermediates,
        };
        let mut chain = chain;
        match chain.intermediates.first_mut() {
            Some(first) => first.key_pem = Some(issuer_key_pem.to_owned()),
            None => chain.root.key_pem = Some(issuer_key_pem.to_owned()),
        }
        Self::assemble(vec![chain], key)
    }

    /// [`Hierarchy::from_pem`] reading the three files.
    pub fn from_pem_files(
        root: &Path,
        intermediates: Option<&Path>,
        issuer_key: &Path,
    ) -> Result<Self, CaError> {
        let inter = intermediates.map(read).transpose()?;
        Self::from_pem(&read(root)?, inter.as_deref(), &read(issuer_key)?)
    }

    fn assemble(chains: Vec<Chain>, key: KeyPair) -> Result<Self, CaError> {
        let first = &chains[0];
        let issuer_der = first
            .intermediates
            .first()
            .unwrap_or(&first.root)
            .der
            .clone();
        let (_, cert) = x509_parser::parse_x509_certificate(&issuer_der)
            .map_err(|e| CaError::Parse(format!("issuer certificate: {e}")))?;
        if cert.tbs_certificate.subject_pki.raw != key.subject_public_key_info().as_slice() {
            return Err(CaError::Key(
                "the issuer key does not match the issuer certificate's public key".into(),
            ));
        }
        let issuer = Issuer::from_ca_cert_der(&issuer_der.as_slice().into(), key)?;
        Ok(Hierarchy {
            chains,
            issuer,
            issuer_der,
        })
    }

    fn load_dir(dir: &Path, m: &Manifest) -> Result<Self, CaError> {
        let mut chains = Vec::new();
        for i in 0..=m.alternate_roots {
            let root = load_cert(dir, &format!("root-{i}"))?;
            let mut intermediates = vec![load_cert(dir, &format!("intermediate-{i}"))?];
            for j in 1..m.chain_length {
                intermediates.push(load_cert(dir, &format!("intermediate-{i}-{j}"))?);
            }
            chains.push(Chain {
                root,
                intermediates,
            });
        }
        let key_pem = chains[0].intermediates[0]
            .key_pem
            .clone()
            .ok_or_else(|| CaError::Config("intermediate-0-key.pem is missing".into()))?;
        Self::assemble(chains, load_key_pem(&key_pem)?)
    }

    fn save(&self, dir: &Path) -> Result<(), CaError> {
        std::fs::create_dir_all(dir).map_err(|e| CaError::io(dir, e))?;
        for (i, chain) in self.chains.iter().enumerate() {
            save_cert(dir, &format!("root-{i}"), &chain.root)?;
            for (j, c) in chain.intermediates.iter().enumerate() {
                let stem = match j {
                    0 => format!("intermediate-{i}"),
                    j => format!("intermediate-{i}-{j}"),
                };
                save_cert(dir, &stem, c)?;
            }
        }
        Ok(())
    }

    /// The number of roots (1 + alternate roots).
    pub fn root_count(&self) -> usize {
        self.chains.len()
    }

    /// Every root certificate as PEM, the primary first (Pebble's `GET /roots/<i>`).
    pub fn roots(&self) -> Vec<String> {
        self.chains.iter().map(|c| c.root.pem.clone()).collect()
    }

    /// Root `i`'s private key as PKCS#8 PEM (Pebble's `/root-keys/<i>`); `None` if unknown.
    pub fn root_key_pem(&self, i: usize) -> Option<&str> {
        self.chains.get(i)?.root.key_pem.as_deref()
    }

    /// Root `i`'s intermediates as PEM, the leaf's issuer first (root excluded).
    pub fn intermediates(&self, i: usize) -> Vec<String> {
        self.chains
            .get(i)
            .map(|c| c.intermediates.iter().map(|x| x.pem.clone()).collect())
            .unwrap_or_default()
    }

    /// The leaf-signing intermediate's key under root `i` as PEM (the same key for every
    /// root, Pebble's `/intermediate-keys/<i>`); `None` if unknown.
    pub fn intermediate_key_pem(&self, i: usize) -> Option<&str> {
        self.chains
            .get(i)?
            .intermediates
            .first()?
            .key_pem
            .as_deref()
    }

    /// The chain to root `root_index` (RFC 8555 §7.4.2): the intermediates' PEM concatenated,
    /// the leaf's issuer first, the root excluded. `None` for an unknown root.
    pub fn chain_pem(&self, root_index: usize) -> Option<String> {
        let chain = self.chains.get(root_index)?;
        Some(chain.intermediates.iter().map(|c| c.pem.as_str()).collect())
    }

    /// DER of the certificate that signs leaves (for CRLs and OCSP, RFC 5280 §5, RFC 6960).
    pub fn issuer_cert_der(&self) -> &[u8] {
        &self.issuer_der
    }

    /// The key that signs leaves, CRLs and OCSP responses.
    pub fn issuer_key(&self) -> &KeyPair {
        self.issuer.key()
    }

    /// The leaf signer as an rcgen issuer, e.g. for `CertificateRevocationListParams::signed_by`.
    pub fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }
}

/// Parameters of a CA certificate: CA:TRUE, certSign + cRLSign, SKI, AKI, random serial.
fn ca_params(cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.serial_number = Some(SerialNumber::from_slice(&crate::issue::random_serial()));
    p.use_authority_key_identifier_extension = true;
    p.not_before = not_before;
    p.not_after = not_after;
    p
}

fn load_cert(dir: &Path, stem: &str) -> Result<CaCert, CaError> {
    let pem = read(&dir.join(format!("{stem}.pem")))?;
    let der = crate::pem::certificates(&pem)?.remove(0);
    let key_path = dir.join(format!("{stem}-key.pem"));
    let key_pem = if key_path.exists() {
        Some(read(&key_path)?)
    } else {
        None
    };
    Ok(CaCert { der, pem, key_pem })
}

fn save_cert(dir: &Path, stem: &str, c: &CaCert) -> Result<(), CaError> {
    write(&dir.join(format!("{stem}.pem")), &c.pem, false)?;
    if let Some(key) = &c.key_pem {
        write(&dir.join(format!("{stem}-key.pem")), key, true)?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(|e| CaError::io(path, e))
}

/// Writes `text` to `path`; secrets get mode 0600 from the moment the file exists.
fn write(path: &Path, text: &str, secret: bool) -> Result<(), CaError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let err = |e| CaError::io(PathBuf::from(path), e);
    let mut f = opts.open(path).map_err(err)?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
    }
    f.write_all(text.as_bytes()).map_err(err)?;
    Ok(())
}

/// `N` bytes from the system CSPRNG.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system RNG works");
    b
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
