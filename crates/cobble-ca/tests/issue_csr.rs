//! CSR checks (RFC 8555 §7.4): a table of badCSR cases with rcgen-made CSRs, and
//! openssl-made CSRs of every key type issued and verified (or refused cleanly).

mod issue_support;

use cobble_ca::{CaConfig, Hierarchy, IssuanceUrls, LeafRequest, Profile, check_csr};
use cobble_core::ProblemType;
use cobble_core::identifier::Identifier;
use cobble_core::jwk::{Curve, PublicKey};
use issue_support::{openssl_csr, openssl_verify};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData};

fn dns(names: &[&str]) -> Vec<Identifier> {
    names
        .iter()
        .map(|n| Identifier::Dns(n.to_string()))
        .collect()
}

/// A CSR for `sans` (DNS names or IPs) with an optional CN, signed by `key`.
fn csr(key: &KeyPair, sans: &[&str], cn: Option<&str>) -> Vec<u8> {
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    if let Some(cn) = cn {
        p.distinguished_name.push(DnType::CommonName, cn);
    }
    p.serialize_request(key).unwrap().der().to_vec()
}

fn ec_account(key: &KeyPair) -> PublicKey {
    let raw = key.public_key_raw(); // 04 || x || y
    let half = (raw.len() - 1) / 2;
    PublicKey::Ec {
        curve: Curve::P256,
        x: raw[1..1 + half].to_vec(),
        y: raw[1 + half..].to_vec(),
    }
}

#[test]
fn bad_csr_table() {
    let p256 = || KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key = p256();
    let account_key = p256();
    let account = ec_account(&account_key);
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let blocked_key = p256();
    let blocked_digest = ring::digest::digest(
        &ring::digest::SHA256,
        &blocked_key.subject_public_key_info(),
    );
    let is_blocked = |d: &[u8]| d == blocked_digest.as_ref();
    let classic = Profile::named("classic").unwrap();
    let certigna = Profile::named("certigna").unwrap();
    let mut no_wild = classic.clone();
    no_wild.allow_wildcard = false;
    let mut flipped = csr(&key, &["a.test"], None);
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    let ip_order = vec![
        Identifier::Dns("a.test".into()),
        Identifier::Ip("192.0.2.1".parse().unwrap()),
    ];

    // (case, CSR, order, profile, Ok or the detail fragment of the badCSR problem)
    type Row<'a> = (
        &'a str,
        Vec<u8>,
        Vec<Identifier>,
        &'a Profile,
        Result<(), &'a str>,
    );
    let rows: Vec<Row> = vec![
        (
            "exact match",
            csr(&key, &["a.test", "b.test"], None),
            dns(&["b.test", "a.test"]),
            &classic,
            Ok(()),
        ),
        (
            "case difference accepted",
            csr(&key, &["A.Test"], Some("a.TEST")),
            dns(&["a.test"]),
            &classic,
            Ok(()),
        ),
        (
            "CN in SAN accepted",
            csr(&key, &["a.test"], Some("a.test")),
            dns(&["a.test"]),
            &classic,
            Ok(()),
        ),
        (
            "IP SAN",
            csr(&key, &["a.test", "192.0.2.1"], None),
            ip_order,
            &classic,
            Ok(()),
        ),
        (
            "missing name",
            csr(&key, &["a.test"], None),
            dns(&["a.test", "b.test"]),
            &classic,
            Err("missing from the CSR: dns:b.test"),
        ),
        (
            "extra name",
            csr(&key, &["a.test", "c.test"], None),
            dns(&["a.test"]),
            &classic,
            Err("not in the order: dns:c.test"),
        ),
        (
            "CN not in SAN nor order",
            csr(&key, &["a.test"], Some("z.test")),
            dns(&["a.test"]),
            &classic,
            Err("not in the order: dns:z.test"),
        ),
        (
            "account key reused",
            csr(&account_key, &["a.test"], None),
            dns(&["a.test"]),
            &classic,
            Err("is the account key"),
        ),
        (
            "blocked key",
            csr(&blocked_key, &["a.test"], None),
            dns(&["a.test"]),
            &classic,
            Err("key is blocked (compromised)"),
        ),
        (
            "key type not in profile",
            csr(&p384, &["a.test"], None),
            dns(&["a.test"]),
            &certigna,
            Err("ECDSA P-384 is not allowed by profile \"certigna\"; allowed: RSA-2048, RSA-3072"),
        ),
        (
            "bad signature",
            flipped,
            dns(&["a.test"]),
            &classic,
            Err("signature does not verify"),
        ),
        (
            "not DER",
            b"hello".to_vec(),
            dns(&["a.test"]),
            &classic,
            Err("not a DER PKCS#10"),
        ),
        (
            "no names",
            csr(&key, &[], None),
            dns(&["a.test"]),
            &classic,
            Err("contains no names"),
        ),
        (
            "CN too long",
            csr(&key, &["a.test"], Some(&format!("{}.test", "x".repeat(70)))),
            dns(&["a.test"]),
            &classic,
            Err("more than 64"),
        ),
        (
            "wildcard not in profile",
            csr(&key, &["*.a.test"], None),
            dns(&["*.a.test"]),
            &no_wild,
            Err("does not allow wildcard"),
        ),
    ];
    for (case, der, order, profile, want) in rows {
        let got = check_csr(&der, &order, &account, profile, &is_blocked);
        match (want, got) {
            (Ok(()), Ok(c)) => {
                assert_eq!(c.key_description, "ECDSA P-256", "{case}");
                assert!(!c.must_staple, "{case}");
            }
            (Err(fragment), Err(p)) => {
                assert_eq!(p.kind, ProblemType::BadCsr, "{case}");
                assert_eq!(p.status, 400, "{case}");
                assert!(p.detail.contains(fragment), "{case}: {:?}", p.detail);
            }
            (want, got) => panic!("{case}: wanted {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn checked_csr_names_and_digest() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let other = ec_account(&KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap());
    let der = csr(&key, &["B.test", "a.test", "b.test"], Some("c.test"));
    let c = check_csr(
        &der,
        &dns(&["a.test", "b.test", "c.test"]),
        &other,
        &Profile::named("classic").unwrap(),
        &|_| false,
    )
    .unwrap();
    assert_eq!(
        c.names,
        dns(&["c.test", "b.test", "a.test"]),
        "CN first, then SANs deduplicated"
    );
    assert_eq!(c.spki_der, key.subject_public_key_info());
    assert_eq!(
        c.spki_sha256.as_slice(),
        ring::digest::digest(&ring::digest::SHA256, &c.spki_der).as_ref()
    );
}

/// RFC 8555 §7.4: the key policy runs before the signature check, so a key the verifier
/// cannot handle (RSA-1024, P-521) is refused for what it is, naming the profile's allowed set.
#[test]
fn csr_key_policy_names_the_key_and_the_allowed_set() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let account = ec_account(&KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap());
    let classic = Profile::named("classic").unwrap();
    let certigna = Profile::named("certigna").unwrap();
    const CLASSIC: &str = "is not allowed by profile \"classic\"; allowed: RSA-2048, RSA-3072, \
                           RSA-4096, ECDSA P-256, ECDSA P-384";
    const CERTIGNA: &str = "is not allowed by profile \"certigna\"; allowed: RSA-2048, RSA-3072";
    let ec = |c: &'static str| -> Vec<&'static str> { vec!["-newkey", "ec", "-pkeyopt", c] };
    // (tag, openssl key args, profile, Ok(key description) or (key fragment, policy fragment))
    type Row<'a> = (
        &'a str,
        Vec<&'a str>,
        &'a Profile,
        Result<&'a str, (&'a str, &'a str)>,
    );
    let rows: Vec<Row> = vec![
        (
            "rsa1024",
            vec!["-newkey", "rsa:1024"],
            &classic,
            Err(("CSR key RSA-1024 ", CLASSIC)),
        ),
        (
            "rsa1024-certigna",
            vec!["-newkey", "rsa:1024"],
            &certigna,
            Err(("CSR key RSA-1024 ", CERTIGNA)),
        ),
        (
            "p521",
            ec("ec_paramgen_curve:P-521"),
            &classic,
            Err(("CSR key ECDSA P-521 ", CLASSIC)),
        ),
        (
            "secp256k1",
            ec("ec_paramgen_curve:secp256k1"),
            &classic,
            Err((
                "CSR key ECDSA on curve \"1.3.132.0.10\" is not supported (ring, this CA's \
                 crypto provider, cannot certify it) and ",
                CLASSIC,
            )),
        ),
        (
            "ed25519",
            vec!["-newkey", "ed25519"],
            &classic,
            Err(("CSR key Ed25519 ", CLASSIC)),
        ),
        (
            "p256-certigna",
            ec("ec_paramgen_curve:P-256"),
            &certigna,
            Err(("CSR key ECDSA P-256 ", CERTIGNA)),
        ),
        (
            "rsa2048",
            vec!["-newkey", "rsa:2048"],
            &classic,
            Ok("RSA-2048"),
        ),
        (
            "p256",
            ec("ec_paramgen_curve:P-256"),
            &classic,
            Ok("ECDSA P-256"),
        ),
    ];
    for (tag, key_args, profile, want) in rows {
        let der = openssl_csr(d, tag, &key_args, &["-subj", "/CN=a.test"]);
        let got = check_csr(&der, &dns(&["a.test"]), &account, profile, &|_| false);
        match (want, got) {
            (Ok(desc), Ok(c)) => assert_eq!(c.key_description, desc, "{tag}"),
            (Err((key, policy)), Err(p)) => {
                assert_eq!(p.kind, ProblemType::BadCsr, "{tag}");
                assert_eq!(p.status, 400, "{tag}");
                assert!(
                    p.detail.contains(&format!("{key}{policy}")),
                    "{tag}: {:?}",
                    p.detail
                );
            }
            (want, got) => panic!("{tag}: wanted {want:?}, got {got:?}"),
        }
    }
}

/// openssl-made CSRs: (tag, key args, extra args, profile tweak, Ok(key description) or refusal fragment).
#[test]
fn openssl_csrs_issue_and_verify_or_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let h = Hierarchy::generate(&CaConfig::default(), time::OffsetDateTime::now_utc()).unwrap();
    let account = ec_account(&KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap());
    let mut classic = Profile::named("classic").unwrap();
    classic.allowed_keys.ed25519 = true;
    let names = ["a.example.test", "b.example.test"];
    let san = "subjectAltName=DNS:a.example.test,DNS:b.example.test";
    let ec = |c: &'static str| -> Vec<&'static str> { vec!["-newkey", "ec", "-pkeyopt", c] };
    type Row = (
        &'static str,
        Vec<&'static str>,
        Vec<&'static str>,
        Result<&'static str, &'static str>,
    );
    let rows: Vec<Row> = vec![
        (
            "rsa2048",
            vec!["-newkey", "rsa:2048"],
            vec![],
            Ok("RSA-2048"),
        ),
        (
            "rsa4096",
            vec!["-newkey", "rsa:4096"],
            vec![],
            Ok("RSA-4096"),
        ),
        (
            "p256",
            ec("ec_paramgen_curve:P-256"),
            vec![],
            Ok("ECDSA P-256"),
        ),
        (
            "p384",
            ec("ec_paramgen_curve:P-384"),
            vec![],
            Ok("ECDSA P-384"),
        ),
        ("ed25519", vec!["-newkey", "ed25519"], vec![], Ok("Ed25519")),
        (
            "staple",
            ec("ec_paramgen_curve:P-256"),
            vec!["-addext", "tlsfeature=status_request"],
            Ok("ECDSA P-256"),
        ),
        (
            "p521",
            ec("ec_paramgen_curve:P-521"),
            vec![],
            Err("CSR key ECDSA P-521 is not allowed by profile \"classic\""),
        ),
        (
            "sha1",
            vec!["-newkey", "rsa:2048"],
            vec!["-sha1"],
            Err("signed with SHA-1"),
        ),
    ];
    for (tag, key_args, extra, want) in rows {
        let mut extra_args = vec!["-subj", "/CN=a.example.test", "-addext", san];
        extra_args.extend(extra);
        let der = openssl_csr(d, tag, &key_args, &extra_args);
        let got = check_csr(&der, &dns(&names), &account, &classic, &|_| false);
        match (want, got) {
            (Ok(desc), Ok(c)) => {
                assert_eq!(c.key_description, desc, "{tag}");
                assert_eq!(c.must_staple, tag == "staple", "{tag}");
                let leaf = h
                    .issue(&LeafRequest {
                        spki_der: &c.spki_der,
                        names: &c.names,
                        profile: &classic,
                        now: time::OffsetDateTime::now_utc(),
                        not_before: None,
                        not_after: None,
                        urls: IssuanceUrls::default(),
                        must_staple: c.must_staple,
                    })
                    .unwrap_or_else(|e| panic!("{tag}: {e}"));
                let out = openssl_verify(d, &h.roots()[0], &h.chain_pem(0).unwrap(), &leaf.pem);
                assert!(out.contains("OK"), "{tag}: {out}");
                // The leaf carries the CSR's key: compare with openssl's view of the key.
                std::fs::write(d.join("leaf.pem"), &leaf.pem).unwrap();
                let leaf_pub =
                    issue_support::openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-pubkey"]);
                let key_pub =
                    issue_support::openssl(d, &["pkey", "-in", &format!("{tag}.key"), "-pubout"]);
                assert_eq!(leaf_pub, key_pub, "{tag}");
                let text =
                    issue_support::openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-text"]);
                assert_eq!(
                    text.contains("Key Encipherment"),
                    tag.starts_with("rsa"),
                    "{tag}"
                );
                assert_eq!(
                    text.contains("status_request"),
                    tag == "staple",
                    "{tag}: {text}"
                );
            }
            (Err(fragment), Err(p)) => {
                assert_eq!(p.kind, ProblemType::BadCsr, "{tag}");
                assert!(p.detail.contains(fragment), "{tag}: {}", p.detail);
            }
            (want, got) => panic!("{tag}: wanted {want:?}, got {got:?}"),
        }
    }
    // Must-staple where the profile does not issue it.
    let der = std::fs::read(d.join("staple.csr")).unwrap();
    let short = Profile::named("shortlived").unwrap();
    let p = check_csr(&der, &dns(&names), &account, &short, &|_| false).unwrap_err();
    assert_eq!(p.kind, ProblemType::BadCsr);
    assert!(p.detail.contains("must-staple"), "{}", p.detail);
}

/// The Pebble drop-in's key policy (`AllowedKeys::pebble`): an RSA-1024 CSR (openssl-made,
/// SHA-256 and SHA-512) passes and its leaf verifies; a SHA-384 one is refused naming the
/// digests ring can verify at that size; P-521 CSRs (SHA-256 and SHA-512) pass through the
/// `p521` crate and their leaves carry the CSR's key and verify.
#[test]
fn pebble_key_policy_issues_rsa_1024() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let h = Hierarchy::generate(&CaConfig::default(), time::OffsetDateTime::now_utc()).unwrap();
    let account = ec_account(&KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap());
    let mut pebble = Profile::named("classic").unwrap();
    pebble.allowed_keys = cobble_ca::AllowedKeys::pebble();
    // (tag, key args, digest, Ok(key description) or refusal fragment)
    type Row<'a> = (&'a str, Vec<&'a str>, &'a str, Result<&'a str, &'a str>);
    let rows: [Row; 5] = [
        (
            "rsa1024-256",
            vec!["-newkey", "rsa:1024"],
            "-sha256",
            Ok("RSA-1024"),
        ),
        (
            "rsa1024-512",
            vec!["-newkey", "rsa:1024"],
            "-sha512",
            Ok("RSA-1024"),
        ),
        (
            "rsa1024-384",
            vec!["-newkey", "rsa:1024"],
            "-sha384",
            Err("sign it with sha256WithRSAEncryption or sha512WithRSAEncryption"),
        ),
        (
            "p521-256",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
            "-sha256",
            Ok("ECDSA P-521"),
        ),
        (
            "p521-512",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
            "-sha512",
            Ok("ECDSA P-521"),
        ),
    ];
    for (tag, key_args, digest, want) in rows {
        let der = openssl_csr(d, tag, &key_args, &["-subj", "/CN=a.test", digest]);
        match (
            want,
            check_csr(&der, &dns(&["a.test"]), &account, &pebble, &|_| false),
        ) {
            (Ok(desc), Ok(c)) => {
                assert_eq!(c.key_description, desc, "{tag}");
                let leaf = h
                    .issue(&LeafRequest {
                        spki_der: &c.spki_der,
                        names: &c.names,
                        profile: &pebble,
                        now: time::OffsetDateTime::now_utc(),
                        not_before: None,
                        not_after: None,
                        urls: IssuanceUrls::default(),
                        must_staple: false,
                    })
                    .unwrap_or_else(|e| panic!("{tag}: {e}"));
                let out = openssl_verify(d, &h.roots()[0], &h.chain_pem(0).unwrap(), &leaf.pem);
                assert!(out.contains("OK"), "{tag}: {out}");
                let (_, cert) = x509_parser::parse_x509_certificate(&leaf.der).unwrap();
                assert_eq!(
                    cert.public_key().raw,
                    c.spki_der.as_slice(),
                    "{tag}: the CSR's key"
                );
            }
            (Err(fragment), Err(p)) => {
                assert_eq!(p.kind, ProblemType::BadCsr, "{tag}");
                assert!(p.detail.contains(fragment), "{tag}: {}", p.detail);
            }
            (want, got) => panic!("{tag}: wanted {want:?}, got {got:?}"),
        }
    }
    // A broken RSA-1024 or P-521 signature is refused, not issued (a byte of the signature
    // flipped: RSA's last, inside P-521's DER-encoded s).
    let rsa: &[&str] = &["-newkey", "rsa:1024"];
    let p521: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"];
    for (tag, key_args, from_end) in [("rsa1024-flip", rsa, 1), ("p521-flip", p521, 20)] {
        let mut der = openssl_csr(d, tag, key_args, &["-subj", "/CN=a.test"]);
        let at = der.len() - from_end;
        der[at] ^= 0x01;
        let p = check_csr(&der, &dns(&["a.test"]), &account, &pebble, &|_| false).unwrap_err();
        assert_eq!(p.kind, ProblemType::BadCsr, "{tag}");
        assert!(p.detail.contains("does not verify"), "{tag}: {}", p.detail);
    }
}
