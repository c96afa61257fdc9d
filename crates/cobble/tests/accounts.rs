//! RFC 8555 §6-§7.3 end to end: directory, newNonce, JWS checks, accounts. Every test runs
//! on SQLite and on PostgreSQL.

mod common;

use cobble_core::jwk::Curve;
use cobble_core::sign::Signer;
use common::{Engine, TestServer, b64json};
use instant_acme::{Account, NewAccount};
use serde_json::json;

fn p256() -> Signer {
    Signer::generate_ec(Curve::P256).unwrap()
}

both_engines!(
    directory_and_new_nonce,
    instant_acme_account_lifecycle,
    every_signature_algorithm_creates_an_account,
    same_key_returns_existing_account,
    request_shape_problems,
    nonce_problems,
    expired_nonce_is_bad_nonce,
    key_problems,
    account_problems,
    deactivated_account_is_refused,
    terms_of_service_and_contacts,
    orders_list_and_post_as_get,
);

async fn directory_and_new_nonce(e: Engine) {
    let s = TestServer::start(e).await;
    for path in ["/dir", "/directory"] {
        let r = common::Reply::from(s.http.get(s.url(path)).send().await.unwrap()).await;
        assert_eq!(r.status, 200);
        for k in [
            "newNonce",
            "newAccount",
            "newOrder",
            "revokeCert",
            "keyChange",
            "renewalInfo",
        ] {
            assert!(
                r.body[k].as_str().unwrap().starts_with(&s.base),
                "{k}: {r:?}"
            );
        }
        let meta = &r.body["meta"];
        assert_eq!(meta["termsOfService"], s.url("/terms"));
        assert_eq!(meta["website"], s.url("/"));
        assert_eq!(meta["caaIdentities"], json!(["cobble.test"]));
        assert_eq!(meta["externalAccountRequired"], false);
        // Boulder-style random entry: one key outside the RFC's names.
        let known = [
            "newNonce",
            "newAccount",
            "newOrder",
            "revokeCert",
            "keyChange",
            "renewalInfo",
            "newAuthz",
            "meta",
        ];
        assert_eq!(
            r.body
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| !known.contains(&k.as_str()))
                .count(),
            1
        );
        assert!(
            r.headers["link"]
                .to_str()
                .unwrap()
                .contains("rel=\"index\"")
        );
    }
    // RFC 8555 §7.2: HEAD -> 200, GET -> 204, both no-store with a nonce.
    let head = s.http.head(s.url("/acme/new-nonce")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["cache-control"], "no-store");
    let get = s.http.get(s.url("/acme/new-nonce")).send().await.unwrap();
    assert_eq!(get.status(), 204);
    assert_eq!(get.headers()["cache-control"], "no-store");
    let a = head.headers()["replay-nonce"].to_str().unwrap();
    let b = get.headers()["replay-nonce"].to_str().unwrap();
    assert_ne!(a, b);
    assert!(
        a.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "base64url: {a}"
    );
    // Unknown resource: a 404 problem.
    let r = common::Reply::from(s.http.get(s.url("/nope")).send().await.unwrap()).await;
    r.assert_problem("malformed", 404, "does not exist");
    // A renewalInfo certID that is not one: a clear problem.
    let r = common::Reply::from(
        s.http
            .get(s.url("/acme/renewal-info/abc.def"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_problem("malformed", 400, "");
    s.stop().await;
}

async fn instant_acme_account_lifecycle(e: Engine) {
    let s = TestServer::start(e).await;
    let builder = || Account::builder_with_root(s.trust_root()).unwrap();
    let (account, creds) = builder()
        .create(
            &NewAccount {
                contact: &["mailto:a@example.com"],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            s.directory_url.clone(),
            None,
        )
        .await
        .expect("account created");
    assert!(
        account.id().starts_with(&s.url("/acme/acct/")),
        "{}",
        account.id()
    );

    // Update the contact (RFC 8555 §7.3.2) and read it back by hand-free POST-as-GET via a second login.
    account
        .update_contacts(&["mailto:b@example.com", "mailto:c@example.org"])
        .await
        .expect("contact update");
    let restored = builder().from_credentials(creds).await.unwrap();
    assert_eq!(restored.id(), account.id());
    let stored = s
        .running
        .as_ref()
        .unwrap()
        .store
        .account(account.id().rsplit('/').next().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.contact,
        vec!["mailto:b@example.com", "mailto:c@example.org"]
    );
    assert!(stored.tos_agreed);
    assert_eq!(stored.initial_ip, "127.0.0.1");

    // Deactivate (§7.3.6); afterwards the account can do nothing.
    let id = restored.id().to_owned();
    restored.deactivate().await.expect("deactivated");
    let err = account
        .update_contacts(&["mailto:d@example.com"])
        .await
        .unwrap_err();
    match err {
        instant_acme::Error::Api(p) => {
            assert_eq!(
                p.r#type.as_deref(),
                Some("urn:ietf:params:acme:error:unauthorized"),
                "{p:?}"
            );
            assert!(p.detail.unwrap().starts_with("DEACTIVATED_ACCOUNT"));
        }
        other => panic!("expected a problem, got {other:?}"),
    }
    let stored = s
        .running
        .as_ref()
        .unwrap()
        .store
        .account(id.rsplit('/').next().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status.as_str(), "deactivated");
    s.stop().await;
}

async fn every_signature_algorithm_creates_an_account(e: Engine) {
    let s = TestServer::start(e).await;
    for signer in [
        Signer::generate_ec(Curve::P256).unwrap(),
        Signer::generate_ec(Curve::P384).unwrap(),
        Signer::generate_ec(Curve::P521).unwrap(),
        Signer::generate_ed25519().unwrap(),
        Signer::rsa_from_pkcs8(cobble_core::testkeys::RSA2048_PKCS8).unwrap(),
    ] {
        let kid = s.account(&signer).await;
        // And a kid-signed POST-as-GET with the same algorithm.
        let r = s.post_kid(&signer, &kid, &kid, None).await;
        assert_eq!(r.status, 200, "{}: {r:?}", signer.alg());
        assert_eq!(r.body["status"], "valid");
        assert_eq!(r.body["key"], signer.public_key().to_jwk());
        assert_eq!(r.location.as_deref(), Some(kid.as_str()));
        assert!(r.body["createdAt"].as_str().unwrap().ends_with('Z'));
    }
    s.stop().await;
}

async fn same_key_returns_existing_account(e: Engine) {
    let s = TestServer::start(e).await;
    let k = p256();
    let first = s
        .new_account(
            &k,
            json!({"termsOfServiceAgreed": true, "contact": ["mailto:a@example.com"]}),
        )
        .await;
    assert_eq!(first.status, 201);
    assert_eq!(first.body["contact"], json!(["mailto:a@example.com"]));
    assert_eq!(
        first.body["orders"],
        format!("{}/orders", first.location.as_deref().unwrap())
    );
    // RFC 8555 §7.3.1: same key again -> 200 and the existing account's URL.
    let again = s
        .new_account(&k, json!({"termsOfServiceAgreed": true}))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.location, first.location);
    let only = s.new_account(&k, json!({"onlyReturnExisting": true})).await;
    assert_eq!(only.status, 200);
    assert_eq!(only.location, first.location);
    // Concurrent creations with one key make one account.
    let k2 = p256();
    let mut urls = Vec::new();
    let replies = futures_join(&s, &k2).await;
    for r in replies {
        assert!(r.status == 201 || r.status == 200, "{r:?}");
        urls.push(r.location.unwrap());
    }
    urls.dedup();
    assert_eq!(urls.len(), 1, "{urls:?}");
    s.stop().await;
}

async fn futures_join(s: &TestServer, k: &Signer) -> Vec<common::Reply> {
    let url = s.url("/acme/new-acct");
    let mut bodies = Vec::new();
    for _ in 0..4 {
        bodies.push(k.sign_with_jwk(
            &url,
            Some(&s.nonce().await),
            Some(&json!({"termsOfServiceAgreed": true})),
        ));
    }
    let (a, b, c, d) = tokio::join!(
        s.post(&url, &bodies[0]),
        s.post(&url, &bodies[1]),
        s.post(&url, &bodies[2]),
        s.post(&url, &bodies[3])
    );
    vec![a, b, c, d]
}

async fn request_shape_problems(e: Engine) {
    let s = TestServer::start_with(e, |c| c.max_body_bytes = 2048, false).await;
    let k = p256();
    let url = s.url("/acme/new-acct");
    let good = k.sign_with_jwk(
        &url,
        Some(&s.nonce().await),
        Some(&json!({"termsOfServiceAgreed": true})),
    );

    // Wrong content type -> 415.
    s.post_raw(&url, good.to_string().into_bytes(), "application/json")
        .await
        .assert_problem("malformed", 415, "application/jose+json");
    // Too large -> 413.
    s.post_raw(&url, vec![b' '; 4096], "application/jose+json")
        .await
        .assert_problem("malformed", 413, "larger than 2048");
    // Not JSON, not an object, general serialization, unprotected header.
    s.post_raw(&url, b"{not json".to_vec(), "application/jose+json")
        .await
        .assert_problem("malformed", 400, "not valid JSON");
    s.post(&url, &json!([1, 2]))
        .await
        .assert_problem("malformed", 400, "JWS JSON object");
    s.post(&url, &json!({"payload": "", "signatures": []}))
        .await
        .assert_problem("malformed", 400, "general serialization");
    let mut h = good.clone();
    h["header"] = json!({"kid": "x"});
    s.post(&url, &h)
        .await
        .assert_problem("malformed", 400, "unprotected header");
    // Algorithms: none, HMAC, unknown -> badSignatureAlgorithm with the list.
    for alg in ["none", "HS256", "RS1"] {
        let mut b = good.clone();
        b["protected"] = json!(b64json(
            &json!({"alg": alg, "jwk": k.public_key().to_jwk(), "url": url, "nonce": s.nonce().await})
        ));
        let r = s.post(&url, &b).await;
        r.assert_problem("badSignatureAlgorithm", 400, alg);
        assert_eq!(
            r.body["algorithms"],
            json!(["RS256", "ES256", "ES384", "ES512", "EdDSA"])
        );
    }
    // jwk and kid together; neither.
    let both = k.sign(
        json!({"jwk": k.public_key().to_jwk(), "kid": "x", "url": url, "nonce": s.nonce().await}),
        Some(&json!({})),
    );
    s.post(&url, &both)
        .await
        .assert_problem("malformed", 400, "not both");
    let neither = k.sign(
        json!({"url": url, "nonce": s.nonce().await}),
        Some(&json!({})),
    );
    s.post(&url, &neither)
        .await
        .assert_problem("malformed", 400, "one of");
    // kid on newAccount.
    let kid = k.sign_with_kid(
        &s.url("/acme/acct/x"),
        &url,
        &s.nonce().await,
        Some(&json!({})),
    );
    s.post(&url, &kid)
        .await
        .assert_problem("malformed", 400, "not \"kid\"");
    // url header differs from the request URL -> unauthorized (RFC 8555 §6.4).
    let wrong_url = k.sign_with_jwk(
        &s.url("/acme/new-order"),
        Some(&s.nonce().await),
        Some(&json!({})),
    );
    s.post(&url, &wrong_url).await.assert_problem(
        "unauthorized",
        403,
        "does not match the request URL",
    );
    // Bad signature.
    let mut forged = k.sign_with_jwk(
        &url,
        Some(&s.nonce().await),
        Some(&json!({"termsOfServiceAgreed": true})),
    );
    forged["payload"] = json!(b64json(&json!({"termsOfServiceAgreed": false})));
    s.post(&url, &forged)
        .await
        .assert_problem("malformed", 400, "signature is invalid");
    // POST-as-GET where a payload is needed.
    let pag = k.sign_with_jwk(&url, Some(&s.nonce().await), None);
    s.post(&url, &pag)
        .await
        .assert_problem("malformed", 400, "POST-as-GET");
    // GET on a POST-only resource -> 405 with Allow.
    let r = common::Reply::from(s.http.get(s.url("/acme/acct/abc")).send().await.unwrap()).await;
    r.assert_problem("malformed", 405, "POST-as-GET");
    assert_eq!(r.headers["allow"], "POST");
    s.stop().await;
}

async fn nonce_problems(e: Engine) {
    let s = TestServer::start(e).await;
    let k = p256();
    let url = s.url("/acme/new-acct");
    let payload = json!({"termsOfServiceAgreed": true});
    // Missing nonce.
    let none = k.sign_with_jwk(&url, None, Some(&payload));
    s.post(&url, &none)
        .await
        .assert_problem("badNonce", 400, "no \"nonce\"");
    // A nonce this server never issued.
    let bogus = k.sign_with_jwk(
        &url,
        Some("AAABogaZqo53igREdM064Yed42aBMHsUBhZrAUSVTGU"),
        Some(&payload),
    );
    s.post(&url, &bogus)
        .await
        .assert_problem("badNonce", 400, "not issued by this server");
    let junk = k.sign_with_jwk(&url, Some("hello"), Some(&payload));
    s.post(&url, &junk)
        .await
        .assert_problem("badNonce", 400, "not one this server issued");
    // Reuse: first use succeeds, the replay is refused and carries a fresh nonce to retry with.
    let n = s.nonce().await;
    let first = s
        .post(&url, &k.sign_with_jwk(&url, Some(&n), Some(&payload)))
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    let replay = s
        .post(&url, &k.sign_with_jwk(&url, Some(&n), Some(&payload)))
        .await;
    replay.assert_problem("badNonce", 400, "already been used");
    let fresh = replay.headers["replay-nonce"].to_str().unwrap().to_owned();
    let retry = s
        .post(&url, &k.sign_with_jwk(&url, Some(&fresh), Some(&payload)))
        .await;
    assert_eq!(
        retry.status, 200,
        "retry with the fresh nonce works: {retry:?}"
    );
    // Replay of a kid request is refused too.
    let kid = first.location.unwrap();
    let n = s.nonce().await;
    let body = k.sign_with_kid(&kid, &kid, &n, None);
    assert_eq!(s.post(&kid, &body).await.status, 200);
    s.post(&kid, &body)
        .await
        .assert_problem("badNonce", 400, "already been used");
    s.stop().await;
}

async fn expired_nonce_is_bad_nonce(e: Engine) {
    let s = TestServer::start_with(e, |c| c.nonce_lifetime_secs = 60, true).await;
    let k = p256();
    let url = s.url("/acme/new-acct");
    let n = s.nonce().await;
    s.clock.as_ref().unwrap().advance(61_000);
    s.post(
        &url,
        &k.sign_with_jwk(&url, Some(&n), Some(&json!({"termsOfServiceAgreed": true}))),
    )
    .await
    .assert_problem("badNonce", 400, "expired");
    // Used nonces past their lifetime are pruned; a fresh one still works.
    let r = s
        .new_account(&k, json!({"termsOfServiceAgreed": true}))
        .await;
    assert_eq!(r.status, 201);
    let store = &s.running.as_ref().unwrap().store;
    assert_eq!(store.used_nonce_count().await.unwrap(), 1);
    s.clock.as_ref().unwrap().advance(61_000);
    use cobble_core::clock::Clock;
    let pruned = store
        .prune(s.clock.as_ref().unwrap().now_ms(), 30 * 86_400_000, 500)
        .await
        .unwrap();
    assert_eq!(pruned.nonces, 1);
    s.stop().await;
}

async fn key_problems(e: Engine) {
    let s = TestServer::start(e).await;
    let url = s.url("/acme/new-acct");
    let k = p256();
    // A JWS whose embedded key is weak or invalid: signature is never reached.
    let weak_rsa = json!({"kty": "RSA", "n": cobble_core::b64::encode([0xC3u8; 128]), "e": "AQAB"});
    let off_curve = json!({"kty": "EC", "crv": "P-256", "x": cobble_core::b64::encode([1u8; 32]), "y": cobble_core::b64::encode([2u8; 32])});
    let huge_rsa =
        json!({"kty": "RSA", "n": cobble_core::b64::encode([0xC3u8; 1100]), "e": "AQAB"});
    for (jwk, alg, frag) in [
        (weak_rsa, "RS256", "1024 bits"),
        (off_curve, "ES256", "not on curve"),
        (huge_rsa, "RS256", "8800 bits"),
    ] {
        let mut b = k.sign_with_jwk(&url, Some(&s.nonce().await), Some(&json!({})));
        b["protected"] = json!(b64json(
            &json!({"alg": alg, "jwk": jwk, "url": url, "nonce": s.nonce().await})
        ));
        s.post(&url, &b)
            .await
            .assert_problem("badPublicKey", 400, frag);
    }
    s.stop().await;
}

async fn account_problems(e: Engine) {
    let s = TestServer::start(e).await;
    let (a, b) = (p256(), p256());
    let kid_a = s.account(&a).await;
    let kid_b = s.account(&b).await;
    // kid naming an account that does not exist.
    let ghost = s.url("/acme/acct/AAAAAAAAAAAAAAAAAAAAAA");
    s.post_kid(&a, &ghost, &ghost, None).await.assert_problem(
        "accountDoesNotExist",
        400,
        "does not exist",
    );
    // kid that is not an account URL.
    s.post_kid(&a, "https://elsewhere.example/acct/1", &kid_a, None)
        .await
        .assert_problem("malformed", 400, "not an account URL");
    // A's key signing as B -> signature fails; A's kid on B's URL -> unauthorized.
    s.post_kid(&a, &kid_b, &kid_b, None).await.assert_problem(
        "malformed",
        400,
        "signature is invalid",
    );
    s.post_kid(&a, &kid_a, &kid_b, None).await.assert_problem(
        "unauthorized",
        403,
        "not by account",
    );
    // jwk on an account URL.
    let body = a.sign_with_jwk(&kid_a, Some(&s.nonce().await), None);
    s.post(&kid_a, &body)
        .await
        .assert_problem("malformed", 400, "not embed a \"jwk\"");
    // Unknown status change.
    s.post_kid(&a, &kid_a, &kid_a, Some(&json!({"status": "pending"})))
        .await
        .assert_problem("malformed", 400, "cannot be requested");
    s.post_kid(&a, &kid_a, &kid_a, Some(&json!({"status": "revoked"})))
        .await
        .assert_problem("unauthorized", 403, "cannot become revoked");
    // onlyReturnExisting for an unknown key.
    s.new_account(&p256(), json!({"onlyReturnExisting": true}))
        .await
        .assert_problem("accountDoesNotExist", 400, "no account exists");
    // A payload that is not an object of the right shape.
    s.post_kid(
        &a,
        &kid_a,
        &kid_a,
        Some(&json!({"contact": "mailto:x@example.com"})),
    )
    .await
    .assert_problem("malformed", 400, "expected JSON");
    s.stop().await;
}

async fn deactivated_account_is_refused(e: Engine) {
    let s = TestServer::start(e).await;
    let k = p256();
    let kid = s.account(&k).await;
    let r = s
        .post_kid(&k, &kid, &kid, Some(&json!({"status": "deactivated"})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "deactivated");
    // RFC 8555 §7.3.6: every later request with this account is unauthorized, 401.
    let r = s.post_kid(&k, &kid, &kid, None).await;
    r.assert_problem("unauthorized", 401, "DEACTIVATED_ACCOUNT");
    assert_eq!(r.body["code"], "DEACTIVATED_ACCOUNT");
    s.post_kid(&k, &kid, &kid, Some(&json!({"status": "deactivated"})))
        .await
        .assert_problem("unauthorized", 401, "deactivated");
    s.new_account(&k, json!({"termsOfServiceAgreed": true}))
        .await
        .assert_problem("unauthorized", 401, "DEACTIVATED_ACCOUNT");
    s.stop().await;
}

async fn terms_of_service_and_contacts(e: Engine) {
    let s = TestServer::start(e).await;
    // No agreement while terms are configured -> userActionRequired with a Link to them.
    let r = s.new_account(&p256(), json!({})).await;
    r.assert_problem("userActionRequired", 403, "terms of service");
    assert!(
        r.headers
            .get_all("link")
            .iter()
            .any(|l| l.to_str().unwrap()
                == format!("<{}>;rel=\"terms-of-service\"", s.url("/terms")))
    );
    let terms = s
        .http
        .get(s.url("/terms"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(terms.contains("test certificate authority"));
    // Contacts (RFC 8555 §7.3): mailto only, one address, no hfields, at most 10.
    for (contact, kind, frag) in [
        (
            json!(["tel:+12025550100"]),
            "unsupportedContact",
            "only mailto",
        ),
        (json!(["mailto:not-an-address"]), "invalidContact", "no @"),
        (
            json!(["mailto:a@example.com?subject=hi"]),
            "invalidContact",
            "header fields",
        ),
        (
            json!(["mailto:a@example.com,b@example.com"]),
            "invalidContact",
            "more than one address",
        ),
        (
            json!(
                (0..11)
                    .map(|i| format!("mailto:a{i}@example.com"))
                    .collect::<Vec<_>>()
            ),
            "invalidContact",
            "too many",
        ),
    ] {
        s.new_account(
            &p256(),
            json!({"termsOfServiceAgreed": true, "contact": contact}),
        )
        .await
        .assert_problem(kind, 400, frag);
    }
    // The same rules on update.
    let k = p256();
    let kid = s.account(&k).await;
    s.post_kid(&k, &kid, &kid, Some(&json!({"contact": ["ftp://x"]})))
        .await
        .assert_problem("unsupportedContact", 400, "only mailto");
    let ok = s
        .post_kid(
            &k,
            &kid,
            &kid,
            Some(&json!({"contact": ["mailto:new@example.com"]})),
        )
        .await;
    assert_eq!(
        ok.body["contact"],
        json!(["mailto:new@example.com"]),
        "{ok:?}"
    );
    s.stop().await;

    // With terms switched off, agreement is not needed.
    let s = TestServer::start_with(e, |c| c.terms_of_service = Some(String::new()), false).await;
    let r = s.new_account(&p256(), json!({})).await;
    assert_eq!(r.status, 201, "{r:?}");
    let dir = common::Reply::from(s.http.get(s.url("/dir")).send().await.unwrap()).await;
    assert!(dir.body["meta"].get("termsOfService").is_none());
    s.stop().await;
}

async fn orders_list_and_post_as_get(e: Engine) {
    let s = TestServer::start(e).await;
    let k = p256();
    let kid = s.account(&k).await;
    let orders = format!("{kid}/orders");
    let r = s.post_kid(&k, &kid, &orders, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({"orders": []}));
    s.post_kid(&k, &kid, &orders, Some(&json!({})))
        .await
        .assert_problem("malformed", 400, "POST-as-GET");
    let other = p256();
    let other_kid = s.account(&other).await;
    s.post_kid(&other, &other_kid, &orders, None)
        .await
        .assert_problem("unauthorized", 403, "not by account");
    s.stop().await;
}
