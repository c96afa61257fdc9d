//! The validation address policy: refused addresses fail the challenge with `connection`
//! before any connection is made, at every hop and in both address families; loopback is
//! allowed by default and refused with `deny_loopback`; bodies are echoed at most 64
//! printable bytes. Only loopback ever receives traffic here.

use crate::assert_problem;
use crate::fixtures::MockDns;
use crate::servers::{CertSpec, MockHttp, Reply, dns_san, make_cert, start_tls};
use cobble_core::ProblemType;
use cobble_core::challenge::{ChallengeType, tlsalpn01_digest};
use cobble_core::identifier::Identifier;
use cobble_core::netpolicy::AddressPolicy;
use cobble_va::{ACME_TLS_ALPN, VaConfig, Validator};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const KA: &str = "tok.thumb";

fn dns(name: &str) -> Identifier {
    Identifier::Dns(name.to_owned())
}

fn ip(addr: &str) -> Identifier {
    Identifier::Ip(addr.parse().unwrap())
}

/// A validator on `d` with this address policy and a long step timeout, so that a
/// connection attempt to an unreachable address would show as a slow failure.
fn validator(d: &MockDns, http: u16, tls: u16, addresses: AddressPolicy) -> Validator {
    Validator::new(VaConfig {
        addresses,
        timeout: Duration::from_secs(5),
        ..d.validator(http, tls).config().clone()
    })
    .unwrap()
}

/// A loopback listener that only counts the connections it accepts.
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    // Accepts until the test's runtime ends.
    tokio::spawn(async move {
        while let Ok((_s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, n)
}

/// Asserts a refusal: `connection`, the detail fragment, the policy's wording and no
/// connection attempt (no timeout, no refused/unreachable error, fast).
#[track_caller]
fn assert_refused(e: &cobble_core::Problem, fragment: &str, ident: &str, started: Instant) {
    assert_problem(e, ProblemType::Connection, fragment, ident);
    assert!(
        e.detail.contains("Cobble does not validate against it"),
        "{e}"
    );
    for attempt in [
        "Timeout",
        "Connection refused",
        "Connection failed",
        "unreachable",
    ] {
        assert!(
            !e.detail.contains(attempt),
            "a connection was attempted: {e}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}: {e}",
        started.elapsed()
    );
}

#[tokio::test]
async fn http01_redirect_to_a_refused_address_fails_before_connecting() {
    let d = MockDns::start().await;
    let h = MockHttp::start().await;
    let va = validator(&d, h.port, 1, AddressPolicy::default());
    d.a("private.test", "10.0.0.5".parse().unwrap());
    d.aaaa("metadata.test", "fe80::1".parse().unwrap());
    d.a("metadata.test", "169.254.169.254".parse().unwrap());
    h.set("final", Reply::Body(KA.into()));
    let p = h.port;
    // (redirect target, detail fragment naming the address and its class)
    let rows: &[(&str, &str)] = &[
        (
            "http://10.0.0.1/.well-known/acme-challenge/final",
            "Fetching http://10.0.0.1:{p}/.well-known/acme-challenge/final: 10.0.0.1 is a private address (RFC 1918)",
        ),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a link-local address (RFC 3927)",
        ),
        (
            "http://[fe80::1]/x",
            "fe80::1 is a link-local address (RFC 4291 §2.5.6)",
        ),
        (
            "http://[::ffff:10.0.0.1]/x",
            "::ffff:10.0.0.1 (IPv4-mapped 10.0.0.1) is a private address (RFC 1918)",
        ),
        (
            "http://100.64.0.1/x",
            "100.64.0.1 is a shared (carrier-grade NAT) address (RFC 6598)",
        ),
        (
            "http://[fd00::1]/x",
            "fd00::1 is a unique local address (RFC 4193)",
        ),
        (
            "http://192.0.2.1/x",
            "192.0.2.1 is a documentation address (RFC 5737)",
        ),
        ("http://0.0.0.0/x", "0.0.0.0 is the unspecified address"),
        ("http://[::]/x", ":: is the unspecified address"),
        (
            "http://[64:ff9b::a00:1]/x",
            "64:ff9b::a00:1 is a NAT64 translation address (RFC 6052)",
        ),
        (
            "http://private.test/x",
            "Fetching http://private.test:{p}/x: 10.0.0.5 is a private address (RFC 1918)",
        ),
        // Both families refused: the first (IPv6) is named.
        ("http://metadata.test/x", "fe80::1 is a link-local address"),
        // An https redirect: the same policy.
        (
            "https://10.1.2.3/x",
            "10.1.2.3 is a private address (RFC 1918)",
        ),
    ];
    for (i, (target, fragment)) in rows.iter().enumerate() {
        let token = format!("hop{i}");
        h.set(&token, Reply::Redirect((*target).to_owned()));
        let started = Instant::now();
        let e = va
            .validate(ChallengeType::Http01, &dns("web.test"), &token, KA)
            .await
            .unwrap_err();
        let fragment = fragment.replace("{p}", &p.to_string());
        assert_refused(&e, &fragment, "web.test", started);
    }
    // The responder saw only the first hop of each validation.
    let reqs = h.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), rows.len(), "{reqs:?}");
    assert!(reqs.iter().all(|r| r.0.starts_with("hop")), "{reqs:?}");
}

#[tokio::test]
async fn refused_identifiers_and_names_fail_before_connecting() {
    let d = MockDns::start().await;
    let va = validator(&d, 1, 1, AddressPolicy::default());
    d.a("private.test", "192.168.1.1".parse().unwrap());
    d.aaaa("ula.test", "fd12::1".parse().unwrap());
    d.a("ula.test", "172.16.0.1".parse().unwrap());
    // (challenge, identifier, detail fragment)
    let rows: Vec<(ChallengeType, Identifier, &str)> = vec![
        (
            ChallengeType::Http01,
            ip("10.0.0.1"),
            "10.0.0.1 is a private address",
        ),
        (ChallengeType::Http01, ip("169.254.169.254"), "link-local"),
        (
            ChallengeType::Http01,
            ip("fe80::1"),
            "fe80::1 is a link-local address",
        ),
        (
            ChallengeType::TlsAlpn01,
            ip("10.0.0.1"),
            "tls-alpn-01 to 10.0.0.1:1: 10.0.0.1 is a private address",
        ),
        (
            ChallengeType::TlsAlpn01,
            ip("fe80::1"),
            "fe80::1 is a link-local address",
        ),
        (
            ChallengeType::TlsAlpn01,
            ip("169.254.169.254"),
            "169.254.169.254 is a link-local address",
        ),
        (
            ChallengeType::TlsAlpn01,
            dns("private.test"),
            "192.168.1.1 is a private address",
        ),
        (
            ChallengeType::Http01,
            dns("private.test"),
            "192.168.1.1 is a private address",
        ),
        (
            ChallengeType::TlsAlpn01,
            dns("ula.test"),
            "fd12::1 is a unique local address",
        ),
        (
            ChallengeType::Http01,
            dns("ula.test"),
            "fd12::1 is a unique local address",
        ),
    ];
    for (kind, id, fragment) in rows {
        let started = Instant::now();
        let e = va.validate(kind, &id, "tok", KA).await.unwrap_err();
        assert_refused(&e, fragment, &id.value(), started);
    }
}

#[tokio::test]
async fn refused_addresses_are_skipped_when_an_allowed_one_remains() {
    let d = MockDns::start().await;
    let h = MockHttp::start().await;
    let va = validator(&d, h.port, 1, AddressPolicy::default());
    d.aaaa("mixed.test", "fe80::1".parse().unwrap());
    d.a("mixed.test", "10.0.0.1".parse().unwrap());
    d.a("mixed.test", "127.0.0.1".parse().unwrap());
    h.set("tok", Reply::Body(KA.into()));
    let rec = va
        .validate(ChallengeType::Http01, &dns("mixed.test"), "tok", KA)
        .await
        .unwrap();
    assert_eq!(rec[0]["addressUsed"], "127.0.0.1");
    assert!(rec[0].get("addressesTried").is_none(), "{rec}");
}

#[tokio::test]
async fn loopback_is_allowed_by_default_and_refused_with_deny_loopback() {
    let d = MockDns::start().await;
    let h = MockHttp::start().await;
    h.set("tok", Reply::Body(KA.into()));
    let digest = tlsalpn01_digest(KA).to_vec();
    let tls = start_tls(
        make_cert(CertSpec {
            sans: vec![dns_san("web.test")],
            acme: Some((digest, true)),
        }),
        &[ACME_TLS_ALPN],
    )
    .await;

    let va = validator(&d, h.port, tls.port, AddressPolicy::default());
    va.validate(ChallengeType::Http01, &dns("web.test"), "tok", KA)
        .await
        .unwrap();
    va.validate(ChallengeType::Http01, &ip("127.0.0.1"), "tok", KA)
        .await
        .unwrap();
    va.validate(ChallengeType::TlsAlpn01, &dns("web.test"), "tok", KA)
        .await
        .unwrap();
    assert_eq!(h.requests.lock().unwrap().len(), 2);

    let deny = AddressPolicy {
        deny_loopback: true,
        ..AddressPolicy::default()
    };
    // Closed: nothing may reach these listeners.
    let (http_port, http_hits) = counting_listener().await;
    let (tls_port, tls_hits) = counting_listener().await;
    let va = validator(&d, http_port, tls_port, deny);
    d.aaaa("dual.test", "::1".parse().unwrap());
    let rows: Vec<(ChallengeType, Identifier, &str)> = vec![
        (
            ChallengeType::Http01,
            dns("web.test"),
            "127.0.0.1 is a loopback address (RFC 1122 §3.2.1.3); Cobble does not validate against it (--va-deny-loopback is set)",
        ),
        (
            ChallengeType::Http01,
            dns("dual.test"),
            "::1 is a loopback address (RFC 4291 §2.5.3)",
        ),
        (
            ChallengeType::Http01,
            ip("127.0.0.1"),
            "127.0.0.1 is a loopback address",
        ),
        (
            ChallengeType::Http01,
            ip("::1"),
            "::1 is a loopback address",
        ),
        (
            ChallengeType::Http01,
            ip("::ffff:127.0.0.1"),
            "(IPv4-mapped 127.0.0.1) is a loopback address",
        ),
        (
            ChallengeType::TlsAlpn01,
            dns("web.test"),
            "127.0.0.1 is a loopback address",
        ),
        (
            ChallengeType::TlsAlpn01,
            ip("::1"),
            "::1 is a loopback address",
        ),
    ];
    for (kind, id, fragment) in rows {
        let started = Instant::now();
        let e = va.validate(kind, &id, "tok", KA).await.unwrap_err();
        assert_refused(&e, fragment, &id.value(), started);
    }
    // Give a stray connection time to be counted, then check none came.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(http_hits.load(Ordering::SeqCst), 0);
    assert_eq!(tls_hits.load(Ordering::SeqCst), 0);
}

/// `allow_private` opens RFC 1918, CGNAT and ULA only: link-local and metadata stay refused,
/// and loopback stays allowed.
#[tokio::test]
async fn allow_private_keeps_link_local_refused() {
    let d = MockDns::start().await;
    let h = MockHttp::start().await;
    h.set("tok", Reply::Body(KA.into()));
    h.set(
        "meta",
        Reply::Redirect("http://169.254.169.254/latest/meta-data/".into()),
    );
    h.set("ll6", Reply::Redirect("http://[fe80::1]/x".into()));
    let va = validator(
        &d,
        h.port,
        1,
        AddressPolicy {
            allow_private: true,
            ..AddressPolicy::default()
        },
    );
    va.validate(ChallengeType::Http01, &dns("web.test"), "tok", KA)
        .await
        .unwrap();
    for (token, fragment) in [
        ("meta", "169.254.169.254 is a link-local address"),
        ("ll6", "fe80::1 is a link-local address"),
    ] {
        let started = Instant::now();
        let e = va
            .validate(ChallengeType::Http01, &dns("web.test"), token, KA)
            .await
            .unwrap_err();
        assert_refused(&e, fragment, "web.test", started);
    }
}

/// The quoted body in a detail: the text between `start` and the closing quote.
fn quoted_after<'a>(detail: &'a str, start: &str) -> &'a str {
    let from = detail
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} in {detail:?}"))
        + start.len();
    let rest = &detail[from..];
    assert!(rest.starts_with('"'), "{detail}");
    let end = rest[1..].find('"').expect("closing quote") + 1;
    &rest[1..end]
}

#[tokio::test]
async fn http01_incorrect_body_is_echoed_at_most_64_printable_bytes() {
    let d = MockDns::start().await;
    let h = MockHttp::start().await;
    let va = validator(&d, h.port, 1, AddressPolicy::default());
    let wrong = format!("{}\u{1b}[31m\u{7f}é{}", "A".repeat(40), "B".repeat(150));
    h.set("wrong", Reply::Body(wrong));
    h.set("big", Reply::Body("x".repeat(1000)));
    h.set("short", Reply::Body("  nope\n".into()));

    let e = va
        .validate(ChallengeType::Http01, &dns("web.test"), "wrong", KA)
        .await
        .unwrap_err();
    assert_problem(
        &e,
        ProblemType::IncorrectResponse,
        "[127.0.0.1]",
        "web.test",
    );
    let shown = quoted_after(&e.detail, "(got ");
    assert_eq!(shown.len(), 64, "{shown:?}");
    assert!(
        shown.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "{shown:?}"
    );
    assert_eq!(
        shown,
        format!("{}?[31m???{}", "A".repeat(40), "B".repeat(16))
    );
    assert!(e.detail.contains(&format!("{shown}\"...")), "{e}");
    assert!(!e.detail.contains(&"B".repeat(17)), "{e}");

    let e = va
        .validate(ChallengeType::Http01, &dns("web.test"), "big", KA)
        .await
        .unwrap_err();
    assert_problem(
        &e,
        ProblemType::Unauthorized,
        "body longer than 256 bytes",
        "web.test",
    );
    assert_eq!(quoted_after(&e.detail, "starting "), "x".repeat(64));
    assert!(!e.detail.contains(&"x".repeat(65)), "{e}");

    let e = va
        .validate(ChallengeType::Http01, &dns("web.test"), "short", KA)
        .await
        .unwrap_err();
    assert!(e.detail.contains("(got \"nope\")"), "{e}");
}
