//! Validation runs on a budget and within one deadline (RFC 8555 §7.5.1; Boulder's VA
//! does the same): challenges whose targets never answer take budget, not the queue, so
//! another client's challenge still validates at once; and a validation that cannot finish
//! fails with `connection` at its deadline instead of outliving its lease. SQLite and
//! PostgreSQL.

mod common;

use cobble_core::challenge::key_authorization;
use cobble_core::jwk::Curve;
use cobble_core::sign::Signer;
use common::{Engine, TestServer, ValidationEnv};
use serde_json::{Value, json};

both_engines!(
    slow_targets_do_not_hold_up_other_challenges,
    a_validation_that_cannot_finish_fails_at_its_deadline
);

/// Orders `names` for a new account and returns (key, kid, the http-01 challenges).
async fn order_challenges(s: &TestServer, names: &[&str]) -> (Signer, String, Vec<Value>) {
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let kid = s.account(&k).await;
    let ids: Vec<Value> = names
        .iter()
        .map(|n| json!({"type": "dns", "value": n}))
        .collect();
    let order = s
        .post_kid(
            &k,
            &kid,
            &s.url("/acme/new-order"),
            Some(&json!({"identifiers": ids})),
        )
        .await;
    assert_eq!(order.status, 201, "{order:?}");
    let mut out = Vec::new();
    for a in order.body["authorizations"].as_array().unwrap() {
        let authz = s.post_kid(&k, &kid, a.as_str().unwrap(), None).await;
        let ch = authz.body["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "http-01")
            .unwrap()
            .clone();
        out.push(ch);
    }
    (k, kid, out)
}

async fn slow_targets_do_not_hold_up_other_challenges(e: Engine) {
    let env = ValidationEnv::start(e, |c| c.validation_timeout_secs = 60).await;
    let s = &env.server;
    let st = env.chall.state();
    let port = env.chall.http01_addr().unwrap().port();
    let hold = common::hanging_listener("127.0.0.5", port).await;
    let slow: Vec<String> = (0..8).map(|i| format!("slow{i}.example.com")).collect();
    for n in &slow {
        st.add_a(n, &["127.0.0.5".parse().unwrap()]);
    }
    let names: Vec<&str> = slow.iter().map(String::as_str).collect();
    let (k, kid, slow_challenges) = order_challenges(s, &names).await;
    for ch in &slow_challenges {
        let r = s
            .post_kid(&k, &kid, ch["url"].as_str().unwrap(), Some(&json!({})))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    // Another client's challenge, answered properly.
    let (k2, kid2, good) = order_challenges(s, &["good.example.com"]).await;
    let token = good[0]["token"].as_str().unwrap();
    st.add_http01(
        token,
        &key_authorization(token, &k2.public_key().thumbprint()),
    );
    s.post_kid(
        &k2,
        &kid2,
        good[0]["url"].as_str().unwrap(),
        Some(&json!({})),
    )
    .await;
    let done = common::poll_until(s, &k2, &kid2, good[0]["url"].as_str().unwrap(), |c| {
        c["status"] != "processing" && c["status"] != "pending"
    })
    .await;
    assert_eq!(done["status"], "valid", "{done}");
    // ...while the eight slow ones are all still being validated.
    for ch in &slow_challenges {
        let r = s
            .post_kid(&k, &kid, ch["url"].as_str().unwrap(), None)
            .await;
        assert_eq!(r.body["status"], "processing", "{r:?}");
    }
    hold.abort();
    env.stop().await;
}

async fn a_validation_that_cannot_finish_fails_at_its_deadline(e: Engine) {
    let env = ValidationEnv::start(e, |c| {
        c.validation_timeout_secs = 60;
        c.validation_deadline_secs = 2;
    })
    .await;
    let s = &env.server;
    let st = env.chall.state();
    let port = env.chall.http01_addr().unwrap().port();
    let hold = common::hanging_listener("127.0.0.6", port).await;
    st.add_a("stuck.example.com", &["127.0.0.6".parse().unwrap()]);
    let (k, kid, chs) = order_challenges(s, &["stuck.example.com"]).await;
    let url = chs[0]["url"].as_str().unwrap();
    s.post_kid(&k, &kid, url, Some(&json!({}))).await;
    let mut last = Value::Null;
    for _ in 0..80 {
        last = s.post_kid(&k, &kid, url, None).await.body;
        if last["status"] != "processing" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last["status"], "invalid", "{last}");
    assert_eq!(
        last["error"]["type"], "urn:ietf:params:acme:error:connection",
        "{last}"
    );
    let detail = last["error"]["detail"].as_str().unwrap();
    assert!(detail.contains("did not finish within 2 s"), "{detail}");
    hold.abort();
    env.stop().await;
}
