//! CRLs (RFC 5280 §5) checked by `openssl crl -CAfile`: signature, entries, reasons,
//! CRL number, AKI and issuing distribution point, for P-256, P-384 and RSA issuers.

#[path = "revocation_support.rs"]
mod support;

use cobble_ca::crl::{CrlError, RevocationReason, RevokedEntry, build_crl};
use support::{Ca, KeyKind, hex_upper, intermediate, openssl, root, write};
use time::{Duration, OffsetDateTime};

const SERIAL_A: &[u8] = &[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
// High bit set: DER needs a leading zero octet (openssl does not print it).
const SERIAL_B: &[u8] = &[0x9f, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66];

fn entries(now: OffsetDateTime) -> Vec<RevokedEntry> {
    vec![
        RevokedEntry {
            serial: SERIAL_A.to_vec(),
            revoked_at: now - Duration::hours(2),
            reason: Some(RevocationReason::KeyCompromise),
        },
        RevokedEntry {
            serial: SERIAL_B.to_vec(),
            revoked_at: now - Duration::hours(1),
            reason: Some(RevocationReason::Superseded),
        },
    ]
}

/// Builds a CRL, has openssl verify and print it, and returns the text.
fn verified_text(issuer: &Ca, crl: &[u8], name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let crl_path = write(dir.path(), &format!("{name}.der"), crl);
    let ca_path = write(dir.path(), "issuer.pem", &issuer.pem);
    let out = openssl(&[
        "crl", "-inform", "DER", "-in", &crl_path, "-CAfile", &ca_path, "-noout", "-text",
    ]);
    assert!(out.ok, "{name}: openssl failed: {}", out.all());
    assert!(out.all().contains("verify OK"), "{name}: {}", out.all());
    out.stdout
}

#[test]
fn crl_with_two_entries_verifies_for_each_key_type() {
    // (key kind, CRL number, IDP URL)
    let table: &[(KeyKind, u64, Option<&str>)] = &[
        (KeyKind::P256, 7, Some("http://crl.example.test/1.crl")),
        (KeyKind::P384, 1 << 40, None),
        (
            KeyKind::Rsa2048,
            42,
            Some("http://crl.example.test/rsa.crl"),
        ),
    ];
    let now = OffsetDateTime::now_utc();
    for (kind, number, idp) in table {
        let issuer = root(*kind, &format!("Cobble CRL Root {kind:?}"));
        let crl = build_crl(
            &issuer.der,
            &issuer.key,
            &entries(now),
            *number,
            now,
            now + Duration::days(7),
            *idp,
        )
        .unwrap();
        let text = verified_text(&issuer, &crl, &format!("{kind:?}"));
        let name = format!("{kind:?}");
        assert!(text.contains(&hex_upper(SERIAL_A)), "{name}: {text}");
        assert!(text.contains(&hex_upper(SERIAL_B)), "{name}: {text}");
        assert!(text.contains("Key Compromise"), "{name}: {text}");
        assert!(text.contains("Superseded"), "{name}: {text}");
        assert!(text.contains("X509v3 CRL Number"), "{name}: {text}");
        assert_eq!(
            line_after(&text, "X509v3 CRL Number"),
            number.to_string(),
            "{name}"
        );
        assert!(
            text.contains("X509v3 Authority Key Identifier"),
            "{name}: {text}"
        );
        match idp {
            Some(url) => {
                assert!(
                    text.contains("Issuing Distribution Point: critical"),
                    "{name}: {text}"
                );
                assert!(text.contains(&format!("URI:{url}")), "{name}: {text}");
                assert!(text.contains("Only User Certificates"), "{name}: {text}");
            }
            None => assert!(
                !text.contains("Issuing Distribution Point"),
                "{name}: {text}"
            ),
        }
    }
}

#[test]
fn empty_crl_from_an_intermediate_verifies() {
    let root = root(KeyKind::P384, "Cobble CRL Root");
    let int = intermediate(&root, KeyKind::P256, "Cobble CRL Intermediate");
    let now = OffsetDateTime::now_utc();
    let crl = build_crl(
        &int.der,
        &int.key,
        &[],
        1,
        now,
        now + Duration::days(1),
        None,
    )
    .unwrap();
    let text = verified_text(&int, &crl, "empty");
    assert!(text.contains("No Revoked Certificates."), "{text}");
    // The AKI equals the intermediate's SKI, so openssl can chain it.
    let ski = cert_ski(&int.der);
    assert!(
        text.contains(&colon_hex(&ski)),
        "AKI {} not in {text}",
        colon_hex(&ski)
    );
}

#[test]
fn unspecified_reason_is_left_out() {
    // RFC 5280 §5.3.1: the reasonCode extension SHOULD be absent instead of unspecified.
    let issuer = root(KeyKind::P256, "Cobble CRL Root");
    let now = OffsetDateTime::now_utc();
    let e = [RevokedEntry {
        serial: vec![0x42],
        revoked_at: now,
        reason: Some(RevocationReason::Unspecified),
    }];
    let crl = build_crl(
        &issuer.der,
        &issuer.key,
        &e,
        3,
        now,
        now + Duration::days(1),
        None,
    )
    .unwrap();
    let text = verified_text(&issuer, &crl, "unspecified");
    assert!(text.contains("Serial Number: 42"), "{text}");
    assert!(!text.contains("CRL Reason Code"), "{text}");
}

#[test]
fn bad_inputs_are_refused() {
    let issuer = root(KeyKind::P256, "Cobble CRL Root");
    let other = root(KeyKind::P256, "Someone Else");
    let now = OffsetDateTime::now_utc();
    let day = Duration::days(1);
    let serial = |s: &[u8]| RevokedEntry {
        serial: s.to_vec(),
        revoked_at: now,
        reason: None,
    };
    struct Row<'a> {
        case: &'a str,
        cert: &'a [u8],
        entries: Vec<RevokedEntry>,
        window: Duration,
        want: &'a str,
    }
    let row = |case, cert, entries, window, want| Row {
        case,
        cert,
        entries,
        window,
        want,
    };
    let table = [
        row("garbage cert", b"junk", vec![], day, "BadIssuerCert"),
        row("other CA's cert", &other.der, vec![], day, "KeyMismatch"),
        row(
            "nextUpdate = thisUpdate (§5.1.2.5)",
            &issuer.der,
            vec![],
            Duration::ZERO,
            "BadWindow",
        ),
        row(
            "zero serial (§4.1.2.2)",
            &issuer.der,
            vec![serial(&[0])],
            day,
            "BadSerial",
        ),
        row(
            "21-octet serial (§4.1.2.2)",
            &issuer.der,
            vec![serial(&[1; 21])],
            day,
            "BadSerial",
        ),
    ];
    for r in table {
        let err: CrlError = build_crl(
            r.cert,
            &issuer.key,
            &r.entries,
            1,
            now,
            now + r.window,
            None,
        )
        .unwrap_err();
        assert!(
            format!("{err:?}").starts_with(r.want),
            "{}: got {err:?}",
            r.case
        );
        assert!(!err.to_string().is_empty(), "{}", r.case);
    }
}

fn cert_ski(der: &[u8]) -> Vec<u8> {
    use x509_parser::prelude::*;
    let (_, c) = X509Certificate::from_der(der).unwrap();
    c.iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .expect("rcgen CA certificates carry an SKI")
}

fn colon_hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The trimmed line after the first line containing `label` in openssl's text output.
fn line_after(text: &str, label: &str) -> String {
    let mut lines = text.lines().skip_while(|l| !l.contains(label));
    lines.next();
    lines.next().unwrap_or_default().trim().to_owned()
}
