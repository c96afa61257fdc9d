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
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

both_engines!(
    deactivation_racing_finalize_on_two_instances,
    kill_9_mid_issuance_then_restart_completes_the_order,
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

/// Starts the `cobble serve` binary on `dir` and `database_url` with `config` (TOML), and
/// returns the process with a [`TestServer`] handle on it (no in-process server).
fn spawn_binary(dir: tempfile::TempDir, database_url: &str, config: &str) -> (Child, TestServer) {
    let cfg = dir
        .path()
        .join(format!("cobble-{}.toml", cobble_store::random_id()));
    std::fs::write(&cfg, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cobble"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "",
            "--no-rate-limits",
            "--config",
        ])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--database-url", database_url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read stdout to its end on a thread of its own, so the server never writes to a
    // closed pipe; the directory line comes back through the channel.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(u) = line.trim().strip_prefix("directory:") {
                let _ = tx.send(u.trim().to_owned());
            }
        }
    });
    let directory_url = rx.recv_timeout(Duration::from_secs(30)).ok();
    let directory_url = directory_url.expect("cobble serve printed its directory");
    let root = std::fs::read(dir.path().join("tls/ca.pem")).unwrap();
    let s = TestServer {
        running: None,
        base: directory_url.trim_end_matches("/dir").to_owned(),
        directory_url,
        http: common::client_trusting(&root),
        dir,
        clock: None,
        database_url: database_url.to_owned(),
    };
    (child, s)
}

/// kill -9 of the process between `processing` and `valid`; the restarted process finishes
/// the order, with exactly one certificate.
async fn kill_9_mid_issuance_then_restart_completes_the_order(e: Engine) {
    common::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let db = common::database_url(e, dir.path()).await;
    let common_cfg = "va-always-valid = true\nvalidation-poll-ms = 50\nissuance-lease-secs = 1\n";
    let (mut first, s) = spawn_binary(
        dir,
        &db,
        &format!("{common_cfg}finalize-async = true\nissuance-pause-ms = 600000\n"),
    );
    let (k, kid, url, r) = finalized(&s, "kill9.example.com").await;
    assert_eq!(r.body["status"], "processing", "{r:?}");
    first.kill().unwrap(); // SIGKILL: no clean-up of any kind
    first.wait().unwrap();
    let TestServer { dir, .. } = s;
    let (mut second, s) = spawn_binary(dir, &db, common_cfg);
    let kid = s.url(&format!("/acme/acct/{}", kid.rsplit('/').next().unwrap()));
    let url = s.url(&format!("/acme/order/{}", order_id(&url)));
    let o = common::poll_until(&s, &k, &kid, &url, |o| o["status"] != "processing").await;
    assert_eq!(o["status"], "valid", "{o}");
    let store = cobble_store::Store::connect(&db, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        store.certificates_of_order(order_id(&url)).await.unwrap(),
        1
    );
    assert_eq!(store.issuance_jobs_pending().await.unwrap(), 0);
    store.close().await;
    second.kill().unwrap();
    second.wait().unwrap();
}

/// A deactivation on B racing a finalize on A, ten times: each finalize either wins (the
/// order gets its one certificate) or is refused with `orderNotReady` (and the order ends
/// `invalid` with no certificate); never a 5xx, never a certificate after a refusal.
async fn deactivation_racing_finalize_on_two_instances(e: Engine) {
    let a = TestServer::start_with(
        e,
        |c| {
            c.va_always_valid = true;
            c.validation_poll_ms = 20;
        },
        false,
    )
    .await;
    let b = common::second_instance(&a).await;
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let kid = a.account(&k).await;
    let kid_b = b.url(&format!("/acme/acct/{}", kid.rsplit('/').next().unwrap()));
    let store = a.running.as_ref().unwrap().store.clone();
    let (mut won, mut refused) = (0, 0);
    for i in 0..10 {
        let name = format!("race{i}.example.com");
        let ids = vec![serde_json::json!({"type": "dns", "value": name})];
        let order = a
            .post_kid(
                &k,
                &kid,
                &a.url("/acme/new-order"),
                Some(&serde_json::json!({"identifiers": ids})),
            )
            .await;
        let url = order.location.clone().unwrap();
        let authz_url = order.body["authorizations"][0].as_str().unwrap().to_owned();
        let authz = a.post_kid(&k, &kid, &authz_url, None).await;
        let ch = authz.body["challenges"][0]["url"]
            .as_str()
            .unwrap()
            .to_owned();
        a.post_kid(&k, &kid, &ch, Some(&serde_json::json!({})))
            .await;
        common::poll_until(&a, &k, &kid, &url, |o| o["status"] == "ready").await;
        let csr = common::rcgen_csr(&[&name], &rcgen::KeyPair::generate().unwrap());
        let fin_url = order.body["finalize"].as_str().unwrap();
        let authz_b = b.url(&format!(
            "/acme/authz/{}",
            authz_url.rsplit('/').next().unwrap()
        ));
        let fin_payload = serde_json::json!({"csr": cobble_core::b64::encode(&csr)});
        let deact_payload = serde_json::json!({"status": "deactivated"});
        let (fin, deact) = tokio::join!(
            a.post_kid(&k, &kid, fin_url, Some(&fin_payload)),
            b.post_kid(&k, &kid_b, &authz_b, Some(&deact_payload)),
        );
        assert!(fin.status < 500 && deact.status < 500, "{fin:?} {deact:?}");
        let certs = store.certificates_of_order(order_id(&url)).await.unwrap();
        if fin.status == 200 {
            won += 1;
            let o = common::poll_until(&a, &k, &kid, &url, |o| o["status"] != "processing").await;
            assert_eq!(o["status"], "valid", "{o}");
            assert_eq!(
                store.certificates_of_order(order_id(&url)).await.unwrap(),
                1
            );
        } else {
            refused += 1;
            fin.assert_problem("orderNotReady", 403, "");
            assert_eq!(deact.status, 200, "{deact:?}");
            assert_eq!(certs, 0, "no certificate after a refused finalize");
            let o = a.post_kid(&k, &kid, &url, None).await;
            assert_eq!(o.body["status"], "invalid", "{o:?}");
        }
    }
    assert_eq!(won + refused, 10);
    b.stop().await;
    a.stop().await;
}
