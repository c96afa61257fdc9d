//! Real ACME client programs against Cobble: Debian's certbot registers, updates,
//! shows and deactivates an account. scripts/test.sh installs certbot where missing.

mod common;

use common::{Engine, TestServer, ValidationEnv};

both_engines!(
    certbot_account_lifecycle,
    certbot_issues_renews_and_revokes,
    certbot_manual_dns_with_challtestsrv_hooks,
    lego_issues_renews_and_revokes
);

fn client_available(program: &str) -> bool {
    if std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok()
    {
        return true;
    }
    assert!(
        std::env::var("COBBLE_TEST_NO_CLIENTS").is_ok(),
        "{program} is not installed: run scripts/test.sh (it installs certbot and lego) or apt-get install {program}; \
         set COBBLE_TEST_NO_CLIENTS=1 to skip the real-client tests"
    );
    false
}

async fn certbot(s: &TestServer, work: &std::path::Path, args: &[&str]) -> String {
    let mut cmd = tokio::process::Command::new("certbot");
    cmd.args(args)
        .args([
            "--server",
            &s.directory_url,
            "-n",
            "--no-random-sleep-on-renew",
            "--config-dir",
        ])
        .arg(work.join("conf"))
        .arg("--work-dir")
        .arg(work.join("work"))
        .arg("--logs-dir")
        .arg(work.join("logs"))
        .env("REQUESTS_CA_BUNDLE", s.trust_root());
    common::run_client(cmd, &format!("certbot {args:?}")).await
}

async fn certbot_account_lifecycle(e: Engine) {
    if !client_available("certbot") {
        return;
    }
    let s = TestServer::start(e).await;
    let work = tempfile::tempdir().unwrap();
    let out = certbot(
        &s,
        work.path(),
        &[
            "register",
            "-m",
            "a@example.com",
            "--agree-tos",
            "--no-eff-email",
        ],
    )
    .await;
    assert!(out.contains("Account registered"), "{out}");
    let out = certbot(&s, work.path(), &["update_account", "-m", "b@example.com"]).await;
    assert!(out.contains("updated to b@example.com"), "{out}");
    let out = certbot(&s, work.path(), &["show_account"]).await;
    assert!(out.contains("b@example.com"), "{out}");
    let url = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Account URL: "))
        .expect("account URL shown")
        .to_owned();
    let id = url.rsplit('/').next().unwrap();
    let store = &s.running.as_ref().unwrap().store;
    assert_eq!(
        store.account(id).await.unwrap().unwrap().contact,
        vec!["mailto:b@example.com"]
    );
    let out = certbot(&s, work.path(), &["unregister"]).await;
    assert!(out.contains("Account deactivated"), "{out}");
    assert_eq!(
        store.account(id).await.unwrap().unwrap().status.as_str(),
        "deactivated"
    );
    s.stop().await;
}

/// Checks a certificate file against /roots/0 and returns `openssl ocsp`'s view of it.
async fn verify_and_ocsp(
    s: &TestServer,
    leaf: &std::path::Path,
    chain: &std::path::Path,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("root.pem"),
        common::admin_get(s, "/roots/0").await,
    )
    .unwrap();
    std::fs::copy(leaf, dir.path().join("leaf.pem")).unwrap();
    std::fs::copy(chain, dir.path().join("issuer.pem")).unwrap();
    let (_, out) = common::openssl(
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "issuer.pem",
            "leaf.pem",
        ],
        dir.path(),
    );
    assert!(out.contains("leaf.pem: OK"), "openssl verify: {out}");
    common::ocsp_query(s, dir.path()).await
}

async fn certbot_issues_renews_and_revokes(e: Engine) {
    if !client_available("certbot") {
        return;
    }
    // certbot answers http-01 itself (standalone) on a port Cobble validates against; the
    // names resolve to 127.0.0.1 through challtestsrv's DNS.
    let port = common::ports::free_port();
    let env = ValidationEnv::start(e, |c| c.http01_port = port).await;
    let s = &env.server;
    let work = tempfile::tempdir().unwrap();
    let p = port.to_string();
    let out = certbot(
        s,
        work.path(),
        &[
            "certonly",
            "--standalone",
            "--http-01-port",
            &p,
            "--http-01-address",
            "127.0.0.1",
            "-d",
            "a.example.com",
            "-d",
            "b.example.com",
            "--agree-tos",
            "-m",
            "ops@example.com",
            "--cert-name",
            "ab",
        ],
    )
    .await;
    assert!(out.contains("Successfully received certificate"), "{out}");
    let live = work.path().join("conf/live/ab");
    let ocsp = verify_and_ocsp(s, &live.join("cert.pem"), &live.join("chain.pem")).await;
    assert!(ocsp.contains(": good"), "{ocsp}");
    let first = std::fs::read_to_string(live.join("cert.pem")).unwrap();

    let out = certbot(
        s,
        work.path(),
        &[
            "renew",
            "--force-renewal",
            "--http-01-port",
            &p,
            "--http-01-address",
            "127.0.0.1",
        ],
    )
    .await;
    assert!(
        out.contains("renewals succeeded") || out.contains("Congratulations"),
        "{out}"
    );
    let second = std::fs::read_to_string(live.join("cert.pem")).unwrap();
    assert_ne!(first, second, "renewal made a new certificate");

    let out = certbot(
        s,
        work.path(),
        &[
            "revoke",
            "--cert-path",
            live.join("cert.pem").to_str().unwrap(),
            "--reason",
            "superseded",
            "--no-delete-after-revoke",
        ],
    )
    .await;
    assert!(
        out.contains("Congratulations") || out.contains("revoked"),
        "{out}"
    );
    let ocsp = verify_and_ocsp(s, &live.join("cert.pem"), &live.join("chain.pem")).await;
    assert!(ocsp.contains(": revoked"), "{ocsp}");
    let crl = s
        .http
        .get(s.url("/crl"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("crl.der"), crl).unwrap();
    std::fs::copy(live.join("chain.pem"), dir.path().join("issuer.pem")).unwrap();
    std::fs::copy(live.join("cert.pem"), dir.path().join("leaf.pem")).unwrap();
    let crl_text = common::openssl(
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "crl.der",
            "-CAfile",
            "issuer.pem",
            "-noout",
            "-text",
        ],
        dir.path(),
    )
    .1;
    let serial = common::openssl(
        &["x509", "-in", "leaf.pem", "-noout", "-serial"],
        dir.path(),
    )
    .1;
    let serial = serial.trim().trim_start_matches("serial=");
    assert!(
        crl_text.contains("verify OK") && crl_text.contains(serial),
        "{crl_text}\n{serial}"
    );
    env.stop().await;
}

async fn certbot_manual_dns_with_challtestsrv_hooks(e: Engine) {
    if !client_available("certbot") {
        return;
    }
    let env = ValidationEnv::start(e, |_| {}).await;
    let s = &env.server;
    let work = tempfile::tempdir().unwrap();
    let mgmt = env.chall.management_addr().unwrap();
    // The hooks talk to challtestsrv's management API exactly as a pebble-challtestsrv script would.
    let auth = work.path().join("auth.sh");
    let cleanup = work.path().join("cleanup.sh");
    std::fs::write(&auth, format!("#!/bin/sh\ncurl -sf -d \"{{\\\"host\\\":\\\"_acme-challenge.$CERTBOT_DOMAIN.\\\",\\\"value\\\":\\\"$CERTBOT_VALIDATION\\\"}}\" http://{mgmt}/set-txt\n")).unwrap();
    std::fs::write(&cleanup, format!("#!/bin/sh\ncurl -sf -d \"{{\\\"host\\\":\\\"_acme-challenge.$CERTBOT_DOMAIN.\\\"}}\" http://{mgmt}/clear-txt\n")).unwrap();
    for f in [&auth, &cleanup] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = certbot(
        s,
        work.path(),
        &[
            "certonly",
            "--manual",
            "--preferred-challenges",
            "dns",
            "--manual-auth-hook",
            auth.to_str().unwrap(),
            "--manual-cleanup-hook",
            cleanup.to_str().unwrap(),
            "-d",
            "dns.example.com",
            "-d",
            "*.dns.example.com",
            "--agree-tos",
            "-m",
            "ops@example.com",
            "--cert-name",
            "dns",
        ],
    )
    .await;
    assert!(out.contains("Successfully received certificate"), "{out}");
    let live = work.path().join("conf/live/dns");
    verify_and_ocsp(s, &live.join("cert.pem"), &live.join("chain.pem")).await;
    env.stop().await;
}

async fn lego(s: &TestServer, work: &std::path::Path, args: &[&str]) -> String {
    // Under coreutils' timeout, so a hung lego still leaves its output for the failure message.
    let mut cmd = tokio::process::Command::new("timeout");
    cmd.args(["60", "lego", "--server", &s.directory_url, "--path"])
        .arg(work)
        .args(["--accept-tos", "--email", "lego@example.com"])
        .args(args)
        .env("LEGO_CA_CERTIFICATES", s.trust_root());
    common::run_client(cmd, &format!("lego {args:?}")).await
}

async fn lego_issues_renews_and_revokes(e: Engine) {
    if !client_available("lego") {
        return;
    }
    let port = common::ports::free_port();
    let env = ValidationEnv::start(e, |c| c.http01_port = port).await;
    let s = &env.server;
    let work = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{port}");
    let common_args = [
        "--domains",
        "lego.example.com",
        "--http",
        "--http.port",
        http.as_str(),
    ];
    lego(s, work.path(), &[&common_args[..], &["run"]].concat()).await;
    let certs = work.path().join("certificates");
    let leaf = certs.join("lego.example.com.crt");
    let issuer = certs.join("lego.example.com.issuer.crt");
    assert!(verify_and_ocsp(s, &leaf, &issuer).await.contains(": good"));
    let first = std::fs::read_to_string(&leaf).unwrap();
    lego(
        s,
        work.path(),
        &[
            &common_args[..],
            &["renew", "--days", "365", "--no-random-sleep"],
        ]
        .concat(),
    )
    .await;
    assert_ne!(
        std::fs::read_to_string(&leaf).unwrap(),
        first,
        "renewal made a new certificate"
    );
    lego(
        s,
        work.path(),
        &[&common_args[..], &["revoke", "--keep", "--reason", "4"]].concat(),
    )
    .await;
    assert!(
        verify_and_ocsp(s, &leaf, &issuer)
            .await
            .contains(": revoked")
    );
    env.stop().await;
}
