//! Fault knobs (issue 14): per endpoint and by percentage, 429 rateLimited and 503 with
//! Retry-After, 500 serverInternal, badNonce, delays, orders stuck in `processing`; set by
//! configuration and at run time through `/admin/faults` behind the admin token; `--seed`
//! reproduces the same faults for the same request sequence; Pebble's `/set-renewal-info/`.
//! Every injected answer is a whole problem document, over HTTP/1.1 and HTTP/2.
//! The `cobble serve` binary is driven too: `--fault` flags, `[[faults]]` tables in a
//! `--config` file, a timed `delay`, and `--seed` reproducing injected faults, nonce
//! rejection and authorization reuse.

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

// ----- through the `cobble serve` binary: `--fault`, `[[faults]]`, `--seed` -----

/// A `cobble serve` process of its own (SQLite in a temporary data dir, no management
/// listener), started with `args` and none of the caller's `COBBLE_*`/`PEBBLE_*` settings.
struct Served {
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    base: String,
    http: reqwest::Client,
}

impl Served {
    async fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr.log");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_cobble"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", ""])
            .arg("--data-dir")
            .arg(dir.path())
            .args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("COBBLE_") || k.starts_with("PEBBLE_") || k == "DATABASE_URL" {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let Some(banner) = common::ready_banner(&mut child).await else {
            panic!(
                "cobble serve {args:?} exited before it was ready: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        };
        let directory = common::banner_field(&banner, "directory").expect("a directory line");
        let root = std::fs::read(dir.path().join("tls/ca.pem")).unwrap();
        Served {
            _child: child,
            _dir: dir,
            base: directory.trim_end_matches("/dir").to_owned(),
            http: common::client_trusting(&root),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> common::Reply {
        common::Reply::from(self.http.get(self.url(path)).send().await.unwrap()).await
    }

    /// A fresh nonce from a HEAD of newNonce, which must not be faulted.
    async fn nonce(&self) -> String {
        let r = self
            .http
            .head(self.url("/acme/new-nonce"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "newNonce is not faulted here");
        r.headers()["replay-nonce"].to_str().unwrap().to_owned()
    }

    /// POSTs a JWS to `path`.
    async fn post(&self, path: &str, body: &Value) -> common::Reply {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", "application/jose+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let mut reply = common::Reply::from(r).await;
        reply.post = true;
        reply
    }

    /// A `kid`-signed POST to the absolute `url`, with a fresh nonce.
    async fn post_kid(
        &self,
        k: &Signer,
        kid: &str,
        url: &str,
        payload: Option<&Value>,
    ) -> common::Reply {
        let body = k.sign_with_kid(kid, url, &self.nonce().await, payload);
        let path = url.strip_prefix(&self.base).expect("a URL of this server");
        self.post(path, &body).await
    }

    /// A newAccount lookup (`onlyReturnExisting`) for a key that has no account, with `nonce`.
    async fn lookup(&self, k: &Signer, nonce: &str) -> common::Reply {
        let body = k.sign_with_jwk(
            &self.url("/acme/new-acct"),
            Some(nonce),
            Some(&json!({"onlyReturnExisting": true})),
        );
        self.post("/acme/new-acct", &body).await
    }
}

fn retry_after(r: &common::Reply) -> Option<&str> {
    r.headers.get("retry-after").map(|v| v.to_str().unwrap())
}

/// `/dir` answers the normal directory.
#[track_caller]
fn assert_directory(r: &common::Reply) {
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["newNonce"].as_str().is_some(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_flags_of_cobble_serve_answer_their_endpoints_only() {
    let s = Served::start(&[
        "--fault",
        "kind=unavailable,endpoint=/acme/new-nonce,retry-after-secs=3",
        "--fault",
        "kind=rate-limited,endpoint=/acme/new-acct,retry-after-secs=5",
    ])
    .await;
    // 100 % is every request: HEAD and GET of newNonce get 503 with Retry-After.
    for _ in 0..8 {
        let head = s.http.head(s.url("/acme/new-nonce")).send().await.unwrap();
        assert_eq!(head.status(), 503);
        assert_eq!(head.headers()["retry-after"], "3");
        let mut r = s.get("/acme/new-nonce").await;
        // newNonce answers carry a nonce, problems included (RFC 8555 §7.2).
        r.post = true;
        r.assert_problem("serverInternal", 503, "injected by Cobble's fault knobs");
        assert_eq!(retry_after(&r), Some("3"), "{r:?}");
    }
    // The second flag is a rule too: newAccount gets 429 rateLimited, with a nonce to retry
    // with, before its (here bogus) nonce is looked at.
    let k = Signer::generate_ec(Curve::P256).unwrap();
    for _ in 0..4 {
        let r = s.lookup(&k, "not-a-nonce").await;
        r.assert_problem("rateLimited", 429, "injected by Cobble's fault knobs");
        assert_eq!(retry_after(&r), Some("5"), "{r:?}");
    }
    // Endpoints without a rule answer as ever: the directory, and newOrder refusing junk
    // for what it is.
    for _ in 0..8 {
        assert_directory(&s.get("/dir").await);
    }
    let r = s.post("/acme/new-order", &json!({})).await;
    r.assert_problem("malformed", 400, "");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(!detail.contains("injected"), "{r:?}");
    assert_eq!(retry_after(&r), None, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_tables_of_the_config_file_apply_and_delays_take_their_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cobble.toml");
    std::fs::write(
        &config,
        r#"
seed = 5

[[faults]]
kind = "unavailable"
endpoint = "/acme/new-nonce"
retry-after-secs = 2

[[faults]]
kind = "delay"
endpoint = "/dir"
delay-ms = 300
jitter-ms = 100
"#,
    )
    .unwrap();
    let s = Served::start(&["--config", config.to_str().unwrap()]).await;
    let mut nonce = None;
    for _ in 0..4 {
        let mut r = s.get("/acme/new-nonce").await;
        r.post = true;
        r.assert_problem("serverInternal", 503, "injected by Cobble's fault knobs");
        assert_eq!(retry_after(&r), Some("2"), "{r:?}");
        nonce = Some(r.headers["replay-nonce"].to_str().unwrap().to_owned());
    }
    // The delayed directory is the normal directory, at least 300 ms later each time (only
    // the lower bound is asserted: a slow machine makes it later still, never sooner).
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let r = s.get("/dir").await;
        let took = t.elapsed();
        assert_directory(&r);
        assert!(
            took >= Duration::from_millis(300),
            "a 300 ms delay answered in {took:?}"
        );
    }
    // newAccount has no rule: the nonce of an injected answer works there as any other.
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let r = s.lookup(&k, &nonce.unwrap()).await;
    r.assert_problem("accountDoesNotExist", 400, "onlyReturnExisting");
}

/// What each of `n` newAccount lookups met: an injected badNonce, a nonce refused by
/// `--nonce-reject-percent`, or the normal answer (accountDoesNotExist).
async fn lookup_outcomes(s: &Served, n: usize) -> Vec<&'static str> {
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let nonce = s.nonce().await;
        let r = s.lookup(&k, &nonce).await;
        let detail = r.body["detail"].as_str().unwrap_or_default();
        out.push(match r.body["type"].as_str().unwrap_or_default() {
            "urn:ietf:params:acme:error:badNonce" if detail.contains("injected by Cobble") => {
                r.assert_problem("badNonce", 400, "injected by Cobble's fault knobs");
                "injected"
            }
            "urn:ietf:params:acme:error:badNonce" => {
                r.assert_problem("badNonce", 400, "nonce-reject-percent");
                "rejected"
            }
            _ => {
                r.assert_problem("accountDoesNotExist", 400, "onlyReturnExisting");
                "answered"
            }
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_flag_reproduces_injected_faults_and_nonce_rejection() {
    // 50 % of lookups get an injected badNonce; of the rest, 50 % have their (valid) nonce
    // refused. Over 64 lookups two independent runs agree by chance with odds far below 2^-64.
    let start = |seed: &'static str| async move {
        Served::start(&[
            "--seed",
            seed,
            // 64 lookups a second would meet newAccount's rate limit.
            "--no-rate-limits",
            "--nonce-reject-percent",
            "50",
            "--fault",
            "kind=bad-nonce,percent=50,endpoint=/acme/new-acct",
        ])
        .await
    };
    let (a, b, c) = tokio::join!(start("42"), start("42"), start("43"));
    let (oa, ob, oc) = tokio::join!(
        lookup_outcomes(&a, 64),
        lookup_outcomes(&b, 64),
        lookup_outcomes(&c, 64)
    );
    for kind in ["injected", "rejected", "answered"] {
        assert!(oa.contains(&kind), "no {kind} in {oa:?}");
    }
    assert_eq!(oa, ob, "the same seed, the same outcomes");
    assert_ne!(oa, oc, "another seed, other outcomes");
}

/// Whether each of `n` new orders for one name reused the account's valid authorization
/// of it (the first order's, validated here) rather than making a new one.
async fn reuse_outcomes(s: &Served, n: usize) -> Vec<bool> {
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let body = k.sign_with_jwk(
        &s.url("/acme/new-acct"),
        Some(&s.nonce().await),
        Some(&json!({"termsOfServiceAgreed": true})),
    );
    let r = s.post("/acme/new-acct", &body).await;
    assert_eq!(r.status, 201, "{r:?}");
    let kid = r.location.unwrap();
    let new_order = s.url("/acme/new-order");
    let ids = json!({"identifiers": [{"type": "dns", "value": "reuse.example.com"}]});
    let authz_of = |r: &common::Reply| {
        assert_eq!(r.status, 201, "{r:?}");
        r.body["authorizations"][0].as_str().unwrap().to_owned()
    };
    let first = authz_of(&s.post_kid(&k, &kid, &new_order, Some(&ids)).await);
    let authz = s.post_kid(&k, &kid, &first, None).await.body;
    let ch = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "http-01")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    s.post_kid(&k, &kid, &ch, Some(&json!({}))).await;
    let mut status = Value::Null;
    for _ in 0..200 {
        status = s.post_kid(&k, &kid, &first, None).await.body["status"].clone();
        if status != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "valid", "the always-valid VA passed the challenge");
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let r = s.post_kid(&k, &kid, &new_order, Some(&ids)).await;
        out.push(authz_of(&r) == first);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_flag_reproduces_authorization_reuse() {
    // Half the new orders reuse the valid authorization; 64 orders, as above.
    let start = |seed: &'static str| async move {
        Served::start(&[
            "--seed",
            seed,
            "--authz-reuse-percent",
            "50",
            "--va-always-valid",
            "--no-rate-limits",
        ])
        .await
    };
    let (a, b, c) = tokio::join!(start("42"), start("42"), start("43"));
    let (oa, ob, oc) = tokio::join!(
        reuse_outcomes(&a, 64),
        reuse_outcomes(&b, 64),
        reuse_outcomes(&c, 64)
    );
    assert!(oa.contains(&true) && oa.contains(&false), "{oa:?}");
    assert_eq!(oa, ob, "the same seed, the same reuse");
    assert_ne!(oa, oc, "another seed, other reuse");
}

#[test]
fn kinds_parse_from_flags() {
    assert_eq!(
        rule("kind=stuck-processing").kind,
        FaultKind::StuckProcessing
    );
    assert!(FaultRule::parse_flag("kind=unavailable,percent=-1").is_err());
}
