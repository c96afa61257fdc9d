//! Real ACME client programs against Cobble: Debian's certbot registers, updates,
//! shows and deactivates an account. scripts/test.sh installs certbot where missing.

mod common;

use common::{Engine, TestServer};

both_engines!(certbot_account_lifecycle);

fn certbot_available() -> bool {
    if std::process::Command::new("certbot")
        .arg("--version")
        .output()
        .is_ok()
    {
        return true;
    }
    assert!(
        std::env::var("COBBLE_TEST_NO_CLIENTS").is_ok(),
        "certbot is not installed: run scripts/test.sh (it installs it) or apt-get install certbot; \
         set COBBLE_TEST_NO_CLIENTS=1 to skip the real-client tests"
    );
    false
}

async fn certbot(s: &TestServer, work: &std::path::Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new("certbot")
        .args(args)
        .args(["--server", &s.directory_url, "-n", "--config-dir"])
        .arg(work.join("conf"))
        .arg("--work-dir")
        .arg(work.join("work"))
        .arg("--logs-dir")
        .arg(work.join("logs"))
        .env("REQUESTS_CA_BUNDLE", s.trust_root())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), out)
        .await
        .expect("certbot finishes within 2 minutes")
        .expect("certbot runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "certbot {args:?} failed:\n{text}");
    text
}

async fn certbot_account_lifecycle(e: Engine) {
    if !certbot_available() {
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
