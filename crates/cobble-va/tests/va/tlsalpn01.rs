//! tls-alpn-01 (RFC 8737) against the tokio-rustls responder.

use crate::assert_problem;
use crate::fixtures::{MockDns, closed_port};
use crate::servers::{CertSpec, dns_san, ip_san, make_cert, start_tls};
use cobble_core::ProblemType;
use cobble_core::challenge::{ChallengeType, tlsalpn01_digest};
use cobble_core::identifier::Identifier;
use cobble_va::ACME_TLS_ALPN;

const KA: &str = "tok.thumb";

/// (what, certificate, server ALPN protocols, problem type, detail fragment)
type Row<'a> = (&'a str, CertSpec, &'a [&'a [u8]], ProblemType, &'a str);

fn dns(name: &str) -> Identifier {
    Identifier::Dns(name.to_owned())
}

/// The SNIs the server logged, polled for at most 2 s (its task logs after the handshake).
async fn snis(srv: &crate::servers::MockTls) -> Vec<String> {
    for _ in 0..200 {
        let v = srv.snis.lock().unwrap().clone();
        if !v.is_empty() {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Vec::new()
}

#[tokio::test]
async fn tlsalpn01_passes_for_a_name_and_an_ip() {
    let d = MockDns::start().await;
    let digest = tlsalpn01_digest(KA).to_vec();

    let cert = make_cert(CertSpec {
        sans: vec![dns_san("alpn.test")],
        acme: Some((digest.clone(), true)),
    });
    let srv = start_tls(cert, &[ACME_TLS_ALPN]).await;
    let va = d.validator(1, srv.port);
    let rec = va
        .validate(ChallengeType::TlsAlpn01, &dns("alpn.test"), "tok", KA)
        .await
        .unwrap();
    assert_eq!(rec[0]["addressUsed"], "127.0.0.1");
    assert_eq!(snis(&srv).await, ["alpn.test"]);

    let cert = make_cert(CertSpec {
        sans: vec![ip_san("127.0.0.1")],
        acme: Some((digest, true)),
    });
    let srv = start_tls(cert, &[ACME_TLS_ALPN]).await;
    let va = d.validator(1, srv.port);
    let ip = Identifier::Ip("127.0.0.1".parse().unwrap());
    va.validate(ChallengeType::TlsAlpn01, &ip, "tok", KA)
        .await
        .unwrap();
    // RFC 8738 §6: the SNI for an IP is its reverse-mapping name.
    assert_eq!(snis(&srv).await, ["1.0.0.127.in-addr.arpa"]);
}

#[tokio::test]
async fn tlsalpn01_failures() {
    let d = MockDns::start().await;
    let good = tlsalpn01_digest(KA).to_vec();
    let name = "alpn.test";
    let rows: Vec<Row<'_>> = vec![
        (
            "wrong digest",
            CertSpec {
                sans: vec![dns_san(name)],
                acme: Some((vec![0; 32], true)),
            },
            &[ACME_TLS_ALPN],
            ProblemType::IncorrectResponse,
            "acmeIdentifier extension value 0000",
        ),
        (
            "no extension",
            CertSpec {
                sans: vec![dns_san(name)],
                acme: None,
            },
            &[ACME_TLS_ALPN],
            ProblemType::Unauthorized,
            "no acmeIdentifier extension",
        ),
        (
            "not critical",
            CertSpec {
                sans: vec![dns_san(name)],
                acme: Some((good.clone(), false)),
            },
            &[ACME_TLS_ALPN],
            ProblemType::Unauthorized,
            "not critical",
        ),
        (
            "two SANs",
            CertSpec {
                sans: vec![dns_san(name), dns_san("extra.test")],
                acme: Some((good.clone(), true)),
            },
            &[ACME_TLS_ALPN],
            ProblemType::Unauthorized,
            "exactly one subjectAltName",
        ),
        (
            "other SAN",
            CertSpec {
                sans: vec![dns_san("other.test")],
                acme: Some((good.clone(), true)),
            },
            &[ACME_TLS_ALPN],
            ProblemType::Unauthorized,
            "unexpected identifiers [dns:other.test]",
        ),
        (
            "server refuses acme-tls/1",
            CertSpec {
                sans: vec![dns_san(name)],
                acme: Some((good.clone(), true)),
            },
            &[b"h2"],
            ProblemType::Tls,
            "Cannot negotiate ALPN protocol \"acme-tls/1\"",
        ),
        (
            "server ignores ALPN",
            CertSpec {
                sans: vec![dns_san(name)],
                acme: Some((good.clone(), true)),
            },
            &[],
            ProblemType::Tls,
            "Cannot negotiate ALPN protocol \"acme-tls/1\"",
        ),
    ];
    for (what, spec, alpn, kind, fragment) in rows {
        let srv = start_tls(make_cert(spec), alpn).await;
        let va = d.validator(1, srv.port);
        let e = va
            .validate(ChallengeType::TlsAlpn01, &dns(name), "tok", KA)
            .await
            .expect_err(what);
        assert_problem(&e, kind, fragment, name);
    }
}

#[tokio::test]
async fn tlsalpn01_connection_refused_and_not_tls() {
    let d = MockDns::start().await;
    let va = d.validator(1, closed_port().await);
    let e = va
        .validate(ChallengeType::TlsAlpn01, &dns("alpn.test"), "tok", KA)
        .await
        .unwrap_err();
    assert_problem(
        &e,
        ProblemType::Connection,
        "Connection refused",
        "alpn.test",
    );
    assert!(e.detail.starts_with("127.0.0.1:"), "{e}");

    // A plain-HTTP server on the port: the handshake fails -> tls.
    let h = crate::servers::MockHttp::start().await;
    let va = d.validator(1, h.port);
    let e = va
        .validate(ChallengeType::TlsAlpn01, &dns("alpn.test"), "tok", KA)
        .await
        .unwrap_err();
    assert_problem(&e, ProblemType::Tls, "TLS handshake failed", "alpn.test");
}
