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
        Duration::from_secs(600),
        cobble_conformance::run(opts, |_, _, _| {}),
    )
    .await
    .expect("the suite finishes within 10 minutes")
    .expect("the suite reaches the server")
}

/// Checks that do not pass on Cobble (with one alternate root): none, every check applies
/// and passes, on both engines.
const COBBLE: &[(&str, Want)] = &[];

async fn cobble(e: Engine) {
    // One alternate root, so that the alternate-chain checks apply.
    let env = ValidationEnv::start(e, |c| c.ca.alternate_roots = 1).await;
    let mgmt = env.chall.management_addr().expect("management listener");
    let opts = Options {
        ca_bundle: Some(env.server.trust_root()),
        challtestsrv: Some(format!("http://{mgmt}")),
        ..Options::new(env.server.directory_url.clone())
    };
    let report = run(opts).await;
    env.stop().await;
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
];

/// The path of `program` on PATH, or None.
fn on_path(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|f| f.is_file())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble() {
    common::install_crypto();
    let (Some(pebble), Some(chall)) = (on_path("pebble"), on_path("pebble-challtestsrv")) else {
        assert!(
            std::env::var("COBBLE_TEST_NO_CLIENTS").is_ok(),
            "pebble or pebble-challtestsrv is not installed: apt-get install pebble, or set \
             COBBLE_TEST_NO_CLIENTS=1 to skip the tests that need other programs"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pebble_tls(dir.path());
    let (mgmt, dns, http, tls, acme, acme_mgmt) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{acme}"),
        "managementListenAddress": format!("127.0.0.1:{acme_mgmt}"),
        "certificate": cert, "privateKey": key,
        "httpPort": http, "tlsPort": tls,
        "ocspResponderURL": "", "externalAccountBindingRequired": false,
    }});
    let config_path = dir.path().join("pebble.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let mut chall_child = spawn(
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
    let mut pebble_child = spawn(
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
    let opts = Options {
        ca_bundle: Some(ca),
        challtestsrv: Some(format!("http://127.0.0.1:{mgmt}")),
        ..Options::new(directory)
    };
    let report = run(opts).await;
    let _ = pebble_child.kill().await;
    let _ = chall_child.kill().await;
    assert_outcomes("Pebble", &report, PEBBLE);
}
