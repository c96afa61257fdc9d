//! http-01 (RFC 8555 §8.3) against the axum responder and the mock DNS server.

use crate::assert_problem;
use crate::fixtures::{MockDns, closed_port};
use crate::servers::{CertSpec, MockHttp, Reply, dns_san, make_cert};
use cobble_core::ProblemType;
use cobble_core::challenge::ChallengeType;
use cobble_core::identifier::Identifier;
use cobble_va::{VaConfig, Validator};
use std::sync::Arc;

const KA: &str = "tok.thumb";

fn dns(name: &str) -> Identifier {
    Identifier::Dns(name.to_owned())
}

#[tokio::test]
async fn http01_passes_by_name_and_by_ip() {
    let d = MockDns::start().await;
    let h = MockHttp::start().await;
    let va = d.validator(h.port, 1);
    h.set("tok", Reply::Body(format!("  {KA}\r\n")));

    let rec = va
        .validate(ChallengeType::Http01, &dns("web.test"), "tok", KA)
        .await
        .unwrap();
    assert_eq!(rec[0]["hostname"], "web.test");
    assert_eq!(rec[0]["addressUsed"], "127.0.0.1");
    assert_eq!(rec[0]["port"], h.port.to_string());
    assert_eq!(
        rec[0]["url"],
        format!("http://web.test:{}/.well-known/acme-challenge/tok", h.port)
    );

    let ip = Identifier::Ip("127.0.0.1".parse().unwrap());
    va.validate(ChallengeType::Http01, &ip, "tok", KA)
        .await
        .unwrap();

    let reqs = h.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].1, "web.test", "Host is the bare name (Boulder)");
    assert_eq!(
        reqs[1].1, "127.0.0.1",
        "Host is the IP for an ip identifier"
    );
    assert!(
        reqs[0].2.starts_with("cobble-va/"),
        "User-Agent {:?}",
        reqs[0].2
    );
}

#[tokio::test]
async fn http01_follows_redirects_within_the_rules() {
    let d = MockDns::start().await;
    let h = MockHttp::start().await;
    let va = d.validator(h.port, 1);
    h.set("final", Reply::Body(KA.into()));
    // Relative, then absolute to another name without a port (goes to the http-01 port).
    h.set(
        "start",
        Reply::Redirect("/.well-known/acme-challenge/hop".into()),
    );
    h.set(
        "hop",
        Reply::Redirect("http://other.test/.well-known/acme-challenge/final".into()),
    );
    let rec = va
        .validate(ChallengeType::Http01, &dns("web.test"), "start", KA)
        .await
        .unwrap();
    let hosts: Vec<&str> = rec
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["web.test", "web.test", "other.test"]);
}

#[tokio::test]
async fn http01_failures() {
    let d = MockDns::start().await;
    let h = MockHttp::start().await;
    let va = d.validator(h.port, 1);
    let p = h.port;
    h.set("wrong", Reply::Body("something else".into()));
    h.set("big", Reply::Body("x".repeat(1000)));
    h.set("gone", Reply::Status(404));
    h.set(
        "loop-a",
        Reply::Redirect("/.well-known/acme-challenge/loop-b".into()),
    );
    h.set(
        "loop-b",
        Reply::Redirect("/.well-known/acme-challenge/loop-a".into()),
    );
    h.set("badport", Reply::Redirect("http://web.test:8/x".into()));
    h.set("badscheme", Reply::Redirect("ftp://web.test/x".into()));
    for i in 0..12 {
        h.set(
            &format!("r{i}"),
            Reply::Redirect(format!("/.well-known/acme-challenge/r{}", i + 1)),
        );
    }
    h.set("slow", Reply::Slow);
    d.servfail("broken.test");

    let url = |t: &str| format!("http://web.test:{p}/.well-known/acme-challenge/{t}");
    let rows: Vec<(&str, &str, ProblemType, String)> = vec![
        (
            "web.test",
            "wrong",
            ProblemType::IncorrectResponse,
            format!("Expected {KA:?} (got \"something else\")"),
        ),
        (
            "web.test",
            "big",
            ProblemType::Unauthorized,
            "body longer than 256 bytes".into(),
        ),
        (
            "web.test",
            "gone",
            ProblemType::Unauthorized,
            format!("Invalid response from {} [127.0.0.1]: 404", url("gone")),
        ),
        (
            "web.test",
            "loop-a",
            ProblemType::Connection,
            "Redirect loop detected".into(),
        ),
        (
            "web.test",
            "badport",
            ProblemType::Connection,
            "Invalid port in redirect target".into(),
        ),
        (
            "web.test",
            "badscheme",
            ProblemType::Connection,
            "Invalid protocol scheme in redirect target".into(),
        ),
        (
            "web.test",
            "r0",
            ProblemType::Connection,
            "Too many redirects".into(),
        ),
        (
            "web.test",
            "slow",
            ProblemType::Connection,
            format!("127.0.0.1: Fetching {}: Timeout after connect", url("slow")),
        ),
        (
            "broken.test",
            "tok",
            ProblemType::Dns,
            "SERVFAIL looking up A for broken.test".into(),
        ),
        (
            "*.web.test",
            "tok",
            ProblemType::Malformed,
            "wildcard".into(),
        ),
    ];
    for (name, token, kind, fragment) in rows {
        let started = std::time::Instant::now();
        let e = va
            .validate(ChallengeType::Http01, &dns(name), token, KA)
            .await
            .unwrap_err();
        assert_problem(&e, kind, &fragment, name);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(4),
            "{token} took too long"
        );
    }
}

#[tokio::test]
async fn http01_connection_refused_names_the_address() {
    let d = MockDns::start().await;
    let port = closed_port().await;
    let va = d.validator(port, 1);
    let e = va
        .validate(ChallengeType::Http01, &dns("web.test"), "tok", KA)
        .await
        .unwrap_err();
    assert_problem(
        &e,
        ProblemType::Connection,
        "127.0.0.1: Fetching http://web.test",
        "web.test",
    );
    assert!(e.detail.contains("Connection refused"), "{e}");
}

#[tokio::test]
async fn http01_falls_back_from_ipv6_to_ipv4() {
    let d = MockDns::start().await;
    let h = MockHttp::start().await; // listens on 127.0.0.1 only
    let va = d.validator(h.port, 1);
    d.aaaa("dual.test", "::1".parse().unwrap());
    h.set("tok", Reply::Body(KA.into()));
    let rec = va
        .validate(ChallengeType::Http01, &dns("dual.test"), "tok", KA)
        .await
        .unwrap();
    assert_eq!(
        rec[0]["addressesResolved"],
        serde_json::json!(["::1", "127.0.0.1"])
    );
    assert_eq!(rec[0]["addressUsed"], "127.0.0.1");
    assert_eq!(rec[0]["addressesTried"], serde_json::json!(["::1"]));
}

/// An HTTPS front for `h` on a random loopback port: TLS with a self-signed certificate
/// for an unrelated name (validation must not check it), the bytes passed on to `h`.
async fn https_front(h: &MockHttp) -> u16 {
    let (cert, key) = make_cert(CertSpec {
        sans: vec![dns_san("unrelated.invalid")],
        acme: None,
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let backend = h.port;
    // Accepts until the test's runtime ends.
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

/// Boulder's `httpsPort`: an https redirect may go to the configured https port (443 by
/// default), a portless one goes there, and the certificate served there is not checked.
#[tokio::test]
async fn http01_redirect_to_https_uses_the_configured_https_port() {
    let d = MockDns::start().await;
    let h = MockHttp::start().await;
    let https = https_front(&h).await;
    let final_url = |port: u16| format!("https://web.test:{port}/.well-known/acme-challenge/final");
    h.set("final", Reply::Body(KA.into()));
    h.set("explicit", Reply::Redirect(final_url(https)));
    h.set(
        "portless",
        Reply::Redirect("https://web.test/.well-known/acme-challenge/final".into()),
    );
    h.set("to-443", Reply::Redirect(final_url(443)));
    let default_va = d.validator(h.port, 1);
    let va = Validator::new(VaConfig {
        https01_port: https,
        ..default_va.config().clone()
    })
    .unwrap();

    for token in ["explicit", "portless"] {
        let rec = va
            .validate(ChallengeType::Http01, &dns("web.test"), token, KA)
            .await
            .unwrap_or_else(|e| panic!("{token}: {e}"));
        assert_eq!(rec[1]["url"], final_url(https), "{token}");
        assert_eq!(rec[1]["port"], https.to_string(), "{token}");
    }

    // Pebble's drop-in: a redirect may go to any port (the https port is not configured).
    let any_port = Validator::new(VaConfig {
        redirect_any_port: true,
        ..default_va.config().clone()
    })
    .unwrap();
    let rec = any_port
        .validate(ChallengeType::Http01, &dns("web.test"), "explicit", KA)
        .await
        .expect("redirect to an unlisted port, followed");
    assert_eq!(rec[1]["url"], final_url(https));

    // (validator, token, detail fragment of the `connection` problem)
    let p = h.port;
    let rows: Vec<(&Validator, &str, String)> = vec![
        (
            &default_va,
            "explicit",
            format!(
                "Invalid port in redirect target. Only ports 80, 443, {p} are supported, \
                 not {https}"
            ),
        ),
        (
            &va,
            "to-443",
            format!(
                "Invalid port in redirect target. Only ports 80, {https}, {p} are supported, \
                 not 443"
            ),
        ),
    ];
    for (v, token, fragment) in rows {
        let e = v
            .validate(ChallengeType::Http01, &dns("web.test"), token, KA)
            .await
            .unwrap_err();
        assert_problem(&e, ProblemType::Connection, &fragment, "web.test");
    }
}
