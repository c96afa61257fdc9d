//! Interoperability details that real clients trip over (RFC 8555 §6.2-§6.7, §7.2, §7.3.5):
//! where `Replay-Nonce` goes, POST-as-GET on every resource a client may follow, refusals
//! that arrive whole over HTTP/1.1 and HTTP/2, payloads that must be JSON objects, nonces
//! used up by failed requests, Boulder's badNonce wording, and database errors that stay in
//! the log. SQLite and PostgreSQL.

mod common;

use cobble_core::b64;
use cobble_core::jwk::Curve;
use cobble_core::problem::BAD_NONCE_DETAIL;
use cobble_core::sign::Signer;
use common::{Engine, Reply, TestServer};
use serde_json::{Value, json};

both_engines!(
    replay_nonce_only_on_post_and_new_nonce,
    directory_and_new_nonce_answer_post_as_get,
    every_link_a_client_follows_answers_post_as_get,
    refusals_arrive_whole_over_http1_and_http2,
    refusals_arrive_whole_through_curl,
    payloads_must_be_json_objects,
    key_change_inner_jws_must_not_carry_a_nonce,
    nonce_is_used_up_when_a_verified_request_fails,
    malformed_jwks_get_precise_problems,
    bad_nonce_details_use_boulders_sentence,
    database_failures_do_not_leak_their_text,
);

fn p256() -> Signer {
    Signer::generate_ec(Curve::P256).unwrap()
}

async fn always_valid(e: Engine) -> TestServer {
    TestServer::start_with(
        e,
        |c| {
            c.va_always_valid = true;
            c.validation_poll_ms = 20;
        },
        false,
    )
    .await
}

async fn get(s: &TestServer, path: &str) -> Reply {
    Reply::from(s.http.get(s.url(path)).send().await.unwrap()).await
}

/// RFC 8555 §6.5, §7.2: a nonce on newNonce and on every answer to a POST, and nowhere
/// else (Ruby's acme-client crashes on one on the directory).
async fn replay_nonce_only_on_post_and_new_nonce(e: Engine) {
    let s = TestServer::start(e).await;
    for path in ["/dir", "/directory", "/terms", "/", "/crl", "/nope"] {
        let r = get(&s, path).await;
        assert!(
            !r.headers.contains_key("replay-nonce"),
            "GET {path} carries no nonce: {r:?}"
        );
        assert!(
            r.headers["link"]
                .to_str()
                .unwrap()
                .contains("rel=\"index\""),
            "GET {path}: {r:?}"
        );
    }
    let head = s.http.head(s.url("/acme/new-nonce")).send().await.unwrap();
    assert!(head.headers().contains_key("replay-nonce"));
    let getn = s.http.get(s.url("/acme/new-nonce")).send().await.unwrap();
    assert!(getn.headers().contains_key("replay-nonce"));
    // POST answers carry one, success or failure.
    let k = p256();
    let kid = s.account(&k).await;
    let ok = s.post_kid(&k, &kid, &kid, None).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.headers.contains_key("replay-nonce"));
    let bad = s
        .post_raw(
            &s.url("/acme/new-order"),
            b"{}".to_vec(),
            "application/json",
        )
        .await;
    bad.assert_problem("malformed", 415, "application/jose+json");
    s.stop().await;
}

/// RFC 8555 §6.3: the directory and newNonce answer GET and POST-as-GET.
async fn directory_and_new_nonce_answer_post_as_get(e: Engine) {
    let s = TestServer::start(e).await;
    let k = p256();
    let kid = s.account(&k).await;
    for path in ["/dir", "/directory"] {
        let r = s.post_kid(&k, &kid, &s.url(path), None).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["newOrder"], s.url("/acme/new-order"), "{r:?}");
        assert!(r.headers.contains_key("replay-nonce"));
        s.post_kid(&k, &kid, &s.url(path), Some(&json!({})))
            .await
            .assert_problem("malformed", 400, "POST-as-GET");
    }
    let r = s.post_kid(&k, &kid, &s.url("/acme/new-nonce"), None).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.headers["cache-control"], "no-store");
    assert!(r.headers.contains_key("replay-nonce"));
    s.stop().await;
}

/// Every `Link` target of a response, with its relation.
fn links(r: &Reply) -> Vec<(String, String)> {
    r.headers
        .get_all("link")
        .iter()
        .filter_map(|v| {
            let v = v.to_str().ok()?;
            let (url, rest) = v.trim().strip_prefix('<')?.split_once('>')?;
            let rel = rest.split("rel=").nth(1)?.trim_matches('"').to_owned();
            Some((url.to_owned(), rel))
        })
        .collect()
}

/// acmez follows every link it is sent with POST-as-GET: every one must answer it.
async fn every_link_a_client_follows_answers_post_as_get(e: Engine) {
    let s = always_valid(e).await;
    let k = p256();
    let kid = s.account(&k).await;
    let key = rcgen::KeyPair::generate().unwrap();
    let fin = common::finalize_by_hand(
        &s,
        &k,
        &kid,
        &["links.example.com"],
        &common::rcgen_csr(&["links.example.com"], &key),
    )
    .await;
    assert_eq!(fin.status, 200, "{fin:?}");
    let order_url = fin.location.clone().unwrap();
    let order = common::poll_until(&s, &k, &kid, &order_url, |o| o["status"] == "valid").await;
    let cert = s
        .post_kid(&k, &kid, order["certificate"].as_str().unwrap(), None)
        .await;
    assert_eq!(cert.status, 200, "{cert:?}");
    let authz_url = order["authorizations"][0].as_str().unwrap().to_owned();
    let authz = s.post_kid(&k, &kid, &authz_url, None).await;
    let chall = s
        .post_kid(
            &k,
            &kid,
            authz.body["challenges"][0]["url"].as_str().unwrap(),
            None,
        )
        .await;
    let account = s.post_kid(&k, &kid, &kid, None).await;
    let mut targets: Vec<(String, String)> = Vec::new();
    for r in [&fin, &cert, &authz, &chall, &account] {
        targets.extend(links(r));
    }
    targets.push((
        account.body["orders"].as_str().unwrap().to_owned(),
        "orders".into(),
    ));
    assert!(
        !links(&cert).iter().any(|(_, rel)| rel == "up"),
        "the certificate's chain is complete: no rel=\"up\" ({cert:?})"
    );
    assert!(targets.iter().any(|(_, rel)| rel == "index"));
    for (url, rel) in targets {
        if !url.starts_with(&s.base) {
            continue; // e.g. the terms of service elsewhere
        }
        let r = s.post_kid(&k, &kid, &url, None).await;
        assert!(
            (200..300).contains(&r.status),
            "POST-as-GET of Link rel={rel:?} {url}: {r:?}"
        );
    }
    s.stop().await;
}

/// The requests that used to be refused before their body was read.
fn refusal_cases(s: &TestServer) -> Vec<(&'static str, String, &'static str, Vec<u8>, u16)> {
    vec![
        (
            "POST",
            s.url("/acme/new-acct"),
            "application/json",
            b"{}".to_vec(),
            415,
        ),
        (
            "POST",
            s.url("/acme/new-order"),
            "application/json",
            vec![b'x'; 60_000],
            415,
        ),
        (
            "POST",
            s.url("/acme/new-acct"),
            "application/jose+json",
            vec![b'x'; 2 << 20],
            413,
        ),
        (
            "PUT",
            s.url("/acme/new-acct"),
            "application/jose+json",
            vec![b'x'; 50_000],
            405,
        ),
        (
            "POST",
            s.url("/nope"),
            "application/jose+json",
            vec![b'x'; 50_000],
            404,
        ),
    ]
}

fn client(s: &TestServer, http2: bool) -> reqwest::Client {
    let root = std::fs::read(s.trust_root()).unwrap();
    let b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&root).unwrap());
    let b = if http2 {
        b.http2_prior_knowledge()
    } else {
        b.http1_only()
    };
    b.build().unwrap()
}

/// Every refusal reaches the client as a complete problem document, on HTTP/1.1 (on a
/// connection that stays usable) and on HTTP/2 (on a stream that closes cleanly).
async fn refusals_arrive_whole_over_http1_and_http2(e: Engine) {
    let s = TestServer::start(e).await;
    for http2 in [false, true] {
        let c = client(&s, http2);
        for round in 0..3 {
            for (method, url, ctype, body, status) in refusal_cases(&s) {
                let r = c
                    .request(method.parse().unwrap(), &url)
                    .header("content-type", ctype)
                    .body(body)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{method} {url} (h2 {http2}, round {round}): {e}"));
                let version = r.version();
                let mut reply = Reply::from(r).await;
                reply.post = method == "POST";
                assert_eq!(
                    version,
                    if http2 {
                        reqwest::Version::HTTP_2
                    } else {
                        reqwest::Version::HTTP_11
                    }
                );
                reply.assert_problem("malformed", status, "");
            }
        }
        // The connection (HTTP/1.1) or session (HTTP/2) still serves requests.
        let d = c.get(s.url("/dir")).send().await.unwrap();
        assert_eq!(d.status(), 200);
    }
    s.stop().await;
}

/// The same through curl, the transport of every shell client (dehydrated, acme.sh, uacme).
async fn refusals_arrive_whole_through_curl(e: Engine) {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("COBBLE_TEST_NO_CLIENTS").is_ok(),
            "curl is not installed: run scripts/test.sh or set COBBLE_TEST_NO_CLIENTS=1"
        );
        return;
    }
    let s = TestServer::start(e).await;
    let dir = tempfile::tempdir().unwrap();
    for (i, (method, url, ctype, body, status)) in refusal_cases(&s).into_iter().enumerate() {
        let file = dir.path().join(format!("body{i}"));
        std::fs::write(&file, &body).unwrap();
        for proto in ["--http1.1", "--http2"] {
            for round in 0..3 {
                let out = tokio::process::Command::new("curl")
                    .args(["-sS", proto, "--max-time", "30", "-X", method])
                    .arg("--cacert")
                    .arg(s.trust_root())
                    .args(["-H", &format!("Content-Type: {ctype}")])
                    .arg("--data-binary")
                    .arg(format!("@{}", file.display()))
                    .args(["-w", "\n%{http_code} %{http_version}", &url])
                    .output()
                    .await
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                assert!(
                    out.status.success(),
                    "curl {proto} {method} {url} round {round} exited {:?}: {}{text}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                );
                let (doc, tail) = text.rsplit_once('\n').unwrap();
                let want_version = if proto == "--http2" { "2" } else { "1.1" };
                assert_eq!(tail, format!("{status} {want_version}"), "{text}");
                let v: Value = serde_json::from_str(doc).unwrap_or_else(|_| panic!("{text}"));
                assert_eq!(v["type"], "urn:ietf:params:acme:error:malformed", "{text}");
                assert_eq!(v["status"], status, "{text}");
            }
        }
    }
    s.stop().await;
}

/// RFC 8555 §7: payloads are JSON objects. serde would fill a struct from an array; every
/// endpoint refuses one (and any other non-object) as `malformed`, changing nothing.
async fn payloads_must_be_json_objects(e: Engine) {
    let s = always_valid(e).await;
    let k = p256();
    // newAccount from an array: refused, and no account was made.
    let r = s
        .new_account(&k, json!([["mailto:a@example.com"], true]))
        .await;
    r.assert_problem("malformed", 400, "must be a JSON object, not an array");
    s.new_account(&k, json!({"onlyReturnExisting": true}))
        .await
        .assert_problem("accountDoesNotExist", 400, "");
    for v in [json!("text"), json!(7), json!(null), json!(true)] {
        s.new_account(&k, v)
            .await
            .assert_problem("malformed", 400, "must be a JSON object");
    }
    let kid = s.account(&k).await;
    // Account update from an array: the contact stays as it was.
    s.post_kid(&k, &kid, &kid, Some(&json!([["mailto:x@example.com"]])))
        .await
        .assert_problem("malformed", 400, "not an array");
    let acct = s.post_kid(&k, &kid, &kid, None).await;
    assert_eq!(acct.body["contact"], json!([]), "{acct:?}");
    // newOrder, newAuthz, revokeCert from arrays.
    for (path, payload) in [
        (
            "/acme/new-order",
            json!([[{"type": "dns", "value": "arr.example.com"}]]),
        ),
        (
            "/acme/new-authz",
            json!([{"type": "dns", "value": "arr.example.com"}]),
        ),
        ("/acme/revoke-cert", json!(["MIIB", 1])),
    ] {
        s.post_kid(&k, &kid, &s.url(path), Some(&payload))
            .await
            .assert_problem("malformed", 400, "must be a JSON object");
    }
    // Challenge, authorization and finalize from arrays.
    let order = s
        .post_kid(
            &k,
            &kid,
            &s.url("/acme/new-order"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "obj.example.com"}]})),
        )
        .await;
    assert_eq!(order.status, 201, "{order:?}");
    let authz_url = order.body["authorizations"][0].as_str().unwrap().to_owned();
    let authz = s.post_kid(&k, &kid, &authz_url, None).await;
    let ch_url = authz.body["challenges"][0]["url"].as_str().unwrap();
    for (url, payload) in [
        (ch_url, json!([])),
        (authz_url.as_str(), json!(["deactivated"])),
        (
            order.body["finalize"].as_str().unwrap(),
            json!(["MIIBkzCB"]),
        ),
    ] {
        s.post_kid(&k, &kid, url, Some(&payload))
            .await
            .assert_problem("malformed", 400, "must be a JSON object");
    }
    let authz = s.post_kid(&k, &kid, &authz_url, None).await;
    assert_eq!(authz.body["status"], "pending", "{authz:?}");
    // keyChange whose inner payload is [account, oldKey]: refused, the key stays.
    let new = p256();
    let url = s.url("/acme/key-change");
    let inner = new.sign(
        json!({"jwk": new.public_key().to_jwk(), "url": url}),
        Some(&json!([kid, k.public_key().to_jwk()])),
    );
    s.post_kid(&k, &kid, &url, Some(&inner))
        .await
        .assert_problem("malformed", 400, "must be a JSON object");
    assert_eq!(s.post_kid(&k, &kid, &kid, None).await.status, 200);
    s.post_kid(&new, &kid, &kid, None).await.assert_problem(
        "malformed",
        400,
        "signature is invalid",
    );
    s.stop().await;
}

/// RFC 8555 §7.3.5: the inner JWS of a key change MUST omit `nonce`.
async fn key_change_inner_jws_must_not_carry_a_nonce(e: Engine) {
    let s = TestServer::start(e).await;
    let (old, new) = (p256(), p256());
    let kid = s.account(&old).await;
    let url = s.url("/acme/key-change");
    let inner = new.sign(
        json!({"jwk": new.public_key().to_jwk(), "url": url, "nonce": s.nonce().await}),
        Some(&json!({"account": kid, "oldKey": old.public_key().to_jwk()})),
    );
    s.post_kid(&old, &kid, &url, Some(&inner))
        .await
        .assert_problem("malformed", 400, "must not carry a \"nonce\"");
    // The key did not change; without the nonce the same change goes through.
    assert_eq!(s.post_kid(&old, &kid, &kid, None).await.status, 200);
    let inner = new.sign(
        json!({"jwk": new.public_key().to_jwk(), "url": url}),
        Some(&json!({"account": kid, "oldKey": old.public_key().to_jwk()})),
    );
    let r = s.post_kid(&old, &kid, &url, Some(&inner)).await;
    assert_eq!(r.status, 200, "{r:?}");
    s.stop().await;
}

/// RFC 8555 §6.5: a nonce buys one request. Once the signature verified, a request that
/// fails (bad payload, policy refusal, unknown resource) has used its nonce up too.
async fn nonce_is_used_up_when_a_verified_request_fails(e: Engine) {
    let s = TestServer::start_with(
        e,
        |c| c.blocked_domains = vec!["blocked.example".into()],
        false,
    )
    .await;
    let k = p256();
    let kid = s.account(&k).await;
    let cases = [
        (
            s.url("/acme/new-order"),
            Some(json!(["not", "an", "object"])),
            "malformed",
            400,
        ),
        (
            s.url("/acme/new-order"),
            Some(json!({"identifiers": [{"type": "dns", "value": "www.blocked.example"}]})),
            "rejectedIdentifier",
            400,
        ),
        (s.url("/acme/order/nope"), None, "malformed", 404),
        (
            kid.clone(),
            Some(json!({"contact": ["tel:+1555"]})),
            "unsupportedContact",
            400,
        ),
    ];
    for (url, payload, kind, status) in cases {
        let n = s.nonce().await;
        let body = k.sign_with_kid(&kid, &url, &n, payload.as_ref());
        s.post(&url, &body).await.assert_problem(kind, status, "");
        // A good request with the same nonce: refused, the nonce is spent.
        s.post(&kid, &k.sign_with_kid(&kid, &kid, &n, None))
            .await
            .assert_problem("badNonce", 400, "already been used");
    }
    // A signature that does not verify spends nothing: the nonce still works after it.
    let n = s.nonce().await;
    let mut forged = k.sign_with_kid(&kid, &kid, &n, None);
    forged["signature"] = json!(b64::encode([0u8; 64]));
    s.post(&kid, &forged)
        .await
        .assert_problem("malformed", 400, "signature is invalid");
    let ok = s.post(&kid, &k.sign_with_kid(&kid, &kid, &n, None)).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    s.stop().await;
}

/// A JWS whose embedded `jwk` is `jwk`; the signature is never reached.
fn jws_with_jwk(url: &str, nonce: &str, jwk: Value) -> Value {
    json!({
        "protected": common::b64json(&json!({"alg": "RS256", "jwk": jwk, "url": url, "nonce": nonce})),
        "payload": common::b64json(&json!({"termsOfServiceAgreed": true})),
        "signature": b64::encode([1u8; 256]),
    })
}

/// Every malformed JWK gets a precise `badPublicKey` or `malformed`, never a panic.
async fn malformed_jwks_get_precise_problems(e: Engine) {
    let s = TestServer::start(e).await;
    let url = s.url("/acme/new-acct");
    let n = b64::encode([0xC3u8; 256]);
    for (jwk, kind, fragment) in [
        (
            json!({"kty": "RSA", "n": "", "e": "AQAB"}),
            "badPublicKey",
            "modulus",
        ),
        (
            json!({"kty": "RSA", "n": "AAAA", "e": "AQAB"}),
            "badPublicKey",
            "modulus",
        ),
        (
            json!({"kty": "RSA", "n": n, "e": ""}),
            "badPublicKey",
            "exponent",
        ),
        (json!({"kty": "RSA", "e": "AQAB"}), "malformed", "\"n\""),
        (
            json!({"kty": "RSA", "n": 5, "e": "AQAB"}),
            "malformed",
            "\"n\"",
        ),
        (json!(["RSA"]), "malformed", "JSON object"),
    ] {
        let body = jws_with_jwk(&url, &s.nonce().await, jwk.clone());
        let r = s.post(&url, &body).await;
        r.assert_problem(kind, 400, fragment);
    }
    s.stop().await;
}

/// acme.sh retries a badNonce only when the detail has Boulder's sentence.
async fn bad_nonce_details_use_boulders_sentence(e: Engine) {
    let s = TestServer::start(e).await;
    let k = p256();
    let url = s.url("/acme/new-acct");
    let payload = json!({"termsOfServiceAgreed": true});
    let mut replies = vec![
        s.post(&url, &k.sign_with_jwk(&url, None, Some(&payload)))
            .await,
        s.post(&url, &k.sign_with_jwk(&url, Some("hello"), Some(&payload)))
            .await,
        s.post(
            &url,
            &k.sign_with_jwk(
                &url,
                Some("AAABogaZqo53igREdM064Yed42aBMHsUBhZrAUSVTGU"),
                Some(&payload),
            ),
        )
        .await,
    ];
    let n = s.nonce().await;
    let body = k.sign_with_jwk(&url, Some(&n), Some(&payload));
    assert_eq!(s.post(&url, &body).await.status, 201);
    replies.push(s.post(&url, &body).await);
    s.stop().await;
    // The test knob that rejects nonces on purpose.
    let s = TestServer::start_with(e, |c| c.nonce_reject_percent = 100, false).await;
    let n = s.nonce().await;
    replies.push(
        s.post(
            &url_of(&s),
            &k.sign_with_jwk(&url_of(&s), Some(&n), Some(&payload)),
        )
        .await,
    );
    for r in &replies {
        r.assert_problem("badNonce", 400, "");
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{BAD_NONCE_DETAIL}: ")),
            "{detail:?}"
        );
    }
    s.stop().await;
}

fn url_of(s: &TestServer) -> String {
    s.url("/acme/new-acct")
}

/// Database errors reach the log, not the client: the problem names what failed from the
/// client's side, on the ACME and the management listener alike.
async fn database_failures_do_not_leak_their_text(e: Engine) {
    let s = TestServer::start(e).await;
    let rename = "ALTER TABLE certificates RENAME TO certificates_gone";
    match e {
        Engine::Sqlite => {
            let p = sqlx::SqlitePool::connect(&s.database_url).await.unwrap();
            sqlx::query(rename).execute(&p).await.unwrap();
            p.close().await;
        }
        Engine::Postgres => {
            let p = sqlx::PgPool::connect(&s.database_url).await.unwrap();
            sqlx::query(rename).execute(&p).await.unwrap();
            p.close().await;
        }
    }
    let crl = get(&s, "/crl").await;
    crl.assert_problem("serverInternal", 500, "");
    let admin = s.running.as_ref().unwrap().admin_url.clone().unwrap();
    let status = Reply::from(
        s.http
            .get(format!("{admin}/cert-status-by-serial/01"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status.status, 500, "{status:?}");
    assert_eq!(status.headers["content-type"], "application/problem+json");
    for r in [&crl, &status] {
        let detail = r.body["detail"].as_str().unwrap().to_lowercase();
        for leak in [
            "certificates",
            "no such table",
            "relation",
            "sqlx",
            "database error",
        ] {
            assert!(!detail.contains(leak), "{leak:?} leaked into {detail:?}");
        }
    }
    s.stop().await;
}
