//! The leaf profile (RFC 5280 §4; BR §7.1.2.7) read back with x509-parser, and ARI certIDs
//! (RFC 9773 §4.1) of issued and known certificates.

mod issue_support;

use ::time::{Duration, OffsetDateTime};
use cobble_ca::{
    CaConfig, CaError, Hierarchy, IssuanceUrls, IssuedCert, LeafRequest, Profile, ari_cert_id,
    parse_ari_cert_id,
};
use cobble_core::identifier::Identifier;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::parse_x509_certificate;
use x509_parser::prelude::FromDer;

const OCSP: &str = "http://127.0.0.1:15000/ocsp";
const ISSUER: &str = "http://127.0.0.1:15000/issuer.cer";
const CRL: &str = "http://127.0.0.1:15000/crl/0.crl";

fn uri(g: &GeneralName<'_>) -> String {
    match g {
        GeneralName::URI(u) => u.to_string(),
        other => panic!("not a URI: {other}"),
    }
}

fn urls() -> IssuanceUrls {
    IssuanceUrls {
        ocsp: Some(OCSP.into()),
        ca_issuers: Some(ISSUER.into()),
        crl: Some(CRL.into()),
    }
}

fn issue(
    h: &Hierarchy,
    alg: &'static rcgen::SignatureAlgorithm,
    names: &[Identifier],
    profile: &Profile,
    now: OffsetDateTime,
) -> IssuedCert {
    let (_, spki) = issue_support::rcgen_csr(&["x.test"], alg);
    h.issue(&LeafRequest {
        spki_der: &spki,
        names,
        profile,
        now,
        not_before: None,
        not_after: None,
        urls: urls(),
        must_staple: false,
    })
    .unwrap()
}

#[test]
fn leaf_extensions() {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let h = Hierarchy::generate(&CaConfig::default(), now).unwrap();
    let (_, issuer) = parse_x509_certificate(h.issuer_cert_der()).unwrap();
    let issuer_ski = issuer
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .unwrap();
    let long = format!("{}.test", "l".repeat(70));
    let names = vec![
        Identifier::Dns(long.clone()),
        Identifier::Dns("z.example.test".into()),
        Identifier::Ip("192.0.2.7".parse().unwrap()),
        Identifier::Dns("a.example.test".into()),
    ];
    let classic = Profile::named("classic").unwrap();
    let mut promoted = classic.clone();
    promoted.promote_common_name = true;
    promoted.client_auth = true;

    // (case, key alg, profile, expected CN, keyEncipherment, clientAuth)
    type Row<'a> = (
        &'a str,
        &'static rcgen::SignatureAlgorithm,
        &'a Profile,
        Option<&'a str>,
        bool,
        bool,
    );
    let rows: &[Row] = &[
        (
            "classic P-256",
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &classic,
            None,
            false,
            false,
        ),
        (
            "classic P-384",
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &classic,
            None,
            false,
            false,
        ),
        (
            "promoted CN + clientAuth",
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &promoted,
            Some("z.example.test"),
            false,
            true,
        ),
    ];
    for (case, alg, profile, cn, key_enc, client) in rows {
        let leaf = issue(&h, alg, &names, profile, now);
        let (_, c) = parse_x509_certificate(&leaf.der).unwrap();

        // SANs in the order given; critical when the subject is empty.
        let san = c.subject_alternative_name().unwrap().unwrap();
        let got: Vec<String> = san
            .value
            .general_names
            .iter()
            .map(|g| match g {
                GeneralName::DNSName(d) => d.to_string(),
                GeneralName::IPAddress(b) => format!("{b:?}"),
                other => panic!("{case}: unexpected SAN {other}"),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                long.clone(),
                "z.example.test".into(),
                "[192, 0, 2, 7]".into(),
                "a.example.test".into()
            ],
            "{case}"
        );
        let got_cn: Vec<&str> = c
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            got_cn.first().copied(),
            *cn,
            "{case}: CN is the first DNS name of at most 64 chars"
        );
        assert_eq!(
            san.critical,
            cn.is_none(),
            "{case}: SAN critical iff subject empty"
        );

        // EKU, KU, BasicConstraints.
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth, "{case}");
        assert_eq!(eku.client_auth, *client && profile.client_auth, "{case}");
        let ku = c.key_usage().unwrap().unwrap();
        assert!(ku.critical && ku.value.digital_signature(), "{case}");
        assert_eq!(ku.value.key_encipherment(), *key_enc, "{case}");
        assert!(!ku.value.key_cert_sign(), "{case}");
        let bc = c.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && !bc.value.ca, "{case}");

        // SKI, AKI = issuer SKI, AIA, CRL DP, policies.
        let mut seen = Vec::new();
        for e in c.extensions() {
            match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(_) => seen.push("ski"),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    assert_eq!(
                        a.key_identifier.as_ref().unwrap().0,
                        issuer_ski.as_slice(),
                        "{case}"
                    );
                    seen.push("aki");
                }
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    let got: Vec<(String, String)> = aia
                        .accessdescs
                        .iter()
                        .map(|d| (d.access_method.to_id_string(), uri(&d.access_location)))
                        .collect();
                    assert_eq!(
                        got,
                        vec![
                            ("1.3.6.1.5.5.7.48.1".to_string(), OCSP.to_string()),
                            ("1.3.6.1.5.5.7.48.2".to_string(), ISSUER.to_string()),
                        ],
                        "{case}"
                    );
                    seen.push("aia");
                }
                ParsedExtension::CRLDistributionPoints(dps) => {
                    let dp = dps.points[0].distribution_point.as_ref().unwrap();
                    match dp {
                        DistributionPointName::FullName(n) => {
                            assert_eq!(uri(&n[0]), CRL, "{case}")
                        }
                        other => panic!("{case}: {other:?}"),
                    }
                    seen.push("crldp");
                }
                ParsedExtension::CertificatePolicies(p) => {
                    let ids: Vec<String> = p.iter().map(|pi| pi.policy_id.to_id_string()).collect();
                    assert_eq!(ids, vec!["2.23.140.1.2.1"], "{case}");
                    seen.push("policies");
                }
                _ => {}
            }
        }
        seen.sort();
        assert_eq!(
            seen,
            vec!["aia", "aki", "crldp", "policies", "ski"],
            "{case}"
        );

        // Serial: 20 bytes, positive, no leading zero; matches IssuedCert.
        let raw = c.tbs_certificate.raw_serial();
        assert_eq!(raw.len(), 20, "{case}");
        assert!(raw[0] != 0 && raw[0] < 0x80, "{case}");
        assert_eq!(raw, leaf.serial.as_slice(), "{case}");
        assert_eq!(leaf.serial_hex.len(), 40, "{case}");

        // Validity: backdated a minute, 90 days inclusive.
        let nb = c.validity().not_before.to_datetime();
        let na = c.validity().not_after.to_datetime();
        assert_eq!(nb, now - Duration::minutes(1), "{case}");
        assert_eq!(na - nb, Duration::days(90) - Duration::seconds(1), "{case}");
        assert_eq!((leaf.not_before, leaf.not_after), (nb, na), "{case}");
        assert!(
            c.verify_signature(Some(issuer.public_key())).is_ok(),
            "{case}"
        );
    }

    // RSA leaf: keyEncipherment.
    let tmp = tempfile::tempdir().unwrap();
    let der =
        issue_support::openssl_csr(tmp.path(), "rsa", &["-newkey", "rsa:2048"], &["-subj", "/"]);
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&der).unwrap();
    let spki = csr.certification_request_info.subject_pki.raw.to_vec();
    let leaf = h
        .issue(&LeafRequest {
            spki_der: &spki,
            names: &names[1..2],
            profile: &classic,
            now,
            not_before: None,
            not_after: None,
            urls: IssuanceUrls::default(),
            must_staple: false,
        })
        .unwrap();
    let (_, c) = parse_x509_certificate(&leaf.der).unwrap();
    let ku = c.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.key_encipherment());
    // No URLs: no AIA and no CRL DP.
    assert!(c.extensions().iter().all(|e| !matches!(
        e.parsed_extension(),
        ParsedExtension::AuthorityInfoAccess(_) | ParsedExtension::CRLDistributionPoints(_)
    )));
}

#[test]
fn validity_overrides_and_shortlived() {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let h = Hierarchy::generate(&CaConfig::default(), now).unwrap();
    let (_, spki) = issue_support::rcgen_csr(&["x.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let names = vec![Identifier::Dns("x.test".into())];
    let short = Profile::named("shortlived").unwrap();
    let req = |nb: Option<OffsetDateTime>, na: Option<OffsetDateTime>| LeafRequest {
        spki_der: &spki,
        names: &names,
        profile: &short,
        now,
        not_before: nb,
        not_after: na,
        urls: urls(),
        must_staple: false,
    };
    let leaf = h.issue(&req(None, None)).unwrap();
    assert_eq!(
        leaf.not_after - leaf.not_before,
        Duration::hours(160) - Duration::seconds(1)
    );
    let (nb, na) = (now + Duration::hours(1), now + Duration::days(2));
    let leaf = h.issue(&req(Some(nb), Some(na))).unwrap();
    assert_eq!((leaf.not_before, leaf.not_after), (nb, na));
    let err = h.issue(&req(Some(na), Some(nb))).unwrap_err();
    assert!(
        matches!(&err, CaError::Request(m) if m.contains("is not after")),
        "{err}"
    );
    let err = h
        .issue(&LeafRequest {
            names: &[],
            ..req(None, None)
        })
        .unwrap_err();
    assert!(
        matches!(&err, CaError::Request(m) if m.contains("at least one name")),
        "{err}"
    );
}

#[test]
fn ari_cert_ids() {
    // RFC 9773 §4.1 example: AKI 69:88:5B:..:D4, serial 00:87:65:43:21.
    let aki = vec![
        0x69, 0x88, 0x5b, 0x6b, 0x87, 0x46, 0x40, 0x41, 0xe1, 0xb3, 0x7b, 0x84, 0x7b, 0xa0, 0xae,
        0x2c, 0xde, 0x01, 0xc8, 0xd4,
    ];
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(aki.clone());
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let mut leaf = rcgen::CertificateParams::new(vec!["ari.test".to_string()]).unwrap();
    leaf.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x87, 0x65, 0x43, 0x21]));
    leaf.use_authority_key_identifier_extension = true;
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let id = ari_cert_id(cert.der()).unwrap();
    assert_eq!(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    assert_eq!(
        parse_ari_cert_id(&id).unwrap(),
        (aki, vec![0x00, 0x87, 0x65, 0x43, 0x21])
    );

    // An issued leaf: AKI of the issuer, and the 20-byte serial.
    let h = Hierarchy::generate(&CaConfig::default(), OffsetDateTime::now_utc()).unwrap();
    let names = vec![Identifier::Dns("x.test".into())];
    let l = issue(
        &h,
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &names,
        &Profile::named("classic").unwrap(),
        OffsetDateTime::now_utc(),
    );
    let (_, serial) = parse_ari_cert_id(&ari_cert_id(&l.der).unwrap()).unwrap();
    assert_eq!(serial, l.serial);

    // A certificate without AKI (self-signed) has no certID.
    let selfsigned = rcgen::CertificateParams::new(vec!["s.test".to_string()])
        .unwrap()
        .self_signed(&leaf_key)
        .unwrap();
    assert!(
        ari_cert_id(selfsigned.der())
            .unwrap_err()
            .to_string()
            .contains("authorityKeyIdentifier")
    );
}
