//! The conformance suite (`cobble-conformance`) run against Cobble on SQLite and PostgreSQL,
//! and against Debian's Pebble, asserting the outcome of every check: everything that
//! applies passes on Cobble, and Pebble's known departures from the RFCs fail on Pebble
//! (which proves the failing side of those checks works).

mod common;

use cobble_conformance::{Level, Options, Outcome, Report};
use common::{Engine, ValidationEnv};
use std::collections::BTreeMap;
use std::time::Duration;

/// What a check must end as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Pass,
    Fail,
    Skip,
    NotApplicable,
}

fn got(o: &Outcome) -> Want {
    match o {
        Outcome::Pass => Want::Pass,
        Outcome::Fail { .. } => Want::Fail,
        Outcome::Skip { .. } => Want::Skip,
        Outcome::NotApplicable { .. } => Want::NotApplicable,
    }
}

/// Asserts every check's outcome: `Pass` unless `exceptions` says otherwise.
fn assert_outcomes(server: &str, report: &Report, exceptions: &[(&str, Want)]) {
    let catalogue = cobble_conformance::catalogue::entries();
    assert_eq!(
        report.results.len(),
        catalogue.len(),
        "every catalogue check ran"
    );
    let exc: BTreeMap<&str, Want> = exceptions.iter().copied().collect();
    for id in exc.keys() {
        assert!(
            catalogue.iter().any(|e| e.id == *id),
            "unknown check id {id} in the expectations"
        );
    }
    let mut wrong = Vec::new();
    for r in &report.results {
        let want = exc.get(r.id.as_str()).copied().unwrap_or(Want::Pass);
        if got(&r.outcome) != want {
            wrong.push(format!(
                "{}: expected {want:?}, got:\n{}",
                r.id,
                cobble_conformance::report::line(r)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{server}: {} checks ended unexpectedly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

async fn run(opts: Options) -> Report {
    tokio::time::timeout(
        Duration::from_secs(900),
        cobble_conformance::run(opts, |_, _, _| {}),
    )
    .await
    .expect("the suite finishes within 15 minutes")
    .expect("the suite reaches the server")
}

/// With `COBBLE_CONFORMANCE_REPORTS=DIR` (set by `scripts/conformance-table`), writes the
/// report as `DIR/NAME.json` for the results table.
fn save(name: &str, report: &Report) {
    if let Some(dir) = std::env::var_os("COBBLE_CONFORMANCE_REPORTS") {
        let path = std::path::Path::new(&dir).join(format!("{name}.json"));
        std::fs::write(&path, cobble_conformance::report::json(report))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// Nonce lifetime of the Cobble runs, given to the suite as `--nonce-wait` so that
/// `nonce.expired` runs (it waits this long and one second more).
const NONCE_LIFETIME_SECS: u64 = 2;

/// Checks that do not pass on Cobble (with one alternate root), on both engines: the ones
/// that need what Cobble does not offer or what the run does not give.
const COBBLE: &[(&str, Want)] = &[
    // Cobble has no External Account Binding (meta.externalAccountRequired is false).
    ("eab.required", Want::NotApplicable),
    ("eab.success", Want::Skip),
    ("eab.bad-mac", Want::Skip),
    ("eab.other-key", Want::Skip),
    ("eab.url-mismatch", Want::Skip),
];

async fn cobble(e: Engine) {
    // One alternate root, so that the alternate-chain checks apply.
    // A short nonce lifetime, so that nonce.expired runs.
    let env = ValidationEnv::start(e, |c| {
        c.ca.alternate_roots = 1;
        c.nonce_lifetime_secs = NONCE_LIFETIME_SECS;
    })
    .await;
    let mgmt = env.chall.management_addr().expect("management listener");
    let admin = env.server.running.as_ref().unwrap().admin_url.clone();
    let opts = Options {
        ca_bundle: Some(env.server.trust_root()),
        challtestsrv: Some(format!("http://{mgmt}")),
        roots_url: admin.map(|a| format!("{a}/roots/0")),
        nonce_wait_secs: Some(NONCE_LIFETIME_SECS),
        ..Options::new(env.server.directory_url.clone())
    };
    let report = run(opts).await;
    env.stop().await;
    save(
        &format!("cobble-{}", format!("{e:?}").to_lowercase()),
        &report,
    );
    assert!(
        !report.must_failed(),
        "a MUST check failed on Cobble:\n{}",
        report
            .results
            .iter()
            .filter(|r| r.level == Level::Must && matches!(r.outcome, Outcome::Fail { .. }))
            .map(cobble_conformance::report::line)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_outcomes("Cobble", &report, COBBLE);
}

both_engines!(cobble);

/// `--http01-port`: the suite's own http-01 responder, with no challenge test server, on
/// the http-01 checks (the suite's names resolve to 127.0.0.1 through Cobble's mock DNS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cobble_own_http01_responder() {
    let port = common::ports::free_port();
    let env = ValidationEnv::start(Engine::Sqlite, |c| c.http01_port = port).await;
    let opts = Options {
        ca_bundle: Some(env.server.trust_root()),
        http01_port: Some(port),
        only: vec![
            "authz.http01-valid".into(),
            "authz.http01-wrong".into(),
            "authz.dns01-valid".into(),
            "fin.success".into(),
            "order.ip-http01".into(),
        ],
        ..Options::new(env.server.directory_url.clone())
    };
    let report = run(opts).await;
    env.stop().await;
    let want = [
        ("authz.http01-valid", Want::Pass),
        ("authz.http01-wrong", Want::Pass),
        // dns-01 still needs the challenge test server.
        ("authz.dns01-valid", Want::Skip),
        ("fin.success", Want::Pass),
        ("order.ip-http01", Want::Pass),
    ];
    assert_subset("Cobble with --http01-port", &report, &want);
}

/// Asserts the outcome of each check of a partial run.
fn assert_subset(server: &str, report: &Report, want: &[(&str, Want)]) {
    assert_eq!(
        report.results.len(),
        want.len(),
        "{server}: the selected checks ran"
    );
    let wrong: Vec<String> = want
        .iter()
        .filter_map(|(id, w)| {
            let r = report.get(id).unwrap_or_else(|| panic!("{id} ran"));
            (got(&r.outcome) != *w).then(|| {
                format!(
                    "{id}: expected {w:?}, got:\n{}",
                    cobble_conformance::report::line(r)
                )
            })
        })
        .collect();
    assert!(wrong.is_empty(), "{server}:\n{}", wrong.join("\n"));
}

/// Pebble's departures from the RFCs and what it lacks, as Debian's pebble 2.4 shows them.
const PEBBLE: &[(&str, Want)] = &[
    // §7.2: newNonce answers say `Cache-Control: public, max-age=0, no-cache`, not no-store.
    ("nonce.cache-control", Want::Fail),
    // An unknown alg is refused as malformed, so there is no algorithms list to judge.
    ("jws.bad-alg-lists-algorithms", Want::NotApplicable),
    // §6.4.1: a url naming another resource gets 400 malformed, not unauthorized.
    ("jws.url-mismatch", Want::Fail),
    // §7.3: a missing agreement is `agreementRequired`, a draft type RFC 8555 dropped.
    ("acct.terms", Want::Fail),
    ("prob.registered-type", Want::Fail),
    // §7.3.3: an update carrying only termsOfServiceAgreed is refused (400).
    ("acct.update-terms-only", Want::Fail),
    // §7.3.2: an update carrying the read-only orders field is refused (400).
    ("acct.update-ignores-orders", Want::Fail),
    // §7.3.2: a request to account B's URL signed by account A is answered 200.
    ("acct.other-account", Want::Fail),
    // §7.3.5: an inner keyChange JWS carrying a nonce is accepted.
    ("kc.inner-nonce", Want::Fail),
    // §7.3.5: a key change to another account's key gets 500, not 409 with Location.
    ("kc.key-in-use-409", Want::Fail),
    ("robust.no-5xx", Want::Fail),
    // A refused order carries no subproblems.
    ("order.subproblems", Want::NotApplicable),
    // PEBBLE_VA_NOSLEEP: validation ends before any answer shows it under way.
    ("authz.retry-after", Want::NotApplicable),
    // §7.1.6: an order whose authorization was deactivated stays pending.
    ("authz.deactivated-order-invalid", Want::Fail),
    // §7.4: a CSR whose names differ from the order's is `unauthorized`, not badCSR.
    ("fin.csr-names-badcsr", Want::Fail),
    // A CSR whose signature does not verify is issued.
    ("fin.csr-bad-signature", Want::Fail),
    // No alternate chains by default (PEBBLE_ALTERNATE_ROOTS=0) and no rel=up.
    ("cert.links", Want::NotApplicable),
    ("cert.alternate-same-leaf", Want::NotApplicable),
    // §7.6: an account holding authorizations for every name cannot revoke (403).
    ("rev.by-authz-holder", Want::Fail),
    // No renewalInfo in pebble 2.4.
    ("ari.renewal-info", Want::Skip),
    ("ari.unknown", Want::Skip),
    ("ari.replaces-reflected", Want::Skip),
    ("ari.already-replaced", Want::Skip),
    ("ari.replaces-other-account", Want::Skip),
    ("ari.replaces-unknown", Want::Skip),
    // Run without --nonce-wait: the suite does not know how long Pebble's nonces live.
    ("nonce.expired", Want::Skip),
    // EAB is off in this run (see pebble_eab for the EAB checks).
    ("eab.required", Want::NotApplicable),
    ("eab.success", Want::Skip),
    ("eab.bad-mac", Want::Skip),
    ("eab.other-key", Want::Skip),
    ("eab.url-mismatch", Want::Skip),
    // No newAuthz and no meta.profiles in pebble 2.4.
    ("preauth.create", Want::Skip),
    ("preauth.wildcard-refused", Want::Skip),
    ("preauth.used-by-order", Want::Skip),
    ("profile.meta", Want::Skip),
    ("profile.listed-accepted", Want::Skip),
    ("profile.unknown-refused", Want::Skip),
    // PEBBLE_VA_NOSLEEP: no challenge answer shows processing.
    ("authz.challenge-retry-after", Want::NotApplicable),
    // RFC 8659: Pebble does not check CAA; it issues under `issue "other-ca"`, `issue ";"`,
    // a parent's record and an unknown critical property.
    ("caa.other-ca", Want::Fail),
    ("caa.no-ca", Want::Fail),
    ("caa.tree-climbing", Want::Fail),
    ("caa.critical-unknown", Want::Fail),
    ("caa.issuewild-forbids", Want::Fail),
    // No meta.caaIdentities, so no record can name Pebble.
    ("caa.this-ca", Want::Skip),
    ("caa.accounturi-mismatch", Want::Skip),
    ("caa.accounturi-match", Want::Skip),
    ("caa.validationmethods-mismatch", Want::Skip),
    ("caa.validationmethods-match", Want::Skip),
    ("caa.issuewild-permits", Want::Skip),
    // RFC 8738 §6: tls-alpn-01 for 127.0.0.1 ends invalid: Debian's pebble-challtestsrv
    // answers only the SNI it was given, with a DNS SAN, never the reverse name with an IP SAN.
    ("order.ip-tlsalpn01", Want::Fail),
    // Lenient CSR policy: RSA-1024 keys and SHA-1 signatures are issued (SHOULD checks).
    ("fin.csr-rsa-1024", Want::Fail),
    ("fin.csr-sha1", Want::Fail),
    // §7.4: a CSR whose commonName is a name not in the order is issued.
    ("fin.csr-cn-other", Want::Fail),
    // §7.4: a name given only as commonName is refused (403 unauthorized, "different number
    // of DNSnames"), though the RFC lets it appear in the CN, the SAN or both.
    ("fin.csr-cn-only", Want::Fail),
];

/// The path of `program` on PATH, or None.
fn on_path(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|f| f.is_file())
    })
}

/// A CA and a `localhost`/127.0.0.1 certificate it signed, for Pebble's HTTPS listener:
/// (ca.pem, cert.pem, key.pem) written into `dir`.
fn pebble_tls(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "conformance test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

fn spawn(program: &std::path::Path, args: &[&str], log: &std::path::Path) -> tokio::process::Child {
    let out = std::fs::File::create(log).unwrap();
    tokio::process::Command::new(program)
        .args(args)
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", program.display()))
}

/// A running Pebble and pebble-challtestsrv, killed on drop.
struct Pebble {
    _dir: tempfile::TempDir,
    _children: [tokio::process::Child; 2],
    ca: std::path::PathBuf,
    directory: String,
    challtestsrv: String,
    roots_url: String,
}

/// Starts Debian's Pebble (with `extra` merged into its config) and its challtestsrv, or None
/// when they are not installed and COBBLE_TEST_NO_CLIENTS allows that.
async fn start_pebble(extra: serde_json::Value) -> Option<Pebble> {
    common::install_crypto();
    let (Some(pebble), Some(chall)) = (on_path("pebble"), on_path("pebble-challtestsrv")) else {
        assert!(
            std::env::var("COBBLE_TEST_NO_CLIENTS").is_ok(),
            "pebble or pebble-challtestsrv is not installed: apt-get install pebble, or set \
             COBBLE_TEST_NO_CLIENTS=1 to skip the tests that need other programs"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pebble_tls(dir.path());
    let (mgmt, dns, http, tls, acme, acme_mgmt) = (
        common::ports::free_port(),
        common::ports::free_port(),
        common::ports::free_port(),
        common::ports::free_port(),
        common::ports::free_port(),
        common::ports::free_port(),
    );
    let mut config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{acme}"),
        "managementListenAddress": format!("127.0.0.1:{acme_mgmt}"),
        "certificate": cert, "privateKey": key,
        "httpPort": http, "tlsPort": tls,
        "ocspResponderURL": "", "externalAccountBindingRequired": false,
    }});
    if let serde_json::Value::Object(m) = extra {
        for (k, v) in m {
            config["pebble"][k] = v;
        }
    }
    let config_path = dir.path().join("pebble.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let chall_child = spawn(
        &chall,
        &[
            "-management",
            &format!("127.0.0.1:{mgmt}"),
            "-dns01",
            &format!("127.0.0.1:{dns}"),
            "-http01",
            &format!("127.0.0.1:{http}"),
            "-tlsalpn01",
            &format!("127.0.0.1:{tls}"),
            "-https01",
            "",
            // Pebble prefers IPv6; answer AAAA queries with nothing so it dials 127.0.0.1.
            "-defaultIPv6",
            "",
        ],
        &dir.path().join("challtestsrv.log"),
    );
    let pebble_child = spawn(
        &pebble,
        &[
            "-config",
            config_path.to_str().unwrap(),
            "-dnsserver",
            &format!("127.0.0.1:{dns}"),
        ],
        &dir.path().join("pebble.log"),
    );
    let directory = format!("https://127.0.0.1:{acme}/dir");
    let http_client = common::client_trusting(&std::fs::read(&ca).unwrap());
    let mut up = false;
    for _ in 0..100 {
        let chall_up = http_client
            .post(format!("http://127.0.0.1:{mgmt}/clear-txt"))
            .body(r#"{"host":"up.example.com."}"#)
            .send()
            .await
            .is_ok();
        if chall_up && http_client.get(&directory).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        up,
        "pebble did not come up within 10 s:\n{}",
        std::fs::read_to_string(dir.path().join("pebble.log")).unwrap_or_default()
    );
    Some(Pebble {
        _dir: dir,
        _children: [pebble_child, chall_child],
        ca,
        directory,
        challtestsrv: format!("http://127.0.0.1:{mgmt}"),
        roots_url: format!("https://127.0.0.1:{acme_mgmt}/roots/0"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble() {
    let Some(p) = start_pebble(serde_json::json!({})).await else {
        return;
    };
    let opts = Options {
        ca_bundle: Some(p.ca.clone()),
        challtestsrv: Some(p.challtestsrv.clone()),
        roots_url: Some(p.roots_url.clone()),
        ..Options::new(p.directory.clone())
    };
    let report = run(opts).await;
    drop(p);
    save("pebble", &report);
    assert_outcomes("Pebble", &report, PEBBLE);
}

/// Pebble with External Account Binding required, judged by the EAB checks with credentials
/// from `--eab-cmd` (a command printing a `KID HMAC-KEY` pair), and without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_eab() {
    let hmac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let Some(p) = start_pebble(serde_json::json!({
        "externalAccountBindingRequired": true,
        "externalAccountMACKeys": {"kid-conformance": hmac},
    }))
    .await
    else {
        return;
    };
    let only: Vec<String> = ["eab", "acct.create", "order.create"]
        .map(String::from)
        .to_vec();
    let with = Options {
        ca_bundle: Some(p.ca.clone()),
        challtestsrv: Some(p.challtestsrv.clone()),
        eab_cmd: Some(format!("echo kid-conformance {hmac}")),
        only: only.clone(),
        ..Options::new(p.directory.clone())
    };
    let without = Options {
        eab_cmd: None,
        ..with.clone()
    };
    let with = run(with).await;
    let without = run(without).await;
    drop(p);
    assert_subset(
        "Pebble with EAB, --eab-cmd",
        &with,
        &[
            ("acct.create", Want::Pass),
            ("eab.required", Want::Pass),
            ("eab.success", Want::Pass),
            ("eab.bad-mac", Want::Pass),
            ("eab.other-key", Want::Pass),
            ("eab.url-mismatch", Want::Pass),
            ("order.create", Want::Pass),
        ],
    );
    assert_subset(
        "Pebble with EAB, no credentials",
        &without,
        &[
            ("acct.create", Want::Skip),
            ("eab.required", Want::Pass),
            ("eab.success", Want::Skip),
            ("eab.bad-mac", Want::Skip),
            ("eab.other-key", Want::Skip),
            ("eab.url-mismatch", Want::Skip),
            ("order.create", Want::Skip),
        ],
    );
}

/// `nonce.expired` judges the lifetime it is given: against a Cobble whose nonces live an
/// hour, a nonce left unused for `--nonce-wait 1` (plus a second) is still accepted, which
/// the check reports as a failure (the passing side runs in `cobble`, with a 2 s lifetime).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonce_expired_fails_when_the_nonce_outlives_the_wait() {
    let env = ValidationEnv::start(Engine::Sqlite, |c| c.nonce_lifetime_secs = 3600).await;
    let opts = Options {
        ca_bundle: Some(env.server.trust_root()),
        nonce_wait_secs: Some(1),
        only: vec!["nonce.expired".into()],
        ..Options::new(env.server.directory_url.clone())
    };
    let report = run(opts).await;
    env.stop().await;
    assert_subset(
        "Cobble with 1 h nonces, --nonce-wait 1",
        &report,
        &[("nonce.expired", Want::Fail)],
    );
    let Outcome::Fail { reason, .. } = &report.results[0].outcome else {
        unreachable!()
    };
    assert!(
        reason.contains("--nonce-wait 1") && reason.contains("got HTTP 200"),
        "{reason}"
    );
}

/// A server that enforces its rate limits has not departed from the RFC: against Cobble
/// with its limits on and one certificate per registered domain (every name the suite orders
/// is under example.com), the first issuance passes and the checks after it are skipped
/// with the limit's detail and Retry-After, never failed. A check that judges rate limits
/// (catalogue `rate_limits = true`) sees the 429 answer instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_checks_are_skipped_with_the_limit() {
    let env = ValidationEnv::start(Engine::Sqlite, |c| {
        c.no_rate_limits = false;
        c.rate_limits.certificates_per_domain = cobble_core::ratelimit::Limit {
            count: 1,
            window_secs: 7 * 86_400,
            enabled: true,
        };
    })
    .await;
    let mgmt = env.chall.management_addr().expect("management listener");
    let opts = Options {
        ca_bundle: Some(env.server.trust_root()),
        challtestsrv: Some(format!("http://{mgmt}")),
        ..Options::new(env.server.directory_url.clone())
    };
    let report = run(Options {
        only: vec![
            "order.create".into(),
            "fin.success".into(),
            "cert.media-type".into(),
            "rev.by-account".into(),
        ],
        ..opts.clone()
    })
    .await;
    let want = [
        ("order.create", Want::Pass),
        // The one certificate the limit allows.
        ("fin.success", Want::Pass),
        // Their newOrder is refused: example.com has had its certificate this week.
        ("cert.media-type", Want::Skip),
        ("rev.by-account", Want::Skip),
    ];
    assert_subset("Cobble with 1 certificate per domain", &report, &want);
    for id in ["cert.media-type", "rev.by-account"] {
        let Outcome::Skip { reason } = &report.get(id).unwrap().outcome else {
            unreachable!()
        };
        for part in [
            "429 rateLimited",
            "/new-order",
            "Retry-After: ",
            "example.com",
        ] {
            assert!(reason.contains(part), "{id}: {part:?} in {reason:?}");
        }
    }

    // The same refusal as a rate-limit check sees it: the answer, not a skip.
    let ctx = cobble_conformance::ctx::Ctx::connect(opts).await.unwrap();
    let a = ctx.account().await.expect("an account");
    let order = serde_json::json!({"identifiers": [{"type": "dns", "value": ctx.name()}]});
    let url = ctx.url("newOrder").unwrap();
    match ctx.signed(&a, &url, Some(&order)).await {
        Err(cobble_conformance::client::Halt::Skip(reason)) => {
            assert!(reason.contains("429 rateLimited"), "{reason}")
        }
        other => panic!("a rate-limited newOrder in an ordinary check: {other:?}"),
    }
    ctx.judges_rate_limits
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let r = ctx
        .signed(&a, &url, Some(&order))
        .await
        .expect("a rate-limit check gets the answer");
    r.expect_problem(&["rateLimited"], &[429], "newOrder over the limit")
        .expect("429 rateLimited");
    env.stop().await;
}

/// Runs the `cobble` binary with `args`; (exit code, stdout, stderr).
async fn cobble_cli(args: &[&str]) -> (i32, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_cobble"))
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("cobble conformance finishes within 5 minutes")
    .expect("cobble runs");
    (
        out.status.code().expect("an exit code, not a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The lines of `text` with their runs of spaces collapsed.
fn words(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Checks that `xml` is well-formed in structure (one root element, every element closed in
/// order, quoted attributes, only the predefined and numeric entities) and returns the names
/// of its elements in document order.
fn xml_elements(xml: &str) -> Result<Vec<String>, String> {
    let mut rest = xml
        .strip_prefix("<?xml ")
        .and_then(|r| r.split_once("?>"))
        .map(|(_, r)| r)
        .ok_or("no XML declaration")?;
    let (mut stack, mut names, mut roots) = (Vec::<String>::new(), Vec::new(), 0);
    let text_ok = |t: &str| -> Result<(), String> {
        for (i, _) in t.match_indices('&') {
            let ent = &t[i..t[i..].find(';').map_or(t.len(), |e| i + e + 1)];
            let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&ent)
                || (ent.starts_with("&#") && ent.len() > 3);
            if !ok {
                return Err(format!("bad entity at {:?}", &t[i..(i + 10).min(t.len())]));
            }
        }
        Ok(())
    };
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        if stack.is_empty() && !text.trim().is_empty() {
            return Err(format!("text outside the root: {text:?}"));
        }
        text_ok(text)?;
        let close = rest[open..].find('>').ok_or("unclosed tag")? + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if tag.contains('<') || tag.matches('"').count() % 2 != 0 {
            return Err(format!("malformed tag <{tag}>"));
        }
        text_ok(tag)?;
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name.trim() => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/')
            .collect();
        if name.is_empty() {
            return Err(format!("tag without a name: <{tag}>"));
        }
        if stack.is_empty() {
            roots += 1;
        }
        names.push(name.clone());
        if !tag.ends_with('/') {
            stack.push(name);
        }
    }
    if !rest.trim().is_empty() || !stack.is_empty() || roots != 1 {
        return Err(format!(
            "{roots} root elements, {stack:?} left open, {:?} trailing",
            rest.trim()
        ));
    }
    Ok(names)
}

#[test]
fn xml_elements_refuses_what_is_not_well_formed() {
    let ok = "<?xml version=\"1.0\"?>\n<a x=\"1\"><b/><c>t &amp; u</c></a>\n";
    assert_eq!(xml_elements(ok).unwrap(), ["a", "b", "c"]);
    for bad in [
        "<a></a>",
        "<?xml version=\"1.0\"?><a><b></a></b>",
        "<?xml version=\"1.0\"?><a><b></a>",
        "<?xml version=\"1.0\"?><a></a><a></a>",
        "<?xml version=\"1.0\"?><a x=\"1></a>",
        "<?xml version=\"1.0\"?><a>x & y</a>",
    ] {
        assert!(xml_elements(bad).is_err(), "{bad}");
    }
}

/// The `cobble conformance` binary against Cobble: one line per check, the summary per
/// section and the totals line; `--json` and `--junit FILE`; exit 0 when nothing failed,
/// and 2 when the directory cannot be reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_reports_and_exit_status() {
    let env = ValidationEnv::start(Engine::Sqlite, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let root = env.server.trust_root();
    let base = [
        "conformance",
        "--directory",
        &env.server.directory_url,
        "--ca-bundle",
        root.to_str().unwrap(),
        "--only",
        "dir.get-json,nonce.head-200,nonce.syntax,nonce.expired",
    ];
    let plain = [&base[..], &["--junit", junit.to_str().unwrap()][..]].concat();
    let (code, out, err) = cobble_cli(&plain).await;
    assert_eq!(code, 0, "exit status\n{out}\n{err}");
    let lines = words(&out);
    for want in [
        "pass MUST dir.get-json RFC 8555 §7.1.1 The directory is a JSON object",
        "pass SHOULD nonce.head-200 RFC 8555 §7.2 HEAD newNonce answers 200",
        "pass MUST nonce.syntax RFC 8555 §6.5.1 Replay-Nonce is base64url",
        "skip MUST nonce.expired RFC 8555 §6.5 An expired nonce is refused with badNonce",
        "by section:",
        "RFC 8555 §6.5 0 passed 0 failed 1 skipped",
        "RFC 8555 §6.5.1 1 passed 0 failed 0 skipped",
        "RFC 8555 §7.1.1 1 passed 0 failed 0 skipped",
        "RFC 8555 §7.2 1 passed 0 failed 0 skipped",
    ] {
        assert!(
            lines.iter().any(|l| l == want),
            "no line {want:?} in:\n{out}"
        );
    }
    let skipped = lines
        .iter()
        .position(|l| l.contains("nonce.expired"))
        .unwrap();
    assert!(
        lines[skipped + 1].starts_with("(needs --nonce-wait"),
        "the skip's reason follows its line:\n{out}"
    );
    assert_eq!(
        lines.iter().rev().find(|l| !l.is_empty()).unwrap(),
        "3 passed, 0 failed, 1 skipped",
        "the last line:\n{out}"
    );
    // Sections in RFC order: §6.5 before §6.5.1 before §7.1.1 before §7.2.
    let at = |s: &str| lines.iter().position(|l| l.starts_with(s)).unwrap();
    assert!(at("RFC 8555 §6.5 ") < at("RFC 8555 §6.5.1 "));
    assert!(at("RFC 8555 §6.5.1 ") < at("RFC 8555 §7.1.1 "));
    assert!(at("RFC 8555 §7.1.1 ") < at("RFC 8555 §7.2 "));

    let xml = std::fs::read_to_string(&junit).expect("--junit wrote its file");
    let elements = xml_elements(&xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
    let count = |n: &str| elements.iter().filter(|e| *e == n).count();
    assert_eq!(elements[0], "testsuites", "{xml}");
    assert_eq!(count("testsuite"), 4, "one suite per section:\n{xml}");
    assert_eq!(count("testcase"), 4, "{xml}");
    assert_eq!(count("skipped"), 1, "{xml}");
    assert_eq!(count("failure"), 0, "{xml}");
    assert!(
        xml.contains(
            "<testsuites name=\"cobble conformance\" tests=\"4\" failures=\"0\" skipped=\"1\">"
        ),
        "{xml}"
    );

    let json = [&base[..], &["--json"][..]].concat();
    let (code, out, err) = cobble_cli(&json).await;
    assert_eq!(code, 0, "exit status with --json\n{out}\n{err}");
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("--json output: {e}\n{out}"));
    assert_eq!(
        (&v["passed"], &v["failed"], &v["skipped"], &v["must_failed"]),
        (&3.into(), &0.into(), &1.into(), &false.into()),
        "{out}"
    );
    let outcomes: Vec<(&str, &str)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("dir.get-json", "pass"),
            ("nonce.head-200", "pass"),
            ("nonce.syntax", "pass"),
            ("nonce.expired", "skip")
        ]
    );
    assert_eq!(v["directory"], env.server.directory_url.as_str());
    env.stop().await;

    // Nothing listens on this port: the run cannot start, exit status 2.
    let closed = format!("https://127.0.0.1:{}/dir", common::ports::free_port());
    let (code, out, err) = cobble_cli(&["conformance", "--directory", &closed]).await;
    assert_eq!(
        code, 2,
        "exit status for an unreachable directory\n{out}\n{err}"
    );
    assert!(
        err.contains("cobble conformance: GET ") && err.contains(&closed),
        "{err}"
    );
    assert!(out.is_empty(), "no report without a server:\n{out}");
}

/// The `cobble conformance` binary against Debian's Pebble: a failed MUST
/// (`nonce.cache-control`, Pebble's `no-cache` instead of `no-store`) exits 1 and shows the
/// exchange; a failed SHOULD alone (`acct.terms`) is reported but exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_exit_status_follows_the_level_of_a_failure() {
    let Some(p) = start_pebble(serde_json::json!({})).await else {
        return;
    };
    let ca = p.ca.to_str().unwrap().to_owned();
    let base = [
        "conformance",
        "--directory",
        p.directory.as_str(),
        "--ca-bundle",
        ca.as_str(),
        "--only",
    ];
    let (code, out, err) =
        cobble_cli(&[&base[..], &["nonce.head-200,nonce.cache-control"][..]].concat()).await;
    assert_eq!(code, 1, "a MUST failed\n{out}\n{err}");
    let lines = words(&out);
    let fail = lines
        .iter()
        .position(|l| l.starts_with("FAIL MUST nonce.cache-control RFC 8555 §7.2"))
        .unwrap_or_else(|| panic!("no FAIL line:\n{out}"));
    assert!(
        lines[fail + 1].starts_with("why: newNonce answered without Cache-Control: no-store"),
        "{out}"
    );
    assert_eq!(lines[fail + 2], "sent:", "{out}");
    assert!(out.contains("received:"), "{out}");
    assert_eq!(
        lines.iter().rev().find(|l| !l.is_empty()).unwrap(),
        "1 passed, 1 failed, 0 skipped",
        "{out}"
    );

    let (code, out, err) = cobble_cli(&[&base[..], &["acct.terms"][..]].concat()).await;
    assert_eq!(code, 0, "only a SHOULD failed\n{out}\n{err}");
    assert!(
        words(&out)
            .iter()
            .any(|l| l.starts_with("FAIL SHOULD acct.terms")),
        "{out}"
    );
    assert!(
        out.trim_end().ends_with("0 passed, 1 failed, 0 skipped"),
        "{out}"
    );
}
