//! Hierarchy creation, reuse on restart, key file modes, and leaves verified by
//! `openssl verify` against every root (RFC 5280 §6 path validation).

mod issue_support;

use ::time::OffsetDateTime;
use cobble_ca::{CaConfig, CaError, Hierarchy, IssuanceUrls, KeyType, LeafRequest, Profile};
use cobble_core::identifier::Identifier;
use issue_support::{openssl_verify, rcgen_csr};
use std::path::Path;
use x509_parser::parse_x509_certificate;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn leaf_for(h: &Hierarchy, names: &[&str]) -> cobble_ca::IssuedCert {
    let (_csr, spki) = rcgen_csr(names, &rcgen::PKCS_ECDSA_P256_SHA256);
    let ids: Vec<Identifier> = names
        .iter()
        .map(|n| Identifier::Dns(n.to_string()))
        .collect();
    let profile = Profile::named("classic").unwrap();
    h.issue(&LeafRequest {
        spki_der: &spki,
        names: &ids,
        profile: &profile,
        now: now(),
        not_before: None,
        not_after: None,
        urls: IssuanceUrls::default(),
        must_staple: false,
    })
    .unwrap()
}

fn subject_and_issuer(pem: &str) -> (String, String) {
    let der = cobble_ca::pem::certificates(pem).unwrap().remove(0);
    let (_, c) = parse_x509_certificate(&der).unwrap();
    (c.subject().to_string(), c.issuer().to_string())
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Table: (key type, chain length, alternate roots). RSA-2048 keeps RSA generation in the run.
const CASES: &[(KeyType, usize, usize)] = &[
    (KeyType::EcdsaP256, 1, 0),
    (KeyType::EcdsaP384, 3, 0),
    (KeyType::Rsa2048, 1, 1),
    (KeyType::EcdsaP256, 3, 2),
];

#[test]
fn hierarchies_verify_with_openssl_and_survive_restart() {
    for &(key_type, chain_length, alternate_roots) in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let cfg = CaConfig {
            key_type,
            chain_length,
            alternate_roots,
            ..CaConfig::default()
        };
        let started = std::time::Instant::now();
        let h = Hierarchy::load_or_create(&dir, &cfg, now()).unwrap();
        eprintln!(
            "{key_type:?} chain {chain_length} alt {alternate_roots}: created in {:?}",
            started.elapsed()
        );
        let case = format!("{key_type:?}/{chain_length}/{alternate_roots}");
        assert_eq!(h.root_count(), 1 + alternate_roots, "{case}");

        // Files and modes.
        for i in 0..=alternate_roots {
            for stem in [format!("root-{i}"), format!("intermediate-{i}")] {
                assert!(dir.join(format!("{stem}.pem")).exists(), "{case} {stem}");
                #[cfg(unix)]
                assert_eq!(
                    mode(&dir.join(format!("{stem}-key.pem"))),
                    0o600,
                    "{case} {stem}"
                );
            }
            for j in 1..chain_length {
                assert!(
                    dir.join(format!("intermediate-{i}-{j}.pem")).exists(),
                    "{case}"
                );
            }
            assert_eq!(h.intermediates(i).len(), chain_length, "{case}");
            assert_eq!(
                h.intermediate_key_pem(i),
                h.intermediate_key_pem(0),
                "{case}: cross-signed intermediates share the key"
            );
            assert!(h.root_key_pem(i).unwrap().contains("PRIVATE KEY"));
        }

        // The leaf-signing intermediates share a subject; roots differ.
        let leaf_issuers: Vec<_> = (0..h.root_count())
            .map(|i| subject_and_issuer(&h.intermediates(i)[0]).0)
            .collect();
        assert!(leaf_issuers.iter().all(|s| *s == leaf_issuers[0]), "{case}");
        let roots = h.roots();
        for i in 1..roots.len() {
            assert_ne!(roots[i], roots[0], "{case}");
        }
        // Chain order: each certificate is issued by the next, the last by the root.
        for (i, root) in roots.iter().enumerate() {
            let inter = h.intermediates(i);
            for w in inter.windows(2) {
                assert_eq!(
                    subject_and_issuer(&w[0]).1,
                    subject_and_issuer(&w[1]).0,
                    "{case}"
                );
            }
            let root_subject = subject_and_issuer(root).0;
            assert_eq!(
                subject_and_issuer(inter.last().unwrap()).1,
                root_subject,
                "{case}"
            );
        }

        // One leaf verifies against every root.
        let leaf = leaf_for(&h, &["example.test", "www.example.test"]);
        assert_eq!(leaf.chains.len(), h.root_count());
        for (i, root) in roots.iter().enumerate() {
            assert!(leaf.chains[i].starts_with(&leaf.pem));
            let out = openssl_verify(tmp.path(), root, &h.chain_pem(i).unwrap(), &leaf.pem);
            assert!(out.contains("OK"), "{case} root {i}: {out}");
        }

        // Restart: the same files are reused, and the reloaded hierarchy still signs.
        let again = Hierarchy::load_or_create(&dir, &cfg, now()).unwrap();
        assert_eq!(again.roots(), roots, "{case}");
        assert_eq!(again.issuer_cert_der(), h.issuer_cert_der(), "{case}");
        assert_eq!(
            again.issuer_key().serialize_der(),
            h.issuer_key().serialize_der(),
            "{case}"
        );
        let leaf2 = leaf_for(&again, &["again.example.test"]);
        let out = openssl_verify(
            tmp.path(),
            &roots[0],
            &again.chain_pem(0).unwrap(),
            &leaf2.pem,
        );
        assert!(out.contains("OK"), "{case} after restart: {out}");

        // Another config against the same directory is refused, not silently regenerated.
        let other = CaConfig {
            chain_length: chain_length + 1,
            ..cfg.clone()
        };
        let err = Hierarchy::load_or_create(&dir, &other, now()).unwrap_err();
        assert!(
            matches!(&err, CaError::Config(m) if m.contains("remove the directory")),
            "{case}: {err}"
        );
    }
}

#[test]
fn zero_chain_length_is_refused() {
    let cfg = CaConfig {
        chain_length: 0,
        ..CaConfig::default()
    };
    let err = Hierarchy::generate(&cfg, now()).unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");
}

#[test]
fn from_pem_files_with_openssl_made_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let o = |args: &[&str]| issue_support::openssl(d, args);
    o(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "root.key",
        "-out",
        "root.pem",
        "-subj",
        "/CN=Ext Root",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    o(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "int.key",
        "-out",
        "int.csr",
        "-subj",
        "/CN=Ext Intermediate",
    ]);
    std::fs::write(d.join("ext.cnf"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n").unwrap();
    o(&[
        "x509",
        "-req",
        "-in",
        "int.csr",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-CAcreateserial",
        "-out",
        "int.pem",
        "-days",
        "30",
        "-extfile",
        "ext.cnf",
    ]);

    let h = Hierarchy::from_pem_files(
        &d.join("root.pem"),
        Some(&d.join("int.pem")),
        &d.join("int.key"),
    )
    .unwrap();
    assert_eq!(h.root_count(), 1);
    assert!(h.root_key_pem(0).is_none());
    let leaf = leaf_for(&h, &["ext.example.test"]);
    let root = std::fs::read_to_string(d.join("root.pem")).unwrap();
    let out = openssl_verify(d, &root, &h.chain_pem(0).unwrap(), &leaf.pem);
    assert!(out.contains("OK"), "{out}");

    // A key that does not belong to the issuer certificate is refused.
    let err = Hierarchy::from_pem_files(
        &d.join("root.pem"),
        Some(&d.join("int.pem")),
        &d.join("root.key"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");

    // The root alone (PKCS#8 RSA key) signs leaves directly; the chain is empty.
    let h = Hierarchy::from_pem_files(&d.join("root.pem"), None, &d.join("root.key")).unwrap();
    let leaf = leaf_for(&h, &["direct.example.test"]);
    assert_eq!(h.chain_pem(0).unwrap(), "");
    let out = openssl_verify(d, &root, "", &leaf.pem);
    assert!(out.contains("OK"), "{out}");
}
