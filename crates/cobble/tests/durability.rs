//! Issuance survives what kills requests and processes (RFC 8555 §7.4): a client hanging
//! up, an instance dying between `processing` and `valid` (another instance, or the same
//! one restarted, finishes the job), and an issuance that keeps failing (the order becomes
//! `invalid` with ACME_ORDER_FINALIZE_ERROR rather than staying `processing`). Each order
//! ends with exactly one certificate. SQLite and PostgreSQL.

mod common;

use cobble_core::jwk::Curve;
use cobble_core::sign::Signer;
use common::{Engine, TestServer};
use serde_json::Value;
use std::time::Duration;

both_engines!(
    a_dead_instances_issuance_is_finished_by_another,
    a_client_hanging_up_does_not_stop_issuance,
    issuance_that_never_finishes_gives_up_with_a_problem,
);

/// A ready order finalized on `s` (which answers at once with `processing` when
/// `finalize_async` is on); returns (account key, kid, order URL, finalize answer).
async fn finalized(s: &TestServer, name: &str) -> (Signer, String, String, common::Reply) {
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let kid = s.account(&k).await;
    let r = common::finalize_by_hand(
        s,
        &k,
        &kid,
        &[name],
        &common::rcgen_csr(&[name], &rcgen::KeyPair::generate().unwrap()),
    )
    .await;
    let url = r.location.clone().expect("finalize names the order");
    (k, kid, url, r)
}

fn order_id(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

async fn a_dead_instances_issuance_is_finished_by_another(e: Engine) {
    // A takes the job and "dies" before signing: its task is aborted with no clean-up.
    let a = TestServer::start_with(
        e,
        |c| {
            c.va_always_valid = true;
            c.validation_poll_ms = 20;
            c.finalize_async = true;
            c.issuance_pause_ms = 600_000;
            c.issuance_lease_secs = 1;
        },
        false,
    )
    .await;
    let (k, kid, url, r) = finalized(&a, "takeover.example.com").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "processing", "{r:?}");
    let store = a.running.as_ref().unwrap().store.clone();
    assert_eq!(store.issuance_jobs_pending().await.unwrap(), 1);
    let b = common::second_instance_with(&a, |c| {
        c.validation_poll_ms = 50;
        c.issuance_lease_secs = 1;
    })
    .await;
    // A's data dir holds the SQLite file B uses: keep it past A's end.
    let mut a = a;
    let _keep = std::mem::replace(&mut a.dir, tempfile::tempdir().unwrap());
    a.stop().await;
    // B's issuance worker claims the job once A's lease has run out, and finishes it.
    let kid_b = b.url(&format!("/acme/acct/{}", kid.rsplit('/').next().unwrap()));
    let url_b = b.url(&format!("/acme/order/{}", order_id(&url)));
    let o = common::poll_until(&b, &k, &kid_b, &url_b, |o| o["status"] != "processing").await;
    assert_eq!(o["status"], "valid", "{o}");
    let store = b.running.as_ref().unwrap().store.clone();
    assert_eq!(
        store.certificates_of_order(order_id(&url)).await.unwrap(),
        1
    );
    assert_eq!(store.issuance_jobs_pending().await.unwrap(), 0);
    let cert = b
        .post_kid(&k, &kid_b, o["certificate"].as_str().unwrap(), None)
        .await;
    assert_eq!(cert.status, 200, "{cert:?}");
    assert!(cert.text.contains("BEGIN CERTIFICATE"));
    b.stop().await;
}

async fn a_client_hanging_up_does_not_stop_issuance(e: Engine) {
    let s = TestServer::start_with(
        e,
        |c| {
            c.va_always_valid = true;
            c.validation_poll_ms = 20;
            c.issuance_pause_ms = 1_500;
        },
        false,
    )
    .await;
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let kid = s.account(&k).await;
    let name = "hangup.example.com";
    let ids = vec![serde_json::json!({"type": "dns", "value": name})];
    let order = s
        .post_kid(
            &k,
            &kid,
            &s.url("/acme/new-order"),
            Some(&serde_json::json!({"identifiers": ids})),
        )
        .await;
    let url = order.location.clone().unwrap();
    for a in order.body["authorizations"].as_array().unwrap() {
        let authz = s.post_kid(&k, &kid, a.as_str().unwrap(), None).await;
        let ch = authz.body["challenges"][0]["url"]
            .as_str()
            .unwrap()
            .to_owned();
        s.post_kid(&k, &kid, &ch, Some(&serde_json::json!({})))
            .await;
    }
    common::poll_until(&s, &k, &kid, &url, |o| o["status"] == "ready").await;
    // Finalize, then hang up long before the (paused) signing ends.
    let csr = common::rcgen_csr(&[name], &rcgen::KeyPair::generate().unwrap());
    let fin = order.body["finalize"].as_str().unwrap().to_owned();
    let body = k.sign_with_kid(
        &kid,
        &fin,
        &s.nonce().await,
        Some(&serde_json::json!({"csr": cobble_core::b64::encode(&csr)})),
    );
    let hung_up = s
        .http
        .post(&fin)
        .header("content-type", "application/jose+json")
        .body(body.to_string())
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung_up.is_err(), "the client gave up first: {hung_up:?}");
    let o: Value = common::poll_until(&s, &k, &kid, &url, |o| o["status"] == "valid").await;
    assert!(o["certificate"].is_string(), "{o}");
    let store = s.running.as_ref().unwrap().store.clone();
    assert_eq!(
        store.certificates_of_order(order_id(&url)).await.unwrap(),
        1
    );
    s.stop().await;
}

async fn issuance_that_never_finishes_gives_up_with_a_problem(e: Engine) {
    // Every holder stalls past its lease: after MAX_ATTEMPTS claims the order is invalid.
    let s = TestServer::start_with(
        e,
        |c| {
            c.va_always_valid = true;
            c.validation_poll_ms = 20;
            c.finalize_async = true;
            c.issuance_pause_ms = 600_000;
            c.issuance_lease_secs = 1;
        },
        false,
    )
    .await;
    let (k, kid, url, r) = finalized(&s, "stall.example.com").await;
    assert_eq!(r.body["status"], "processing", "{r:?}");
    let mut last = Value::Null;
    for _ in 0..100 {
        last = s.post_kid(&k, &kid, &url, None).await.body;
        if last["status"] != "processing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["status"], "invalid", "{last}");
    assert_eq!(
        last["error"]["type"], "urn:ietf:params:acme:error:serverInternal",
        "{last}"
    );
    let detail = last["error"]["detail"].as_str().unwrap();
    assert!(detail.starts_with("ACME_ORDER_FINALIZE_ERROR"), "{detail}");
    let store = s.running.as_ref().unwrap().store.clone();
    assert_eq!(
        store.certificates_of_order(order_id(&url)).await.unwrap(),
        0
    );
    assert_eq!(store.issuance_jobs_pending().await.unwrap(), 0);
    s.stop().await;
}
