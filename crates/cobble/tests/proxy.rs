//! The plain-HTTP ACME listener behind a TLS-terminating proxy (issue 14): URLs come from
//! X-Forwarded-Proto/Host only when the peer is a configured trusted proxy; forwarded
//! headers from anyone else are refused with a problem document. The request rates key on
//! the client the trusted proxy forwards, never on what anyone else claims.

mod common;

use cobble_core::jwk::Curve;
use cobble_core::sign::Signer;
use common::{Engine, TestServer};
use serde_json::json;

async fn start(trusted: &str) -> TestServer {
    let trusted = trusted.parse().unwrap();
    TestServer::start_with(
        Engine::Sqlite,
        move |c| {
            c.http_listen = Some("127.0.0.1:0".parse().unwrap());
            c.trusted_proxies = vec![trusted];
        },
        false,
    )
    .await
}

fn plain(s: &TestServer, path: &str) -> String {
    format!(
        "http://{}{path}",
        s.running.as_ref().unwrap().http_addr.unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_names_the_urls() {
    let s = start("127.0.0.1").await;
    let http = reqwest::Client::new();
    let dir: serde_json::Value = http
        .get(plain(&s, "/dir"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "acme.example.test:8443")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        dir["newAccount"],
        "https://acme.example.test:8443/acme/new-acct"
    );
    // A signed request names the proxy's URL, and is accepted through the plain listener.
    let n = http
        .head(plain(&s, "/acme/new-nonce"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "acme.example.test:8443")
        .send()
        .await
        .unwrap()
        .headers()["replay-nonce"]
        .to_str()
        .unwrap()
        .to_owned();
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let url = "https://acme.example.test:8443/acme/new-acct";
    let body = k.sign_with_jwk(url, Some(&n), Some(&json!({"termsOfServiceAgreed": true})));
    let r = http
        .post(plain(&s, "/acme/new-acct"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "acme.example.test:8443")
        .header("content-type", "application/jose+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let r = common::Reply::from(r).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert!(
        r.location
            .unwrap()
            .starts_with("https://acme.example.test:8443/acme/acct/")
    );
    // The proxy must have terminated TLS.
    let r = http
        .get(plain(&s, "/dir"))
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .unwrap();
    common::Reply::from(r)
        .await
        .assert_problem("malformed", 400, "X-Forwarded-Proto: https");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_from_anyone_else_are_refused() {
    let s = start("192.0.2.1").await;
    let http = reqwest::Client::new();
    for (name, value) in [
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "host=evil.example;proto=https"),
    ] {
        let r = http
            .get(plain(&s, "/dir"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        common::Reply::from(r).await.assert_problem(
            "unauthorized",
            403,
            "accepted only from the configured trusted proxies",
        );
    }
    // The HTTPS listener never reads forwarded headers at all.
    let dir: serde_json::Value = s
        .http
        .get(&s.directory_url)
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !dir["newAccount"].as_str().unwrap().contains("evil"),
        "{dir}"
    );
    s.stop().await;
}

/// A server behind `trusted` whose directory admits a burst of 2, then 1 per second.
async fn start_limited(trusted: &str) -> TestServer {
    let trusted = trusted.parse().unwrap();
    TestServer::start_with(
        Engine::Sqlite,
        move |c| {
            c.http_listen = Some("127.0.0.1:0".parse().unwrap());
            c.trusted_proxies = vec![trusted];
            c.no_rate_limits = false;
            c.rate_limits.directory = cobble_core::ratelimit::Rate {
                per_second: 1,
                burst: 2,
            };
        },
        false,
    )
    .await
}

/// GETs the directory on the plain listener with `headers` until refused (at most 20
/// tries: a burst of 2 at 1 per second runs out well before, however slow the machine);
/// the refusal.
async fn until_refused(s: &TestServer, headers: &[(&str, &str)]) -> common::Reply {
    let http = reqwest::Client::new();
    for _ in 0..20 {
        let mut req = http
            .get(plain(s, "/dir"))
            .header("x-forwarded-proto", "https");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = common::Reply::from(req.send().await.unwrap()).await;
        if r.status != 200 {
            return r;
        }
    }
    panic!("never refused with {headers:?}");
}

async fn directory_status(s: &TestServer, headers: &[(&str, &str)]) -> u16 {
    let mut req = reqwest::Client::new()
        .get(plain(s, "/dir"))
        .header("x-forwarded-proto", "https");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_rates_key_on_the_client_behind_a_trusted_proxy() {
    let s = start_limited("127.0.0.1").await;
    let r = until_refused(&s, &[("x-forwarded-for", "198.51.100.7")]).await;
    r.assert_problem(
        "rateLimited",
        429,
        "too many requests to directory from 198.51.100.7",
    );
    // Another client behind the same proxy has a bucket of its own...
    assert_eq!(
        directory_status(&s, &[("x-forwarded-for", "198.51.100.8")]).await,
        200
    );
    // ...and so has the proxy itself; a client's own claim to the left of the hop the
    // proxy saw changes nothing.
    assert_eq!(directory_status(&s, &[]).await, 200);
    let r = until_refused(&s, &[("x-forwarded-for", "203.0.113.1, 198.51.100.7")]).await;
    r.assert_problem("rateLimited", 429, "from 198.51.100.7");
    // Forwarded: for= (RFC 7239) too.
    let r = until_refused(
        &s,
        &[("forwarded", "for=\"[2001:db8::7]:4711\";proto=https")],
    )
    .await;
    r.assert_problem("rateLimited", 429, "from 2001:db8::7");
    // A hop that is not an address: the proxy's own bucket.
    let r = until_refused(&s, &[("x-forwarded-for", "unknown")]).await;
    r.assert_problem("rateLimited", 429, "from 127.0.0.1");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_rates_ignore_forwarded_for_from_anyone_else() {
    let s = start_limited("192.0.2.1").await;
    // A new address in every request would never be refused if the header were believed.
    let http = reqwest::Client::new();
    let mut refusal = None;
    for i in 0..20 {
        let r = http
            .get(plain(&s, "/dir"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .send()
            .await
            .unwrap();
        let r = common::Reply::from(r).await;
        if r.status != 200 {
            refusal = Some(r);
            break;
        }
    }
    refusal
        .expect("refused on the peer's address")
        .assert_problem("rateLimited", 429, "from 127.0.0.1");
    s.stop().await;
}
