//! OCSP responses (RFC 6960 §4.2) from `cobble_ca::ocsp::build_response`, checked by
//! `openssl ocsp -reqin -respin`: signature, responder ID, good/revoked/unknown, reasons,
//! the nonce echo, for P-256 (under a P-384 root), P-384 and RSA issuers.

#[path = "revocation_support.rs"]
mod support;

use cobble_ca::crl::RevocationReason;
use cobble_ca::ocsp::{
    CertId, CertStatus, HashAlg, OcspError, OcspResponseStatus, build_response, error_response,
    parse_request_with_nonce,
};
use support::{Ca, KeyKind, hex_upper, intermediate, leaf, openssl, root, write};
use time::{Duration, OffsetDateTime};

const GOOD: &[u8] = &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
const REVOKED: &[u8] = &[0x8a, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11];
const UNKNOWN: &[u8] = &[0x01, 0x02, 0x03];

/// An issuing CA, the root that anchors it, and the OCSP signature algorithm openssl prints.
struct Setup {
    name: &'static str,
    root: Ca,
    issuer: Option<Ca>,
    sig_alg: &'static str,
}

impl Setup {
    fn issuer(&self) -> &Ca {
        self.issuer.as_ref().unwrap_or(&self.root)
    }
}

fn setups() -> Vec<Setup> {
    let p384_root = root(KeyKind::P384, "Cobble OCSP Root P-384");
    let p256_int = intermediate(&p384_root, KeyKind::P256, "Cobble OCSP Intermediate P-256");
    vec![
        Setup {
            name: "P-256 intermediate",
            root: p384_root,
            issuer: Some(p256_int),
            sig_alg: "ecdsa-with-SHA256",
        },
        Setup {
            name: "P-384 root",
            root: root(KeyKind::P384, "Cobble OCSP Root P-384 direct"),
            issuer: None,
            sig_alg: "ecdsa-with-SHA384",
        },
        Setup {
            name: "RSA root",
            root: root(KeyKind::Rsa2048, "Cobble OCSP Root RSA"),
            issuer: None,
            sig_alg: "sha256WithRSAEncryption",
        },
    ]
}

fn status_for(serial: &[u8], revoked_at: OffsetDateTime) -> CertStatus {
    match serial {
        GOOD => CertStatus::Good,
        REVOKED => CertStatus::Revoked {
            at: revoked_at,
            reason: Some(RevocationReason::KeyCompromise),
        },
        _ => CertStatus::Unknown,
    }
}

#[test]
fn openssl_verifies_good_revoked_and_unknown() {
    let now = OffsetDateTime::now_utc();
    let revoked_at = now - Duration::hours(3);
    for s in setups() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca = s.issuer();
        let issuer_pem = write(d, "issuer.pem", &ca.pem);
        let root_pem = write(d, "root.pem", &s.root.pem);
        let spk_hash = {
            let id = CertId::for_serial(HashAlg::Sha1, &ca.der, &[1]).unwrap();
            hex_upper(&id.issuer_key_hash)
        };

        // (serial, SHA-256 CertID?, nonce?, what openssl prints for the certificate)
        let table: &[(&[u8], bool, bool, &str)] = &[
            (GOOD, false, true, "good"),
            (REVOKED, false, true, "revoked"),
            (UNKNOWN, false, true, "unknown"),
            (GOOD, true, false, "good"),
            (REVOKED, true, false, "revoked"),
        ];
        for (serial, sha256, with_nonce, want) in table {
            let case = format!("{} serial {serial:02x?} sha256={sha256}", s.name);
            let (_, leaf_pem) = leaf(ca, "leaf.example.test", serial);
            let leaf_path = write(d, "leaf.pem", &leaf_pem);
            let req_path = d.join("req.der").to_str().unwrap().to_owned();
            let mut args = vec!["ocsp", "-issuer", &issuer_pem];
            if *sha256 {
                args.push("-sha256");
            }
            args.extend(["-cert", &leaf_path, "-reqout", &req_path]);
            if !with_nonce {
                args.push("-no_nonce");
            }
            let out = openssl(&args);
            assert!(out.ok, "{case}: {}", out.all());

            let req = parse_request_with_nonce(&std::fs::read(&req_path).unwrap()).unwrap();
            assert_eq!(req.nonce.is_some(), *with_nonce, "{case}");
            let answers: Vec<_> = req
                .cert_ids
                .iter()
                .map(|id| (id.clone(), status_for(&id.serial, revoked_at)))
                .collect();
            let resp = build_response(
                &ca.der,
                &ca.key,
                &answers,
                now,
                now - Duration::minutes(1),
                now + Duration::days(3),
                req.nonce.as_deref(),
            )
            .unwrap();
            let resp_path = write(d, "resp.der", &resp);

            // The responder is the issuer itself: trust it directly (-VAfile), or chain it
            // to the root (-CAfile + -verify_other). openssl ignores -reqin when -cert is
            // given, so one run checks the echoed nonce against the request (-reqin) and one
            // prints the status of the certificate file (-cert, with -no_nonce).
            let trust_direct = vec!["-VAfile", issuer_pem.as_str()];
            let trust_chain = vec!["-CAfile", &root_pem, "-verify_other", &issuer_pem];
            let by_request = vec!["-reqin", req_path.as_str()];
            let digest = if *sha256 { "-sha256" } else { "-sha1" };
            let by_cert = vec![
                "-issuer",
                &issuer_pem,
                digest,
                "-cert",
                &leaf_path,
                "-no_nonce",
            ];
            for trust in [&trust_direct, &trust_chain] {
                for mode in [&by_request, &by_cert] {
                    let mut args = vec!["ocsp", "-respin", &resp_path, "-resp_text"];
                    args.extend(trust.iter().chain(mode.iter()));
                    let out = openssl(&args);
                    let all = out.all();
                    let ctx = format!("{case} {:?}", &args[4..]);
                    assert!(out.ok, "{ctx}: {all}");
                    let must = [
                        "Response verify OK".to_owned(),
                        format!("Cert Status: {want}"),
                        format!("Responder Id: {spk_hash}"),
                        format!("Signature Algorithm: {}", s.sig_alg),
                    ];
                    for m in must {
                        assert!(all.contains(&m), "{ctx}: no {m:?} in {all}");
                    }
                    for m in ["WARNING", "Nonce Verify error", "Verify Failure"] {
                        assert!(!all.contains(m), "{ctx}: {m:?} in {all}");
                    }
                    assert_eq!(all.contains("OCSP Nonce"), *with_nonce, "{ctx}: {all}");
                    if mode == &by_cert {
                        let line = format!("leaf.pem: {want}");
                        assert!(all.contains(&line), "{ctx}: {all}");
                    }
                    if *serial == REVOKED {
                        assert!(all.contains("Reason: keyCompromise"), "{ctx}: {all}");
                    }
                }
            }
        }
    }
}

#[test]
fn several_certificates_in_one_response() {
    let ca = root(KeyKind::P256, "Cobble OCSP Root");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let issuer = write(d, "issuer.pem", &ca.pem);
    let paths: Vec<String> = [GOOD, REVOKED, UNKNOWN]
        .iter()
        .enumerate()
        .map(|(i, serial)| {
            write(
                d,
                &format!("l{i}.pem"),
                leaf(&ca, "x.example.test", serial).1,
            )
        })
        .collect();
    let req = d.join("req.der").to_str().unwrap().to_owned();
    let mut args = vec!["ocsp", "-issuer", &issuer, "-reqout", &req];
    for p in &paths {
        args.extend(["-cert", p.as_str()]);
    }
    assert!(openssl(&args).ok);
    let parsed = parse_request_with_nonce(&std::fs::read(&req).unwrap()).unwrap();
    assert_eq!(parsed.cert_ids.len(), 3);
    let now = OffsetDateTime::now_utc();
    let answers: Vec<_> = parsed
        .cert_ids
        .iter()
        .map(|id| (id.clone(), status_for(&id.serial, now - Duration::hours(1))))
        .collect();
    let next = now + Duration::days(1);
    let resp = build_response(
        &ca.der,
        &ca.key,
        &answers,
        now,
        now,
        next,
        parsed.nonce.as_deref(),
    )
    .unwrap();
    let resp_path = write(d, "resp.der", &resp);
    // -reqin checks the nonce echo; -cert (which makes openssl ignore -reqin) the statuses.
    let by_request = [
        "ocsp", "-respin", &resp_path, "-VAfile", &issuer, "-reqin", &req,
    ];
    let all = openssl(&by_request).all();
    assert!(all.contains("Response verify OK"), "{all}");
    assert!(!all.contains("Nonce Verify error"), "{all}");
    let mut args = vec![
        "ocsp",
        "-respin",
        &resp_path,
        "-VAfile",
        &issuer,
        "-no_nonce",
    ];
    args.extend(["-issuer", &issuer]);
    for p in &paths {
        args.extend(["-cert", p.as_str()]);
    }
    let all = openssl(&args).all();
    assert!(all.contains("Response verify OK"), "{all}");
    for (i, want) in ["good", "revoked", "unknown"].iter().enumerate() {
        assert!(all.contains(&format!("l{i}.pem: {want}")), "{want}: {all}");
    }
}

#[test]
fn openssl_notices_a_bad_signature_and_a_wrong_nonce() {
    let ca = root(KeyKind::P256, "Cobble OCSP Root");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let issuer = write(d, "issuer.pem", &ca.pem);
    let leaf_path = write(d, "leaf.pem", leaf(&ca, "x.example.test", GOOD).1);
    let req = d.join("req.der").to_str().unwrap().to_owned();
    let args = [
        "ocsp", "-issuer", &issuer, "-cert", &leaf_path, "-reqout", &req,
    ];
    assert!(openssl(&args).ok);
    let parsed = parse_request_with_nonce(&std::fs::read(&req).unwrap()).unwrap();
    let now = OffsetDateTime::now_utc();
    let answers = [(parsed.cert_ids[0].clone(), CertStatus::Good)];
    let next = now + Duration::days(1);
    let other_nonce = yasna::construct_der(|w| w.write_bytes(&[0x5a; 16]));
    let wrong_nonce = build_response(
        &ca.der,
        &ca.key,
        &answers,
        now,
        now,
        next,
        Some(&other_nonce),
    )
    .unwrap();
    let mut tampered = build_response(
        &ca.der,
        &ca.key,
        &answers,
        now,
        now,
        next,
        parsed.nonce.as_deref(),
    )
    .unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01; // inside the signature BIT STRING

    // (case, response, what openssl must say)
    let table = [
        ("wrong nonce", wrong_nonce, "nonce verify error"),
        ("tampered signature", tampered, "response verify failure"),
    ];
    for (case, resp, want) in table {
        let resp_path = write(d, "resp.der", &resp);
        let args = [
            "ocsp", "-reqin", &req, "-respin", &resp_path, "-VAfile", &issuer,
        ];
        let all = openssl(&args).all();
        assert!(all.to_lowercase().contains(want), "{case}: {all}");
    }
}

#[test]
fn error_responses_read_by_openssl() {
    let dir = tempfile::tempdir().unwrap();
    // (status, openssl's name for it)
    let table = [
        (OcspResponseStatus::MalformedRequest, "malformedrequest (1)"),
        (OcspResponseStatus::InternalError, "internalerror (2)"),
        (OcspResponseStatus::TryLater, "trylater (3)"),
        (OcspResponseStatus::SigRequired, "sigrequired (5)"),
        (OcspResponseStatus::Unauthorized, "unauthorized (6)"),
    ];
    for (status, want) in table {
        let path = write(dir.path(), "err.der", error_response(status));
        let out = openssl(&["ocsp", "-respin", &path, "-resp_text", "-noverify"]);
        assert!(out.all().contains(want), "{status:?}: {}", out.all());
    }
}

#[test]
fn bad_inputs_are_refused() {
    let ca = root(KeyKind::P256, "Cobble OCSP Root");
    let other = root(KeyKind::P256, "Someone Else");
    let id = CertId::for_serial(HashAlg::Sha1, &ca.der, GOOD).unwrap();
    let one = [(id, CertStatus::Good)];
    let now = OffsetDateTime::now_utc();
    let day = Duration::days(1);
    let far = OffsetDateTime::new_utc(
        time::Date::from_ordinal_date(-5, 1).unwrap(),
        time::Time::MIDNIGHT,
    );
    struct Row<'a> {
        case: &'a str,
        cert: &'a [u8],
        responses: &'a [(CertId, CertStatus)],
        this: OffsetDateTime,
        next: OffsetDateTime,
        want: &'a str,
    }
    let row = |case, cert, responses, this, next, want| Row {
        case,
        cert,
        responses,
        this,
        next,
        want,
    };
    let table = [
        row(
            "garbage issuer",
            b"junk",
            &one,
            now,
            now + day,
            "BadIssuerCert",
        ),
        row(
            "key of another CA",
            &other.der,
            &one,
            now,
            now + day,
            "KeyMismatch",
        ),
        row("no responses", &ca.der, &[], now, now + day, "NoResponses"),
        row(
            "nextUpdate = thisUpdate (§4.2.2.1)",
            &ca.der,
            &one,
            now,
            now,
            "BadTimes",
        ),
        row("thisUpdate in year -5", &ca.der, &one, far, now, "BadTimes"),
    ];
    for Row {
        case,
        cert,
        responses,
        this,
        next,
        want,
    } in table
    {
        let err: OcspError =
            build_response(cert, &ca.key, responses, now, this, next, None).unwrap_err();
        assert!(format!("{err:?}").starts_with(want), "{case}: {err:?}");
        assert_eq!(
            err.response_status(),
            OcspResponseStatus::InternalError,
            "{case}"
        );
    }
}
