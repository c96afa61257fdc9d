//! OCSP requests (RFC 6960 §4.1) made by `openssl ocsp -reqout`, parsed by
//! `cobble_ca::ocsp`: CertIDs with SHA-1 and SHA-256, several single requests, the nonce,
//! issuer matching, the Appendix A.1 GET form and refusal of garbage.

#[path = "revocation_support.rs"]
mod support;

use cobble_ca::ocsp::{
    CertId, HashAlg, MAX_GET_PATH_LEN, OcspError, OcspResponseStatus, cert_id_matches_issuer,
    error_response, parse_get_path, parse_request, parse_request_with_nonce,
};
use support::{KeyKind, intermediate, leaf, openssl, root, write};

const SERIAL_1: &[u8] = &[0x0a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78];
const SERIAL_2: &[u8] = &[0x7f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];

/// Runs `openssl ocsp ... -reqout` and returns the DER request.
fn openssl_request(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out_path = dir.join("req.der");
    let out_str = out_path.to_str().unwrap();
    let mut all = vec!["ocsp"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-reqout", out_str]);
    let out = openssl(&all);
    assert!(out.ok, "openssl {all:?}: {}", out.all());
    std::fs::read(out_path).unwrap()
}

#[test]
fn openssl_requests_parse_and_match_the_issuer() {
    let root = root(KeyKind::P384, "Cobble OCSP Root");
    let int = intermediate(&root, KeyKind::P256, "Cobble OCSP Intermediate");
    let rsa_root = root_rsa();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, leaf1) = leaf(&int, "one.example.test", SERIAL_1);
    let (_, leaf2) = leaf(&int, "two.example.test", SERIAL_2);
    let (_, rsa_leaf) = leaf(&rsa_root, "rsa.example.test", SERIAL_1);
    let issuer = write(d, "issuer.pem", &int.pem);
    let rsa_issuer = write(d, "rsa_issuer.pem", &rsa_root.pem);
    let l1 = write(d, "leaf1.pem", &leaf1);
    let l2 = write(d, "leaf2.pem", &leaf2);
    let lr = write(d, "rsa_leaf.pem", &rsa_leaf);

    struct Case<'a> {
        name: &'a str,
        args: Vec<&'a str>,
        issuer: &'a [u8],
        want: Vec<(HashAlg, &'a [u8])>,
        nonce: bool,
    }
    let (sha1, sha256) = (HashAlg::Sha1, HashAlg::Sha256);
    let cases = vec![
        Case {
            name: "SHA-1, no nonce",
            args: vec!["-issuer", &issuer, "-cert", &l1, "-no_nonce"],
            issuer: &int.der,
            want: vec![(sha1, SERIAL_1)],
            nonce: false,
        },
        Case {
            name: "SHA-1 with nonce",
            args: vec!["-issuer", &issuer, "-cert", &l1],
            issuer: &int.der,
            want: vec![(sha1, SERIAL_1)],
            nonce: true,
        },
        Case {
            name: "SHA-256, two certs",
            args: vec![
                "-issuer",
                &issuer,
                "-sha256",
                "-cert",
                &l1,
                "-cert",
                &l2,
                "-no_nonce",
            ],
            issuer: &int.der,
            want: vec![(sha256, SERIAL_1), (sha256, SERIAL_2)],
            nonce: false,
        },
        Case {
            name: "RSA issuer",
            args: vec!["-issuer", &rsa_issuer, "-cert", &lr],
            issuer: &rsa_root.der,
            want: vec![(sha1, SERIAL_1)],
            nonce: true,
        },
    ];
    for Case {
        name: case,
        args,
        issuer: issuer_der,
        want,
        nonce: want_nonce,
    } in cases
    {
        let der = openssl_request(d, &args);
        let req = parse_request_with_nonce(&der).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(parse_request(&der).unwrap(), req.cert_ids, "{case}");
        assert_eq!(req.cert_ids.len(), want.len(), "{case}");
        for (id, (hash, serial)) in req.cert_ids.iter().zip(&want) {
            assert_eq!(id.hash_alg, *hash, "{case}");
            assert_eq!(id.serial, *serial, "{case}");
            assert!(cert_id_matches_issuer(id, issuer_der), "{case}");
            assert!(
                !cert_id_matches_issuer(id, &root.der),
                "{case}: root is not the issuer"
            );
            let other = if issuer_der == int.der.as_slice() {
                &rsa_root.der
            } else {
                &int.der
            };
            assert!(!cert_id_matches_issuer(id, other), "{case}: other issuer");
            assert!(!cert_id_matches_issuer(id, b"garbage"), "{case}");
            assert_eq!(
                &CertId::for_serial(*hash, issuer_der, serial).unwrap(),
                id,
                "{case}"
            );
        }
        match (&req.nonce, want_nonce) {
            // OpenSSL sends a 16-octet nonce wrapped in an OCTET STRING: 04 10 ...
            (Some(n), true) => assert_eq!((n.len(), n[0], n[1]), (18, 0x04, 0x10), "{case}"),
            (None, false) => {}
            (n, _) => panic!("{case}: nonce {n:02x?}"),
        }

        // The same request in the Appendix A.1 GET forms decodes to the same DER.
        for form in get_forms(&der) {
            assert_eq!(parse_get_path(&form).unwrap(), der, "{case}: {form}");
        }
    }
}

#[test]
fn hand_built_requests_parse() {
    // RFC 9654 §2.1 nonce lengths 1..=32, wrapped in an OCTET STRING or raw (as very old
    // clients send); unknown non-critical extensions are ignored (§4.4).
    for exts in [
        vec![nonce(32), ext(false)],
        vec![nonce(1)],
        vec![nonce(16)],
        vec![raw_nonce(16)],
    ] {
        let want = exts[0].value.clone();
        let req = parse_request_with_nonce(&one(SHA1, 20, &[0x85], exts)).unwrap();
        assert_eq!(
            req.cert_ids[0].serial,
            [0x85],
            "serial without the sign octet"
        );
        assert_eq!(req.nonce, Some(want), "nonce kept verbatim for the echo");
    }
}

#[test]
fn garbage_is_malformed() {
    let ca = root(KeyKind::P256, "Cobble OCSP Root");
    let dir = tempfile::tempdir().unwrap();
    let (_, leaf1) = leaf(&ca, "one.example.test", SERIAL_1);
    let issuer = write(dir.path(), "issuer.pem", &ca.pem);
    let l1 = write(dir.path(), "leaf1.pem", &leaf1);
    let good = openssl_request(dir.path(), &["-issuer", &issuer, "-cert", &l1]);
    let mut trailing = good.clone();
    trailing.push(0);
    let single = |n: usize| Single {
        oid: SHA1,
        hash_len: 20,
        serial: vec![n as u8 + 1],
        negative: false,
    };
    let v2 = build(1, vec![single(0)], vec![]);
    let many = build(0, (0..33).map(single).collect(), vec![]);
    let negative = build(
        0,
        vec![Single {
            negative: true,
            ..single(0x84)
        }],
        vec![],
    );

    // (case, bytes, expected error variant); all map to malformedRequest (RFC 6960 §2.3)
    let table: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "Malformed"),
        ("text", b"GET / HTTP/1.1\r\n".to_vec(), "Malformed"),
        ("truncated", good[..good.len() - 3].to_vec(), "Malformed"),
        ("trailing byte", trailing, "Malformed"),
        ("a certificate", ca.der.clone(), "Malformed"),
        ("version v2 (§4.1.1)", v2, "Malformed"),
        (
            "empty requestList",
            build(0, vec![], vec![]),
            "RequestCount",
        ),
        ("33 single requests", many, "RequestCount"),
        (
            "MD5 CertID",
            one(MD5, 16, &[1], vec![]),
            "UnsupportedHashAlgorithm",
        ),
        (
            "19-octet SHA-1 hashes",
            one(SHA1, 19, &[1], vec![]),
            "Malformed",
        ),
        ("negative serial", negative, "Malformed"),
        (
            "empty nonce (RFC 9654)",
            one(SHA1, 20, &[1], vec![nonce(0)]),
            "BadNonce",
        ),
        (
            "33-octet nonce (RFC 9654)",
            one(SHA1, 20, &[1], vec![nonce(33)]),
            "BadNonce",
        ),
        (
            "raw 40-octet nonce",
            one(SHA1, 20, &[1], vec![raw_nonce(40)]),
            "BadNonce",
        ),
        (
            "critical unknown (§4.4)",
            one(SHA1, 20, &[1], vec![ext(true)]),
            "UnsupportedCritical",
        ),
    ];
    for (case, bytes, want) in table {
        let err: OcspError = parse_request(&bytes).unwrap_err();
        assert!(format!("{err:?}").starts_with(want), "{case}: {err:?}");
        let status = err.response_status();
        assert_eq!(status, OcspResponseStatus::MalformedRequest, "{case}");
        assert!(!err.to_string().is_empty(), "{case}");
    }
}

#[test]
fn get_path_forms() {
    // DER 30 03 0a 01 01 -> base64 "MAMKAQE=" ; fb ff bf -> "+/+/" or "-_-_"
    let table: &[(&str, Option<&[u8]>)] = &[
        ("MAMKAQE=", Some(&[0x30, 0x03, 0x0a, 0x01, 0x01])),
        ("MAMKAQE", Some(&[0x30, 0x03, 0x0a, 0x01, 0x01])),
        ("MAMKAQE%3D", Some(&[0x30, 0x03, 0x0a, 0x01, 0x01])),
        ("MAMKAQE%3d", Some(&[0x30, 0x03, 0x0a, 0x01, 0x01])),
        ("%2B%2F%2B%2F", Some(&[0xfb, 0xff, 0xbf])),
        ("+/+/", Some(&[0xfb, 0xff, 0xbf])),
        (" /+/", Some(&[0xfb, 0xff, 0xbf])),
        ("-_-_", Some(&[0xfb, 0xff, 0xbf])),
        ("MA==", Some(&[0x30])),
        ("MA", Some(&[0x30])),
        ("", None),
        ("M", None),
        ("MA=", None),
        ("MA===", None),
        ("MAMK=AQE", None),
        ("MAMKAQE%3", None),
        ("MAMKAQE%zz", None),
        ("MA*K", None),
        ("====", None),
    ];
    for (input, want) in table {
        match (parse_get_path(input), want) {
            (Ok(got), Some(w)) => assert_eq!(&got, w, "{input}"),
            (Err(OcspError::Malformed(_)), None) => {}
            (got, _) => panic!("{input:?}: unexpected {got:?}"),
        }
    }
    assert!(parse_get_path(&"A".repeat(MAX_GET_PATH_LEN + 4)).is_err());
}

/// Found by fuzzing (issue 15, fuzz/corpus/ocsp): a length near `usize::MAX` in an
/// element yasna skips (requestorName, the signature, CertID hash parameters) wrapped its
/// position: an overflow panic in debug builds, a reversed-slice panic or a loop forever
/// (inside an indefinite-length element) in release builds. Now `malformedRequest`.
#[test]
fn lengths_past_the_end_are_malformed_not_a_panic_or_a_hang() {
    let huge = |back: u8| [0x04, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, back];
    let indefinite =
        |inner: &[u8]| [&[0x30, 0x80, 0x30, 0x80, 0xa1, 0x80][..], inner, &[0; 8]].concat();
    let table: Vec<(&str, Vec<u8>)> = vec![
        // requestorName [1] holding an OCTET STRING of 2^64 - 16 octets.
        ("wrapping length", indefinite(&huge(0xf0))),
        // ... inside an indefinite SEQUENCE, pointing back at itself (the release-build hang).
        (
            "self-referencing length",
            indefinite(&[&[0x30, 0x80][..], &huge(0xf6), &[0, 0]].concat()),
        ),
        (
            "definite length past the end",
            vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x30],
        ),
        (
            "primitive with indefinite length",
            vec![0x30, 0x80, 0x04, 0x80, 0, 0, 0, 0],
        ),
        (
            "nested 200 deep",
            [[0x30, 0x80].repeat(200), vec![0; 400]].concat(),
        ),
    ];
    for (case, bytes) in table {
        let err = parse_request(&bytes).unwrap_err();
        assert!(matches!(err, OcspError::Malformed(_)), "{case}: {err:?}");
        assert_eq!(
            err.response_status(),
            OcspResponseStatus::MalformedRequest,
            "{case}"
        );
    }
}

#[test]
fn error_responses_are_status_only() {
    // RFC 6960 §4.2.1: OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, ... }
    let table = [
        (OcspResponseStatus::MalformedRequest, 1u8),
        (OcspResponseStatus::InternalError, 2),
        (OcspResponseStatus::TryLater, 3),
        (OcspResponseStatus::SigRequired, 5),
        (OcspResponseStatus::Unauthorized, 6),
    ];
    for (status, code) in table {
        assert_eq!(error_response(status), [0x30, 0x03, 0x0a, 0x01, code]);
    }
}

const SHA1: &[u64] = &[1, 3, 14, 3, 2, 26];
const MD5: &[u64] = &[1, 2, 840, 113549, 2, 5];

struct Single {
    oid: &'static [u64],
    hash_len: usize,
    serial: Vec<u8>,
    negative: bool,
}

struct Ext {
    oid: &'static [u64],
    critical: bool,
    value: Vec<u8>,
}

/// The RFC 6960 §4.4.1 nonce extension holding an OCTET STRING of `n` octets.
fn nonce(n: usize) -> Ext {
    raw_nonce(0).with(yasna::construct_der(|w| w.write_bytes(&vec![9; n])))
}

/// A nonce extension whose extnValue holds `n` bare octets.
fn raw_nonce(n: usize) -> Ext {
    let oid = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 2];
    Ext {
        oid,
        critical: false,
        value: vec![9; n],
    }
}

/// An unknown extension (1.2.3.4).
fn ext(critical: bool) -> Ext {
    Ext {
        oid: &[1, 2, 3, 4],
        critical,
        value: vec![5, 0],
    }
}

impl Ext {
    fn with(self, value: Vec<u8>) -> Self {
        Ext { value, ..self }
    }
}

/// A v1 request with one CertID.
fn one(oid: &'static [u64], hash_len: usize, serial: &[u8], exts: Vec<Ext>) -> Vec<u8> {
    let serial = serial.to_vec();
    build(
        0,
        vec![Single {
            oid,
            hash_len,
            serial,
            negative: false,
        }],
        exts,
    )
}

/// A hand-built OCSPRequest (RFC 6960 §4.1.1) for the cases openssl will not produce.
fn build(version: u8, singles: Vec<Single>, exts: Vec<Ext>) -> Vec<u8> {
    use yasna::Tag;
    use yasna::models::ObjectIdentifier;
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                if version != 0 {
                    w.next()
                        .write_tagged(Tag::context(0), |w| w.write_u8(version));
                }
                w.next().write_sequence_of(|w| {
                    for s in &singles {
                        w.next().write_sequence(|w| {
                            w.next().write_sequence(|w| {
                                w.next().write_sequence(|w| {
                                    w.next().write_oid(&ObjectIdentifier::from_slice(s.oid));
                                    w.next().write_null();
                                });
                                w.next().write_bytes(&vec![0x11; s.hash_len]);
                                w.next().write_bytes(&vec![0x22; s.hash_len]);
                                w.next().write_bigint_bytes(&s.serial, !s.negative);
                            });
                        });
                    }
                });
                if !exts.is_empty() {
                    w.next().write_tagged(Tag::context(2), |w| {
                        w.write_sequence_of(|w| {
                            for e in &exts {
                                w.next().write_sequence(|w| {
                                    w.next().write_oid(&ObjectIdentifier::from_slice(e.oid));
                                    if e.critical {
                                        w.next().write_bool(true);
                                    }
                                    w.next().write_bytes(&e.value);
                                });
                            }
                        });
                    });
                }
            });
        });
    })
}

fn root_rsa() -> support::Ca {
    root(KeyKind::Rsa2048, "Cobble OCSP RSA Root")
}

/// The request in each GET form: standard, URL-encoded, URL-safe, unpadded.
fn get_forms(der: &[u8]) -> Vec<String> {
    let std_b64 = base64(der);
    let url_encoded = std_b64
        .replace('%', "%25")
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let url_safe = std_b64.replace('+', "-").replace('/', "_");
    let unpadded = url_safe.trim_end_matches('=').to_owned();
    vec![std_b64, url_encoded, url_safe, unpadded]
}

/// Standard padded base64 (RFC 4648 §4), written out so the test does not share the
/// decoder's assumptions.
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn cert_id_serials_are_normalized() {
    let ca = root(KeyKind::P256, "Cobble OCSP Root");
    // (serial given, serial stored): leading zero octets dropped, zero kept as one octet.
    let table: &[(&[u8], &[u8])] = &[
        (&[0, 0, 0x80, 1], &[0x80, 1]),
        (&[5], &[5]),
        (&[0], &[0]),
        (&[], &[0]),
    ];
    for (given, want) in table {
        let id = CertId::for_serial(HashAlg::Sha256, &ca.der, given).unwrap();
        assert_eq!(id.serial, *want, "{given:02x?}");
        assert_eq!(id.issuer_name_hash.len(), 32);
    }
    assert!(CertId::for_serial(HashAlg::Sha1, b"junk", &[1]).is_err());
}
