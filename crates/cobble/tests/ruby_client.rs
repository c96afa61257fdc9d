//! A real ACME client library in another language against Cobble: Ruby's acme-client gem
//! (Debian's ruby-acme-client) runs testdata/ruby/acme_flow.rb, which registers, orders two
//! names (one by http-01, one by dns-01, both answered by challtestsrv), finalizes, downloads,
//! revokes and deactivates. scripts/test.sh installs the gem where missing.

mod common;

use common::{Engine, ValidationEnv};
use serde_json::Value;

both_engines!(ruby_acme_client_issues_revokes_and_deactivates);

/// Whether Ruby can load the gem; when not, the test fails unless COBBLE_TEST_NO_CLIENTS is set.
fn gem_available() -> bool {
    let loads = std::process::Command::new("ruby")
        .args(["-e", "require 'acme-client'"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        loads || std::env::var("COBBLE_TEST_NO_CLIENTS").is_ok(),
        "Ruby's acme-client gem is not installed: run scripts/test.sh (it installs it) or \
         apt-get install ruby-acme-client; set COBBLE_TEST_NO_CLIENTS=1 to skip the real-client tests"
    );
    loads
}

/// The value of `key=` on the script's `STEP <step> ok ...` line.
fn step_field<'a>(out: &'a str, step: &str, key: &str) -> &'a str {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("STEP {step} ok")))
        .unwrap_or_else(|| panic!("no {step} step in:\n{out}"));
    line.split(' ')
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

async fn ruby_acme_client_issues_revokes_and_deactivates(e: Engine) {
    if !gem_available() {
        return;
    }
    let env = ValidationEnv::start(e, |_| {}).await;
    let s = &env.server;
    let running = s.running.as_ref().unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/ruby/acme_flow.rb"
    );
    let mut cmd = tokio::process::Command::new("ruby");
    cmd.arg(script)
        .args(["--directory", &s.directory_url, "--ca-file"])
        .arg(s.trust_root())
        .arg("--issuing-root")
        .arg(&running.issuing_root)
        .arg("--challtestsrv")
        .arg(format!("http://{}", env.chall.management_addr().unwrap()))
        .args(["--domain", "ruby-http.example.com=http-01"])
        .args(["--domain", "ruby-dns.example.com=dns-01"]);
    let out = common::run_client(cmd, "ruby acme_flow.rb").await;

    let steps: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("STEP "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "directory",
            "new-account",
            "fetch-account",
            "new-order",
            "challenge-published",
            "challenge-requested",
            "authorization-valid",
            "challenge-published",
            "challenge-requested",
            "authorization-valid",
            "order-ready",
            "finalize",
            "order-valid",
            "certificate",
            "revoke",
            "deactivate-account",
            "deactivated-account-refused",
        ],
        "{out}"
    );
    assert!(out.trim_end().ends_with("DONE"), "{out}");
    for t in ["type=http-01", "type=dns-01"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("STEP authorization-valid ok") && l.contains(t)),
            "{t}: {out}"
        );
    }
    let mut names: Vec<&str> = step_field(&out, "certificate", "names")
        .split(',')
        .collect();
    names.sort();
    assert_eq!(names, ["ruby-dns.example.com", "ruby-http.example.com"]);
    assert_eq!(step_field(&out, "certificate", "verified"), "true");
    assert_eq!(
        step_field(&out, "deactivated-account-refused", "error"),
        "Acme::Client::Error::Unauthorized"
    );

    // What the gem did, seen from the server's side.
    let serial = step_field(&out, "certificate", "serial");
    let status: Value = serde_json::from_str(
        &common::admin_get(s, &format!("/cert-status-by-serial/{serial}")).await,
    )
    .unwrap();
    assert_eq!(status["Status"], "Revoked", "{status}");
    assert_eq!(status["Reason"], 4, "{status}");
    let kid = step_field(&out, "new-account", "kid");
    assert_eq!(step_field(&out, "fetch-account", "kid"), kid);
    let account = running
        .store
        .account(kid.rsplit('/').next().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.status.as_str(), "deactivated");
    assert_eq!(account.contact, vec!["mailto:ruby@example.com"]);
    env.stop().await;
}
