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

async fn two_instances_share_nonces_once(e: Engine) {
    let a = TestServer::start(e).await;
    let b = common::second_instance(&a).await;
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
    while out.len() < 8 && started.elapsed() < Duration::from_secs(30) {
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
            "admin token: {}",
            dir.path().join("admin-token").display()
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
    // Every flag reaches the configuration (flag value -> the TOML line it must produce).
    let flags: &[(&[&str], &str)] = &[
        (
            &["--listen", "127.0.0.1:1234"],
            "listen = \"127.0.0.1:1234\"",
        ),
        (&["--data-dir", "/tmp/x"], "data-dir = \"/tmp/x\""),
        (
            &["--database-url", "sqlite::memory:"],
            "database-url = \"sqlite::memory:\"",
        ),
        (
            &["--database-max-connections", "3"],
            "database-max-connections = 3",
        ),
        (
            &["--external-url", "https://acme.test"],
            "external-url = \"https://acme.test\"",
        ),
        (&["--tls-name", "acme.test"], "tls-names = [\"acme.test\"]"),
        (&["--nonce-reject-percent", "7"], "nonce-reject-percent = 7"),
        (
            &["--terms-of-service", "https://t.test"],
            "terms-of-service = \"https://t.test\"",
        ),
        (
            &["--website", "https://w.test"],
            "website = \"https://w.test\"",
        ),
        (
            &["--caa-identity", "ca.test"],
            "caa-identities = [\"ca.test\"]",
        ),
        (&["--max-body-bytes", "999"], "max-body-bytes = 999"),
        (&["--rsa-min-bits", "3072"], "rsa-min-bits = 3072"),
        (&["--shutdown-grace-secs", "3"], "shutdown-grace-secs = 3"),
        (&["--order-lifetime-secs", "11"], "order-lifetime-secs = 11"),
        (
            &["--pending-authz-lifetime-secs", "12"],
            "pending-authz-lifetime-secs = 12",
        ),
        (
            &["--valid-authz-lifetime-secs", "13"],
            "valid-authz-lifetime-secs = 13",
        ),
        (&["--authz-reuse-percent", "14"], "authz-reuse-percent = 14"),
        (
            &["--pre-authorization", "false"],
            "pre-authorization = false",
        ),
        (&["--allow-order-validity"], "allow-order-validity = true"),
        (&["--max-identifiers", "15"], "max-identifiers = 15"),
        (
            &["--block-domain", "b.test"],
            "blocked-domains = [\"b.test\"]",
        ),
        (
            &["--allow-domain", "a.test"],
            "allowed-domains = [\"a.test\"]",
        ),
        (&["--allow-reserved-names"], "allow-reserved-names = true"),
        (&["--http01-port", "16"], "http01-port = 16"),
        (&["--https01-port", "5003"], "https01-port = 5003"),
        (&["--tlsalpn01-port", "17"], "tlsalpn01-port = 17"),
        (
            &["--dns-server", "127.0.0.1:8053"],
            "dns-server = \"127.0.0.1:8053\"",
        ),
        (&["--validation-workers", "18"], "validation-workers = 18"),
        (
            &["--validation-deadline-secs", "30"],
            "validation-deadline-secs = 30",
        ),
        (&["--retention-days", "7"], "retention-days = 7"),
        (
            &["--validation-timeout-secs", "19"],
            "validation-timeout-secs = 19",
        ),
        (&["--va-always-valid"], "va-always-valid = true"),
        (&["--va-allow-private"], "va-allow-private = true"),
        (&["--va-deny-loopback"], "va-deny-loopback = true"),
        (&["--va-sleep-max-secs", "20"], "va-sleep-max-secs = 20"),
        (
            &["--admin-listen", "127.0.0.1:21"],
            "admin-listen = \"127.0.0.1:21\"",
        ),
        (&["--finalize-async"], "finalize-async = true"),
        (&["--ca-key-type", "rsa2048"], "key-type = \"rsa2048\""),
        (&["--chain-length", "3"], "chain-length = 3"),
        (&["--alternate-roots", "2"], "alternate-roots = 2"),
    ];
    for (args, line) in flags {
        let out = Command::new(env!("CARGO_BIN_EXE_cobble"))
            .args(["serve", "--print-config"])
            .args(*args)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        let cfg = String::from_utf8(out.stdout).unwrap();
        assert!(
            cfg.lines().any(|l| l.trim() == *line),
            "{args:?} should give {line:?}:\n{cfg}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Environment variables too, and Pebble's knobs.
    let out = Command::new(env!("CARGO_BIN_EXE_cobble"))
        .args(["serve", "--print-config"])
        .env("COBBLE_NONCE_LIFETIME_SECS", "77")
        .env("PEBBLE_VA_ALWAYS_VALID", "1")
        .env("PEBBLE_CHAIN_LENGTH", "3")
        .env("PEBBLE_AUTHZREUSE", "40")
        .env("PEBBLE_VA_SLEEPTIME", "9")
        .output()
        .unwrap();
    let cfg = String::from_utf8(out.stdout).unwrap();
    for line in [
        "nonce-lifetime-secs = 77",
        "va-always-valid = true",
        "chain-length = 3",
        "authz-reuse-percent = 40",
        "va-sleep-max-secs = 9",
    ] {
        assert!(cfg.lines().any(|l| l.trim() == line), "{line}:\n{cfg}");
    }
}
