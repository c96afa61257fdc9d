//! State lives in the database: two instances on one database share nonces exactly once,
//! and a restart loses nothing. Also the `cobble serve` binary itself.

mod common;

use cobble_core::jwk::Curve;
use cobble_core::sign::Signer;
use common::{Engine, TestServer, test_config};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

both_engines!(
    two_instances_share_nonces_once,
    restart_keeps_accounts_and_nonces
);

async fn second_instance(first: &TestServer) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    // Same trust root, so one client can talk to both.
    std::fs::create_dir_all(dir.path().join("tls")).unwrap();
    for f in ["ca.pem", "ca-key.pem"] {
        std::fs::copy(
            first.dir.path().join("tls").join(f),
            dir.path().join("tls").join(f),
        )
        .unwrap();
    }
    TestServer::start_cfg(
        test_config(dir.path(), first.database_url.clone()),
        dir,
        false,
    )
    .await
}

async fn two_instances_share_nonces_once(e: Engine) {
    let a = TestServer::start(e).await;
    let b = second_instance(&a).await;
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let payload = json!({"termsOfServiceAgreed": true});

    // A nonce minted by A is accepted by B once...
    let n = a.nonce().await;
    let url_b = b.url("/acme/new-acct");
    let r = b
        .post(&url_b, &k.sign_with_jwk(&url_b, Some(&n), Some(&payload)))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let kid_b = r.location.unwrap();
    // ...and refused the second time, by B and by A.
    b.post(&url_b, &k.sign_with_jwk(&url_b, Some(&n), Some(&payload)))
        .await
        .assert_problem("badNonce", 400, "already been used");
    let url_a = a.url("/acme/new-acct");
    a.post(&url_a, &k.sign_with_jwk(&url_a, Some(&n), Some(&payload)))
        .await
        .assert_problem("badNonce", 400, "already been used");

    // The account made through B is visible through A (same key -> same account).
    let r = a
        .post(
            &url_a,
            &k.sign_with_jwk(&url_a, Some(&a.nonce().await), Some(&payload)),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.location.unwrap().rsplit('/').next(),
        kid_b.rsplit('/').next()
    );

    // Racing one nonce at both instances at once: exactly one wins.
    let n = b.nonce().await;
    let kid_a = a.url(&format!("/acme/acct/{}", kid_b.rsplit('/').next().unwrap()));
    let body_a = k.sign_with_kid(&kid_a, &kid_a, &n, None);
    let body_b = k.sign_with_kid(&kid_b, &kid_b, &n, None);
    let (ra, rb) = tokio::join!(a.post(&kid_a, &body_a), b.post(&kid_b, &body_b));
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "{ra:?} {rb:?}");
    b.stop().await;
    a.stop().await;
}

async fn restart_keeps_accounts_and_nonces(e: Engine) {
    let a = TestServer::start(e).await;
    let k = Signer::generate_ec(Curve::P384).unwrap();
    let kid = a.account(&k).await;
    let unused = a.nonce().await;
    let used = a.nonce().await;
    assert_eq!(a.post_kid_with(&k, &kid, &used).await.status, 200);
    let db = a.database_url.clone();
    let dir = a.dir.path().to_owned();
    let root_before = std::fs::read(a.trust_root()).unwrap();
    let mut a = a;
    let keep_dir = std::mem::replace(&mut a.dir, tempfile::tempdir().unwrap());
    a.stop().await;

    // Same data dir and database: same trust root, the account, the nonce key and the used nonces survive.
    let b = TestServer::start_cfg(test_config(&dir, db), keep_dir, false).await;
    assert_eq!(std::fs::read(b.trust_root()).unwrap(), root_before);
    let kid_b = b.url(&format!("/acme/acct/{}", kid.rsplit('/').next().unwrap()));
    // A nonce issued before the restart still works once; a used one stays used.
    let body = k.sign_with_kid(&kid_b, &kid_b, &unused, None);
    assert_eq!(b.post(&kid_b, &body).await.status, 200);
    let body = k.sign_with_kid(&kid_b, &kid_b, &used, None);
    b.post(&kid_b, &body)
        .await
        .assert_problem("badNonce", 400, "already been used");
    b.stop().await;
}

impl TestServer {
    async fn post_kid_with(&self, k: &Signer, kid: &str, nonce: &str) -> common::Reply {
        self.post(kid, &k.sign_with_kid(kid, kid, nonce, None))
            .await
    }
}

/// `cobble serve` with nothing but a data dir and a port: SQLite in the data dir, the
/// ready lines on stdout, HTTPS with the written trust root, and a clean exit on SIGTERM.
#[tokio::test]
async fn binary_starts_with_no_setup_and_stops_on_sigterm() {
    common::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cobble"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("COBBLE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let mut out = Vec::new();
    while out.len() < 7 && started.elapsed() < Duration::from_secs(30) {
        match lines.next() {
            Some(Ok(l)) => out.push(l),
            _ => break,
        }
    }
    let text = out.join("\n");
    assert!(text.contains("is ready"), "{text}");
    let dir_url = out
        .iter()
        .find_map(|l| l.trim().strip_prefix("directory:"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        text.contains(&format!(
            "trust root: {}",
            dir.path().join("tls/ca.pem").display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "database:   sqlite://{}",
            dir.path().join("cobble.db").display()
        )),
        "{text}"
    );
    assert!(dir.path().join("cobble.db").exists());

    let http = common::client_trusting(&std::fs::read(dir.path().join("tls/ca.pem")).unwrap());
    let r = http.get(&dir_url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let d: serde_json::Value = r.json().await.unwrap();
    assert!(
        d["newAccount"]
            .as_str()
            .unwrap()
            .ends_with("/acme/new-acct")
    );

    // SIGTERM: graceful exit with status 0.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "cobble did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

/// `--help` documents every option.
#[test]
fn serve_help_lists_every_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_cobble"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--config",
        "--print-config",
        "--listen",
        "--data-dir",
        "--database-url",
        "--external-url",
        "--tls-cert",
        "--tls-key",
        "--tls-name",
        "--nonce-lifetime-secs",
        "--nonce-reject-percent",
        "--terms-of-service",
        "--website",
        "--caa-identity",
        "--max-body-bytes",
        "--rsa-min-bits",
        "--shutdown-grace-secs",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_cobble"))
        .args(["serve", "--print-config", "--listen", "127.0.0.1:1234"])
        .env("COBBLE_NONCE_LIFETIME_SECS", "77")
        .output()
        .unwrap();
    let cfg = String::from_utf8(out.stdout).unwrap();
    assert!(cfg.contains("listen = \"127.0.0.1:1234\""), "{cfg}");
    assert!(cfg.contains("nonce-lifetime-secs = 77"), "{cfg}");
}
