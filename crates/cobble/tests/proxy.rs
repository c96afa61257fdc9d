//! The plain-HTTP ACME listener behind a TLS-terminating proxy (issue 14): URLs come from
//! X-Forwarded-Proto/Host only when the peer is a configured trusted proxy; forwarded
//! headers from anyone else are refused with a problem document.

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
