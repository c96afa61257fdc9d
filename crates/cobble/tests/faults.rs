//! Fault knobs (issue 14): per endpoint and by percentage, 429 rateLimited and 503 with
//! Retry-After, 500 serverInternal, badNonce, delays, orders stuck in `processing`; set by
//! configuration and at run time through `/admin/faults` behind the admin token; `--seed`
//! reproduces the same faults for the same request sequence; Pebble's `/set-renewal-info/`.
//! Every injected answer is a whole problem document, over HTTP/1.1 and HTTP/2.

mod common;

use cobble_core::jwk::Curve;
use cobble_core::sign::Signer;
use cobble_server::faults::{FaultKind, FaultRule};
use common::{Engine, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

fn rule(spec: &str) -> FaultRule {
    FaultRule::parse_flag(spec).unwrap()
}

fn token(s: &TestServer) -> String {
    let r = s.running.as_ref().unwrap();
    std::fs::read_to_string(r.admin_token_file.as_ref().unwrap())
        .unwrap()
        .trim()
        .to_owned()
}

fn admin(s: &TestServer, path: &str) -> String {
    format!(
        "{}{path}",
        s.running.as_ref().unwrap().admin_url.as_ref().unwrap()
    )
}

/// The statuses of `n` HEAD newNonce requests.
async fn nonce_statuses(s: &TestServer, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = s.http.head(s.url("/acme/new-nonce")).send().await.unwrap();
        out.push(r.status().as_u16());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_gives_the_same_faults() {
    let start = |seed| {
        TestServer::start_with(
            Engine::Sqlite,
            move |c| {
                c.seed = Some(seed);
                c.faults = vec![rule("kind=unavailable,percent=50,endpoint=/acme/new-nonce")];
            },
            false,
        )
    };
    let a = start(7).await;
    let b = start(7).await;
    let c = start(8).await;
    let (sa, sb, sc) = (
        nonce_statuses(&a, 24).await,
        nonce_statuses(&b, 24).await,
        nonce_statuses(&c, 24).await,
    );
    assert_eq!(sa, sb, "same seed, same faults");
    assert_ne!(sa, sc, "another seed, other faults");
    assert!(sa.contains(&503) && sa.contains(&200), "{sa:?}");
    // Other endpoints are untouched by a rule for newNonce.
    for _ in 0..8 {
        assert_eq!(
            a.http.get(&a.directory_url).send().await.unwrap().status(),
            200
        );
    }
    // Re-seeding at run time restarts the sequence: b replays a's first draws.
    let put = b
        .http
        .put(admin(&b, "/admin/faults"))
        .bearer_auth(token(&b))
        .json(&json!({"rules": [{"kind": "unavailable", "percent": 50.0, "endpoint": "/acme/new-nonce"}], "seed": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(nonce_statuses(&b, 24).await, sa);
    for s in [a, b, c] {
        s.stop().await;
    }
}

/// Checks an injected problem over HTTP/2 (the harness client) and HTTP/1.1.
async fn check_both_versions(s: &TestServer, kind: &str, status: u16, retry_after: Option<&str>) {
    let h1 = reqwest::Client::builder()
        .http1_only()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(s.trust_root()).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    for (client, version) in [
        (&s.http, reqwest::Version::HTTP_2),
        (&h1, reqwest::Version::HTTP_11),
    ] {
        let r = client.head(s.url("/acme/new-nonce")).send().await.unwrap();
        assert_eq!(r.version(), version);
        // HEAD has no body: take the problem from a GET of the same endpoint.
        assert_eq!(r.status().as_u16(), status);
        let r = client.get(s.url("/acme/new-nonce")).send().await.unwrap();
        assert_eq!(r.version(), version);
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(retry.as_deref(), retry_after);
        let mut reply = common::Reply::from(r).await;
        // newNonce answers carry a nonce, problems included (RFC 8555 §7.2).
        reply.post = true;
        reply.assert_problem(kind, status, "injected by Cobble's fault knobs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_answers_with_a_whole_problem_and_rules_change_at_run_time() {
    let s = TestServer::start_with(
        Engine::Sqlite,
        |c| {
            c.seed = Some(1);
            c.va_always_valid = true;
            c.validation_poll_ms = 20;
            c.faults = vec![rule(
                "kind=rate-limited,percent=100,endpoint=/acme/new-nonce,retry-after-secs=7",
            )];
        },
        false,
    )
    .await;
    check_both_versions(&s, "rateLimited", 429, Some("7")).await;

    // The admin token guards the knobs.
    let url = admin(&s, "/admin/faults");
    let r = common::Reply::from(s.http.get(&url).send().await.unwrap()).await;
    r.assert_problem("unauthorized", 401, "Authorization: Bearer");
    let put = |body: Value| {
        s.http
            .put(&url)
            .bearer_auth(token(&s))
            .body(body.to_string())
            .send()
    };
    let r = common::Reply::from(put(json!({"rules": [{"kind": "explode"}]})).await.unwrap()).await;
    r.assert_problem("malformed", 400, "rules");
    let r = common::Reply::from(
        put(json!({"rules": [{"kind": "internal", "percent": 250.0}]}))
            .await
            .unwrap(),
    )
    .await;
    r.assert_problem("malformed", 400, "within 0-100");

    for (spec, kind, status, retry) in [
        ("unavailable", "serverInternal", 503, Some("1")),
        ("internal", "serverInternal", 500, None),
    ] {
        let r = put(json!({"rules": [{"kind": spec, "endpoint": "/acme/new-nonce"}]}))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        check_both_versions(&s, kind, status, retry).await;
    }
    let got: Value = s
        .http
        .get(&url)
        .bearer_auth(token(&s))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["rules"][0]["kind"], "internal");
    assert_eq!(got["seed"], 1);

    // badNonce on newAccount: answered before the nonce is looked at, so the same request
    // goes through once the knob is off.
    put(json!({"rules": [{"kind": "bad-nonce", "endpoint": "/acme/new-acct"}]}))
        .await
        .unwrap();
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let acct = s.url("/acme/new-acct");
    let body = k.sign_with_jwk(
        &acct,
        Some(&s.nonce().await),
        Some(&json!({"termsOfServiceAgreed": true})),
    );
    s.post(&acct, &body)
        .await
        .assert_problem("badNonce", 400, "injected by Cobble's fault knobs");
    // A delay changes nothing but the time.
    put(json!({"rules": [{"kind": "delay", "delay-ms": 50, "jitter-ms": 50}]}))
        .await
        .unwrap();
    let r = s.post(&acct, &body).await;
    assert_eq!(r.status, 201, "{r:?}");
    let kid = r.location.unwrap();

    // stuck-processing: finalize answers processing, and the order stays so until the
    // time is up, then becomes valid.
    put(json!({"rules": [{"kind": "stuck-processing", "stuck-secs": 2}]}))
        .await
        .unwrap();
    let name = "stuck.example.com";
    let csr = common::rcgen_csr(&[name], &rcgen::KeyPair::generate().unwrap());
    let fin = common::finalize_by_hand(&s, &k, &kid, &[name], &csr).await;
    assert_eq!(fin.status, 200, "{fin:?}");
    assert_eq!(fin.body["status"], "processing", "{fin:?}");
    let order_url = fin.location.clone().unwrap();
    let again = s.post_kid(&k, &kid, &order_url, None).await;
    assert_eq!(again.body["status"], "processing");
    let mut status = Value::Null;
    for _ in 0..100 {
        status = s.post_kid(&k, &kid, &order_url, None).await.body["status"].clone();
        if status != "processing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "valid");

    // The metrics count what was injected.
    let text = s
        .http
        .get(admin(&s, "/metrics"))
        .bearer_auth(token(&s))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = common::prom::parse(&text).unwrap();
    assert_eq!(
        m.sum(
            "cobble_faults_injected_total",
            &[("endpoint", "/acme/new-acct"), ("kind", "bad-nonce")]
        ),
        1.0
    );
    assert_eq!(
        m.sum(
            "cobble_faults_injected_total",
            &[("kind", "stuck-processing")]
        ),
        1.0
    );
    put(json!({"rules": []})).await.unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_renewal_info_overrides_the_window() {
    let s = TestServer::start_with(
        Engine::Sqlite,
        |c| {
            c.va_always_valid = true;
            c.validation_poll_ms = 20;
        },
        false,
    )
    .await;
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let kid = s.account(&k).await;
    let name = "ari.example.com";
    let csr = common::rcgen_csr(&[name], &rcgen::KeyPair::generate().unwrap());
    let fin = common::finalize_by_hand(&s, &k, &kid, &[name], &csr).await;
    assert_eq!(fin.body["status"], "valid", "{fin:?}");
    let chain = s
        .post_kid(&k, &kid, fin.body["certificate"].as_str().unwrap(), None)
        .await
        .text;
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain.as_bytes()).unwrap();
    let leaf = pem.parse_x509().unwrap();
    let serial: String = leaf
        .tbs_certificate
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let store = s.running.as_ref().unwrap().store.clone();
    let cert = store
        .certificate_by_serial(serial.trim_start_matches("00"))
        .await
        .unwrap()
        .expect("the certificate by serial");
    let ari = s.url(&format!("/acme/renewal-info/{}", cert.ari_id));
    let before: Value = s.http.get(&ari).send().await.unwrap().json().await.unwrap();
    let window = json!({"suggestedWindow": {"start": "2001-01-01T00:00:00Z", "end": "2001-01-02T00:00:00Z"}, "explanationURL": "https://example.com/why"});
    let set = |body: Value, with_token: bool| {
        let mut r = s
            .http
            .post(admin(&s, "/set-renewal-info/"))
            .body(body.to_string());
        if with_token {
            r = r.bearer_auth(token(&s));
        }
        r.send()
    };
    let body = json!({"Certificate": cert.pem, "ARIResponse": window.to_string()});
    assert_eq!(set(body.clone(), false).await.unwrap().status(), 401);
    let bad = common::Reply::from(
        set(json!({"certificate": cert.pem, "ariResponse": "{}"}), true)
            .await
            .unwrap(),
    )
    .await;
    bad.assert_problem("malformed", 400, "suggestedWindow");
    assert_eq!(set(body, true).await.unwrap().status(), 200);
    let after: Value = s.http.get(&ari).send().await.unwrap().json().await.unwrap();
    assert_ne!(before, after);
    assert_eq!(after, window);
    s.stop().await;
}

#[test]
fn kinds_parse_from_flags() {
    assert_eq!(
        rule("kind=stuck-processing").kind,
        FaultKind::StuckProcessing
    );
    assert!(FaultRule::parse_flag("kind=unavailable,percent=-1").is_err());
}
