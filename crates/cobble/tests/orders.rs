//! Orders, authorizations and challenges (RFC 8555 §7.4-§7.5, §8, RFC 8737, RFC 8738,
//! RFC 8659) end to end: a real Cobble, a real challtestsrv, instant-acme and hand-built
//! JWS. Every test runs on SQLite and on PostgreSQL.

mod common;

use cobble_challtestsrv::CaaPolicy;
use cobble_core::challenge::{dns01_txt_value, key_authorization};
use cobble_core::jwk::Curve;
use cobble_core::sign::Signer;
use common::{Engine, TestServer, ValidationEnv, poll_until};
use instant_acme::{
    AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};
use serde_json::{Value, json};
use std::time::Duration;

both_engines!(
    every_challenge_type_reaches_ready,
    dns01_through_a_cname,
    validation_failures_name_the_problem,
    caa_forbids_and_allows,
    pre_authorization_is_reused,
    order_problems,
    orders_list_is_paginated,
    deactivated_authz_invalidates_order,
    validation_survives_a_restart,
);

fn p256() -> Signer {
    Signer::generate_ec(Curve::P256).unwrap()
}

async fn every_challenge_type_reaches_ready(e: Engine) {
    let env = ValidationEnv::start(e, |_| {}).await;
    let s = &env.server;
    let st = env.chall.state();
    let account = common::acme_account(s).await;
    let ids = [
        Identifier::Dns("a.example.com".into()),
        Identifier::Dns("*.w.example.com".into()),
        Identifier::Dns("t.example.com".into()),
        Identifier::Ip("127.0.0.1".parse().unwrap()),
    ];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    assert_eq!(order.state().status, OrderStatus::Pending);
    let mut authzs = order.authorizations();
    let mut seen = 0;
    while let Some(a) = authzs.next().await {
        let mut a = a.unwrap();
        seen += 1;
        let types: Vec<ChallengeType> = a.challenges.iter().map(|c| c.r#type.clone()).collect();
        let id = a.identifier().identifier.clone();
        let kind = match (&id, a.wildcard) {
            (Identifier::Dns(_), true) => {
                assert_eq!(
                    types,
                    vec![ChallengeType::Dns01],
                    "wildcards get dns-01 only"
                );
                ChallengeType::Dns01
            }
            (Identifier::Ip(_), _) => {
                assert_eq!(
                    types,
                    vec![ChallengeType::Http01, ChallengeType::TlsAlpn01],
                    "RFC 8738: no dns-01 for IPs"
                );
                ChallengeType::Http01
            }
            (Identifier::Dns(n), false) if n == "t.example.com" => ChallengeType::TlsAlpn01,
            _ => ChallengeType::Http01,
        };
        let mut ch = a.challenge(kind.clone()).unwrap();
        let ka = ch.key_authorization().as_str().to_owned();
        match (kind, &id) {
            (ChallengeType::Dns01, Identifier::Dns(n)) => st.set_txt(
                &format!("_acme-challenge.{n}"),
                &ch.key_authorization().dns_value(),
            ),
            (ChallengeType::TlsAlpn01, Identifier::Dns(n)) => st.add_tlsalpn01(n, &ka).unwrap(),
            _ => st.add_http01(&ch.token, &ka),
        }
        ch.set_ready().await.unwrap();
    }
    assert_eq!(seen, 4);
    let status = order
        .poll_ready(
            &RetryPolicy::new()
                .initial_delay(Duration::from_millis(50))
                .timeout(Duration::from_secs(20)),
        )
        .await
        .unwrap();
    assert_eq!(status, OrderStatus::Ready);
    // And the certificate names all four, validated over the network.
    order.finalize().await.unwrap();
    let chain = order
        .poll_certificate(
            &RetryPolicy::new()
                .initial_delay(Duration::from_millis(50))
                .timeout(Duration::from_secs(20)),
        )
        .await
        .unwrap();
    let der = cobble_ca::pem::certificates(&chain).unwrap().remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let sans = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .len();
    assert_eq!(sans, 4);
    env.stop().await;
}

/// Makes an order for `name` by hand; returns (order body, order URL, first authz body, authz URL).
async fn hand_order(s: &TestServer, k: &Signer, kid: &str, ids: Value) -> (Value, String) {
    let r = s
        .post_kid(
            k,
            kid,
            &s.url("/acme/new-order"),
            Some(&json!({"identifiers": ids})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    (r.body, r.location.unwrap())
}

async fn challenge_of(s: &TestServer, k: &Signer, kid: &str, authz_url: &str, kind: &str) -> Value {
    let a = s.post_kid(k, kid, authz_url, None).await;
    a.body["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .cloned()
        .expect(kind)
}

async fn dns01_through_a_cname(e: Engine) {
    let env = ValidationEnv::start(e, |_| {}).await;
    let (s, st) = (&env.server, env.chall.state());
    let k = p256();
    let kid = s.account(&k).await;
    let thumb = k.public_key().thumbprint();
    let (order, order_url) = hand_order(
        s,
        &k,
        &kid,
        json!([{"type": "dns", "value": "c.example.com"}]),
    )
    .await;
    let authz_url = order["authorizations"][0].as_str().unwrap().to_owned();
    let ch = challenge_of(s, &k, &kid, &authz_url, "dns-01").await;
    // The acme.sh/Certigna delegation: _acme-challenge points into another zone.
    st.set_cname(
        "_acme-challenge.c.example.com",
        "c.acme-delegate.example.net",
    );
    st.set_txt("c.acme-delegate.example.net", "some other value");
    st.set_txt(
        "c.acme-delegate.example.net",
        &dns01_txt_value(&key_authorization(ch["token"].as_str().unwrap(), &thumb)),
    );
    let r = s
        .post_kid(&k, &kid, ch["url"].as_str().unwrap(), Some(&json!({})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.headers
            .get_all("link")
            .iter()
            .any(|l| l.to_str().unwrap().contains("rel=\"up\""))
    );
    let o = poll_until(s, &k, &kid, &order_url, |o| o["status"] != "pending").await;
    assert_eq!(o["status"], "ready", "{o}");
    let a = s.post_kid(&k, &kid, &authz_url, None).await.body;
    assert_eq!(a["status"], "valid");
    let dns = a["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "dns-01")
        .unwrap();
    assert_eq!(dns["status"], "valid");
    assert!(dns["validated"].as_str().unwrap().ends_with('Z'));
    env.stop().await;
}

/// One failing validation: returns the challenge's error.
async fn failing(
    env: &ValidationEnv,
    k: &Signer,
    kid: &str,
    name: &str,
    kind: &str,
    setup: impl FnOnce(&str, &str),
) -> Value {
    let s = &env.server;
    let (order, order_url) = hand_order(s, k, kid, json!([{"type": "dns", "value": name}])).await;
    let authz_url = order["authorizations"][0].as_str().unwrap().to_owned();
    let ch = challenge_of(s, k, kid, &authz_url, kind).await;
    let token = ch["token"].as_str().unwrap();
    setup(
        token,
        &key_authorization(token, &k.public_key().thumbprint()),
    );
    s.post_kid(k, kid, ch["url"].as_str().unwrap(), Some(&json!({})))
        .await;
    let a = poll_until(s, k, kid, &authz_url, |a| a["status"] != "pending").await;
    assert_eq!(a["status"], "invalid", "{name}: {a}");
    let o = s.post_kid(k, kid, &order_url, None).await.body;
    assert_eq!(
        o["status"], "invalid",
        "{name}: an invalid authorization invalidates the order"
    );
    let ch = a["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap()
        .clone();
    assert_eq!(ch["status"], "invalid");
    // RFC 8555 §6.7.1: `identifier` only inside subproblems, never at the top level.
    assert!(ch["error"].get("identifier").is_none(), "{ch}");
    let _ = name;
    ch["error"].clone()
}

async fn validation_failures_name_the_problem(e: Engine) {
    let env = ValidationEnv::start(e, |_| {}).await;
    let st = env.chall.state();
    let k = p256();
    let kid = env.server.account(&k).await;
    let port = env.chall.http01_addr().unwrap().port();
    // A listener that accepts and never answers, on the http-01 port of another loopback address.
    let hold = common::hanging_listener("127.0.0.3", port).await;
    // (name, challenge, set-up, problem type, detail fragment)
    type Setup<'a> = Box<dyn FnOnce(&str, &str) + 'a>;
    let cases: Vec<(&str, &str, Setup, &str, &str)> = vec![
        (
            // Nothing published: the challenge server answers an empty 200, as
            // pebble-challtestsrv does.
            "nothing.example.com",
            "http-01",
            Box::new(|_, _| {}),
            "incorrectResponse",
            "did not match",
        ),
        (
            "wrong.example.com",
            "http-01",
            Box::new(|t, _| st.add_http01(t, "not-the-key-authorization")),
            "incorrectResponse",
            "did not match",
        ),
        (
            "refused.example.com",
            "http-01",
            Box::new(|_, _| st.add_a("refused.example.com", &["127.0.0.2".parse().unwrap()])),
            "connection",
            "127.0.0.2",
        ),
        (
            "slow.example.com",
            "http-01",
            Box::new(|_, _| st.add_a("slow.example.com", &["127.0.0.3".parse().unwrap()])),
            "connection",
            "Timeout",
        ),
        (
            "loop.example.com",
            "http-01",
            Box::new(|t, _| {
                let path = format!("/.well-known/acme-challenge/{t}");
                st.add_redirect(&path, &format!("http://loop.example.com:{port}{path}"));
            }),
            "connection",
            "edirect",
        ),
        (
            "notxt.example.com",
            "dns-01",
            Box::new(|_, _| {}),
            "unauthorized",
            "No TXT record",
        ),
        (
            "badtxt.example.com",
            "dns-01",
            Box::new(|_, _| st.set_txt("_acme-challenge.badtxt.example.com", "nope")),
            "unauthorized",
            "Incorrect TXT",
        ),
        (
            "servfail.example.com",
            "dns-01",
            Box::new(|_, _| st.set_servfail("_acme-challenge.servfail.example.com")),
            "dns",
            "SERVFAIL",
        ),
        (
            "alpn.example.com",
            "tls-alpn-01",
            Box::new(|_, _| {
                st.add_tlsalpn01("alpn.example.com", "wrong.key-authorization")
                    .unwrap()
            }),
            "incorrectResponse",
            "acmeIdentifier",
        ),
        (
            "noalpn.example.com",
            "tls-alpn-01",
            Box::new(|_, _| {}),
            "tls",
            "noalpn.example.com",
        ),
    ];
    for (name, kind, setup, ptype, frag) in cases {
        let err = failing(&env, &k, &kid, name, kind, setup).await;
        assert_eq!(
            err["type"],
            format!("urn:ietf:params:acme:error:{ptype}"),
            "{name}: {err}"
        );
        assert!(
            err["detail"].as_str().unwrap().contains(frag),
            "{name}: {err}"
        );
    }
    hold.abort();
    env.stop().await;
}

async fn caa_forbids_and_allows(e: Engine) {
    let env = ValidationEnv::start(e, |_| {}).await;
    let st = env.chall.state();
    let k = p256();
    let kid = env.server.account(&k).await;
    st.add_caa(
        "caa-other.example.com",
        &[CaaPolicy::new("issue", "other-ca.test")],
    );
    let err = failing(
        &env,
        &k,
        &kid,
        "www.caa-other.example.com",
        "http-01",
        |t, ka| st.add_http01(t, ka),
    )
    .await;
    assert_eq!(err["type"], "urn:ietf:params:acme:error:caa", "{err}");
    // The code and status of problem.rs's code table.
    assert_eq!(err["code"], "INVALID_DNSCAA", "{err}");
    assert_eq!(err["status"], 403, "{err}");
    assert!(
        err["detail"]
            .as_str()
            .unwrap()
            .starts_with("INVALID_DNSCAA"),
        "{err}"
    );
    assert!(
        err["detail"].as_str().unwrap().contains("other-ca.test"),
        "{err}"
    );
    // A CAA record naming this CA (with the account and method) lets it through.
    let s = &env.server;
    st.add_caa(
        "caa-ok.example.com",
        &[CaaPolicy::new(
            "issue",
            format!("cobble.test; accounturi={kid}; validationmethods=http-01"),
        )],
    );
    let (order, order_url) = hand_order(
        s,
        &k,
        &kid,
        json!([{"type": "dns", "value": "caa-ok.example.com"}]),
    )
    .await;
    let ch = challenge_of(
        s,
        &k,
        &kid,
        order["authorizations"][0].as_str().unwrap(),
        "http-01",
    )
    .await;
    let token = ch["token"].as_str().unwrap();
    st.add_http01(
        token,
        &key_authorization(token, &k.public_key().thumbprint()),
    );
    s.post_kid(&k, &kid, ch["url"].as_str().unwrap(), Some(&json!({})))
        .await;
    let o = poll_until(s, &k, &kid, &order_url, |o| o["status"] != "pending").await;
    assert_eq!(o["status"], "ready", "{o}");
    env.stop().await;
}

async fn pre_authorization_is_reused(e: Engine) {
    let env = ValidationEnv::start(e, |_| {}).await;
    let (s, st) = (&env.server, env.chall.state());
    let k = p256();
    let kid = s.account(&k).await;
    let dir = common::Reply::from(s.http.get(&s.directory_url).send().await.unwrap()).await;
    assert_eq!(dir.body["newAuthz"], s.url("/acme/new-authz"));
    let r = s
        .post_kid(
            &k,
            &kid,
            &s.url("/acme/new-authz"),
            Some(&json!({"identifier": {"type": "dns", "value": "pre.example.com"}})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let authz_url = r.location.unwrap();
    assert_eq!(r.body["status"], "pending");
    let ch = challenge_of(s, &k, &kid, &authz_url, "http-01").await;
    let token = ch["token"].as_str().unwrap();
    st.add_http01(
        token,
        &key_authorization(token, &k.public_key().thumbprint()),
    );
    s.post_kid(&k, &kid, ch["url"].as_str().unwrap(), Some(&json!({})))
        .await;
    poll_until(s, &k, &kid, &authz_url, |a| a["status"] == "valid").await;
    // An order for the name now is ready at once, with the pre-authorization in it.
    let (order, _) = hand_order(
        s,
        &k,
        &kid,
        json!([{"type": "dns", "value": "pre.example.com"}]),
    )
    .await;
    assert_eq!(order["status"], "ready", "{order}");
    assert_eq!(order["authorizations"], json!([authz_url]));
    // Wildcards cannot be pre-authorized.
    s.post_kid(
        &k,
        &kid,
        &s.url("/acme/new-authz"),
        Some(&json!({"identifier": {"type": "dns", "value": "*.pre.example.com"}})),
    )
    .await
    .assert_problem("malformed", 400, "wildcard");
    s.post_kid(
        &k,
        &kid,
        &s.url("/acme/new-authz"),
        Some(&json!({"identifier": {"type": "dns", "value": "co.uk"}})),
    )
    .await
    .assert_problem("rejectedIdentifier", 400, "public suffix");
    env.stop().await;

    // Switched off: not in the directory, and the endpoint is gone.
    let s = TestServer::start_with(e, |c| c.pre_authorization = false, false).await;
    let dir = common::Reply::from(s.http.get(&s.directory_url).send().await.unwrap()).await;
    assert!(dir.body.get("newAuthz").is_none());
    let k = p256();
    let kid = s.account(&k).await;
    s.post_kid(
        &k,
        &kid,
        &s.url("/acme/new-authz"),
        Some(&json!({"identifier": {"type": "dns", "value": "x.example.com"}})),
    )
    .await
    .assert_problem("malformed", 404, "switched off");
    s.stop().await;
}

async fn order_problems(e: Engine) {
    let s = TestServer::start_with(
        e,
        |c| c.blocked_domains = vec!["blocked.example".into()],
        false,
    )
    .await;
    let k = p256();
    let kid = s.account(&k).await;
    let url = s.url("/acme/new-order");
    let post = |ids: Value| {
        let (k, kid, url, s) = (&k, &kid, &url, &s);
        async move {
            s.post_kid(k, kid, url, Some(&json!({"identifiers": ids})))
                .await
        }
    };
    post(json!([]))
        .await
        .assert_problem("malformed", 400, "no identifiers");
    post(json!([{"type": "email", "value": "a@example.com"}]))
        .await
        .assert_problem("unsupportedIdentifier", 400, "email");
    let r = post(json!([{"type": "dns", "value": "UPPER.example.com"}])).await;
    r.assert_problem("malformed", 400, "lowercase");
    // RFC 8555 §6.7.1: a single refused identifier is one subproblem, none at the top.
    assert!(r.body.get("identifier").is_none(), "{r:?}");
    assert_eq!(r.body["subproblems"].as_array().unwrap().len(), 1, "{r:?}");
    assert_eq!(
        r.body["subproblems"][0]["identifier"]["value"],
        "UPPER.example.com"
    );
    post(json!([{"type": "dns", "value": "co.uk"}]))
        .await
        .assert_problem("rejectedIdentifier", 400, "public suffix");
    post(json!([{"type": "dns", "value": "www.blocked.example"}]))
        .await
        .assert_problem("rejectedIdentifier", 400, "UNAUTHORIZED_DOMAIN");
    post(json!([{"type": "ip", "value": "not-an-ip"}]))
        .await
        .assert_problem("malformed", 400, "not an IP");
    let r = post(json!([{"type": "dns", "value": "ok.example.com"}, {"type": "dns", "value": "bad_name.example.com"}, {"type": "dns", "value": "printer.local"}])).await;
    r.assert_problem("compound", 400, "2 identifiers");
    assert_eq!(r.body["subproblems"].as_array().unwrap().len(), 2, "{r:?}");
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"type": "dns", "value": format!("h{i}.example.com")}))
        .collect();
    post(json!(many))
        .await
        .assert_problem("rejectedIdentifier", 400, "at most 100");
    s.post_kid(&k, &kid, &url, Some(&json!({"identifiers": [{"type": "dns", "value": "x.example.com"}], "notBefore": "2030-01-01T00:00:00Z"})))
        .await
        .assert_problem("malformed", 400, "notBefore");
    // Finalize before ready; someone else's order; an order that does not exist.
    let (order, order_url) = hand_order(&s, &k, &kid, json!([{"type": "dns", "value": "x.example.com"}, {"type": "dns", "value": "x.example.com"}])).await;
    assert_eq!(
        order["identifiers"].as_array().unwrap().len(),
        1,
        "duplicates are merged"
    );
    s.post_kid(
        &k,
        &kid,
        order["finalize"].as_str().unwrap(),
        Some(&json!({"csr": "AA"})),
    )
    .await
    .assert_problem("orderNotReady", 403, "pending");
    let other = p256();
    let other_kid = s.account(&other).await;
    s.post_kid(&other, &other_kid, &order_url, None)
        .await
        .assert_problem("unauthorized", 403, "another account");
    s.post_kid(
        &other,
        &other_kid,
        order["authorizations"][0].as_str().unwrap(),
        None,
    )
    .await
    .assert_problem("unauthorized", 403, "another account");
    s.post_kid(&k, &kid, &s.url("/acme/order/nope"), None)
        .await
        .assert_problem("malformed", 404, "does not exist");
    s.post_kid(&k, &kid, &s.url("/acme/chall/nope"), None)
        .await
        .assert_problem("malformed", 404, "does not exist");
    s.stop().await;

    // With order validity allowed, bad timestamps are still refused.
    let s = TestServer::start_with(e, |c| c.allow_order_validity = true, false).await;
    let kid = s.account(&k).await;
    let url = s.url("/acme/new-order");
    let ids = json!([{"type": "dns", "value": "x.example.com"}]);
    s.post_kid(
        &k,
        &kid,
        &url,
        Some(&json!({"identifiers": ids, "notBefore": "yesterday"})),
    )
    .await
    .assert_problem("malformed", 400, "RFC 3339");
    s.post_kid(&k, &kid, &url, Some(&json!({"identifiers": ids, "notBefore": "2031-01-02T00:00:00Z", "notAfter": "2031-01-01T00:00:00Z"})))
        .await
        .assert_problem("malformed", 400, "later than notBefore");
    let r = s.post_kid(&k, &kid, &url, Some(&json!({"identifiers": ids, "notBefore": "2031-01-01T00:00:00Z", "notAfter": "2031-02-01T00:00:00Z"}))).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["notBefore"], "2031-01-01T00:00:00Z");
    s.stop().await;
}

async fn orders_list_is_paginated(e: Engine) {
    let s = TestServer::start_with(e, |c| c.orders_per_page = 2, false).await;
    let k = p256();
    let kid = s.account(&k).await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(
            hand_order(
                &s,
                &k,
                &kid,
                json!([{"type": "dns", "value": format!("o{i}.example.com")}]),
            )
            .await
            .1,
        );
    }
    let mut url = format!("{kid}/orders");
    let mut listed = Vec::new();
    for _ in 0..5 {
        let r = s.post_kid(&k, &kid, &url, None).await;
        assert_eq!(r.status, 200, "{r:?}");
        let page: Vec<String> = r.body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert!(page.len() <= 2);
        listed.extend(page);
        let next = r
            .headers
            .get_all("link")
            .iter()
            .map(|l| l.to_str().unwrap().to_owned())
            .find(|l| l.ends_with("rel=\"next\""));
        match next {
            Some(l) => {
                url = l
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned()
            }
            None => break,
        }
    }
    assert_eq!(listed, made, "every order once, in creation order");
    s.post_kid(&k, &kid, &format!("{kid}/orders?cursor=zzz"), None)
        .await
        .assert_problem("malformed", 400, "cursor");
    s.stop().await;
}

async fn deactivated_authz_invalidates_order(e: Engine) {
    let s = TestServer::start(e).await;
    let k = p256();
    let kid = s.account(&k).await;
    let (order, order_url) = hand_order(
        &s,
        &k,
        &kid,
        json!([{"type": "dns", "value": "d.example.com"}]),
    )
    .await;
    let authz_url = order["authorizations"][0].as_str().unwrap();
    let r = s
        .post_kid(&k, &kid, authz_url, Some(&json!({"status": "deactivated"})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "deactivated");
    assert_eq!(
        s.post_kid(&k, &kid, &order_url, None).await.body["status"],
        "invalid"
    );
    s.post_kid(&k, &kid, authz_url, Some(&json!({"status": "deactivated"})))
        .await
        .assert_problem("malformed", 400, "deactivated");
    s.post_kid(&k, &kid, authz_url, Some(&json!({"status": "valid"})))
        .await
        .assert_problem("malformed", 400, "only \"deactivated\"");
    let ch = challenge_of(&s, &k, &kid, authz_url, "http-01").await;
    // Certigna's ACME_DEACTIVATED: the client deactivated this authorization itself.
    let r = s
        .post_kid(&k, &kid, ch["url"].as_str().unwrap(), Some(&json!({})))
        .await;
    r.assert_problem("unauthorized", 403, "no longer be answered");
    assert_eq!(r.body["code"], "ACME_DEACTIVATED");
    s.stop().await;
}

async fn validation_survives_a_restart(e: Engine) {
    // Instance A claims the job, then dies mid-validation (its http-01 target never answers).
    let env = ValidationEnv::start(e, |c| c.validation_timeout_secs = 30).await;
    let st = env.chall.state();
    let port = env.chall.http01_addr().unwrap().port();
    let hold = common::hanging_listener("127.0.0.4", port).await;
    st.add_a("r.example.com", &["127.0.0.4".parse().unwrap()]);
    let s = &env.server;
    let k = p256();
    let kid = s.account(&k).await;
    let (order, order_url) = hand_order(
        s,
        &k,
        &kid,
        json!([{"type": "dns", "value": "r.example.com"}]),
    )
    .await;
    let ch = challenge_of(
        s,
        &k,
        &kid,
        order["authorizations"][0].as_str().unwrap(),
        "http-01",
    )
    .await;
    let token = ch["token"].as_str().unwrap().to_owned();
    s.post_kid(&k, &kid, ch["url"].as_str().unwrap(), Some(&json!({})))
        .await;
    let store = s.running.as_ref().unwrap().store.clone();
    // Wait (bounded) until A's worker holds the job, then kill A.
    for _ in 0..100 {
        if claim(&store, i64::MIN / 2, 0).await.is_none()
            && store.validation_jobs_pending().await.unwrap() == 1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let db = s.database_url.clone();
    let ValidationEnv { mut server, chall } = env;
    let _keep_a_dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
    server.stop().await;
    let check = cobble_store::Store::connect(&db, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        check.validation_jobs_pending().await.unwrap(),
        1,
        "the job outlives its worker"
    );
    assert_eq!(
        claim(
            &check,
            cobble_core::clock::Clock::now_ms(&cobble_core::clock::SystemClock),
            1
        )
        .await,
        None,
        "A's lease still holds it"
    );
    check.close().await;

    // The name now answers properly; instance B, once A's lease has run out, takes the job over.
    let st = chall.state();
    st.clear_a("r.example.com");
    st.add_http01(
        &token,
        &key_authorization(&token, &k.public_key().thumbprint()),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::test_config(dir.path(), db);
    cfg.dns_server = chall.dns01_addr();
    cfg.http01_port = port;
    cfg.validation_poll_ms = 50;
    let b = TestServer::start_cfg(cfg, dir, true).await;
    b.clock.as_ref().unwrap().advance(121_000);
    let kid_b = b.url(&format!("/acme/acct/{}", kid.rsplit('/').next().unwrap()));
    let order_b = b.url(&format!(
        "/acme/order/{}",
        order_url.rsplit('/').next().unwrap()
    ));
    let o = poll_until(&b, &k, &kid_b, &order_b, |o| o["status"] != "pending").await;
    assert_eq!(o["status"], "ready", "{o}");
    hold.abort();
    b.stop().await;
    chall.shutdown().await;
}

#[tokio::test]
async fn authz_status_enum_is_what_instant_acme_reads() {
    // A guard that instant-acme's status names match ours (it parses them strictly).
    for (ours, theirs) in [
        ("pending", AuthorizationStatus::Pending),
        ("valid", AuthorizationStatus::Valid),
        ("deactivated", AuthorizationStatus::Deactivated),
    ] {
        let parsed: AuthorizationStatus = serde_json::from_value(json!(ours)).unwrap();
        assert_eq!(parsed, theirs);
    }
}

/// Tries to claim a validation job as worker "probe", in a transaction of its own.
async fn claim(
    store: &cobble_store::Store,
    now_ms: i64,
    lease_ms: i64,
) -> Option<cobble_store::ValidationJob> {
    let mut tx = store.begin().await.unwrap();
    let job = tx
        .claim_validation_job("probe", now_ms, lease_ms)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    job
}
