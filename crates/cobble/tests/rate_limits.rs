//! Rate limits (issue 12), Buypass's numbers: each limit hit exactly at its boundary, with
//! `Retry-After` from the window, window expiry on the injectable clock, the renewal
//! exemption, the off switch, request rates, certbot's printed error, and two processes on
//! one database racing for the last certificate. Both engines.

mod common;

use cobble_core::b64;
use cobble_core::jwk::Curve;
use cobble_core::ratelimit::{LimitName, Override, Scope};
use cobble_core::sign::Signer;
use common::{Engine, Reply, TestServer, ValidationEnv, admin_api, cobble_admin, register_eab};
use serde_json::{Value, json};

both_engines!(
    certificates_per_domain_and_duplicates,
    pending_authorizations,
    failed_validations,
    request_rates,
    certbot_prints_the_limit,
    last_certificate_raced_by_two_processes,
    overrides_and_usage,
    request_rates_shared_by_two_processes,
    renewals_refused_when_not_exempt,
    a_replaces_order_is_a_renewal,
);

fn ec() -> Signer {
    Signer::generate_ec(Curve::P256).unwrap()
}

async fn limited(
    e: Engine,
    tweak: impl FnOnce(&mut cobble_server::config::ServerConfig),
) -> TestServer {
    TestServer::start_with(
        e,
        |c| {
            c.va_always_valid = true;
            c.no_rate_limits = false;
            c.authz_reuse_percent = 0;
            request_rates_off(c);
            tweak(c);
        },
        true,
    )
    .await
}

/// The counting limits are under test here; the per-second request rates run on the wall
/// clock, which a fast machine outruns (20 orders in under a second), so they are off unless
/// a test sets them.
fn request_rates_off(c: &mut cobble_server::config::ServerConfig) {
    let off = cobble_core::ratelimit::Rate {
        per_second: 0,
        burst: 0,
    };
    c.rate_limits.new_account = off;
    c.rate_limits.new_order = off;
    c.rate_limits.finalize = off;
}

/// Orders `names`, validates, finalizes; the finalize reply (or the refusal on the way).
async fn issue(s: &TestServer, k: &Signer, kid: &str, names: &[&str]) -> Reply {
    let ids: Vec<Value> = names
        .iter()
        .map(|n| json!({"type": "dns", "value": n}))
        .collect();
    let r = s
        .post_kid(
            k,
            kid,
            &s.url("/acme/new-order"),
            Some(&json!({"identifiers": ids})),
        )
        .await;
    if r.status != 201 {
        return r;
    }
    for a in r.body["authorizations"].as_array().unwrap() {
        let authz = s.post_kid(k, kid, a.as_str().unwrap(), None).await.body;
        if authz["status"] == "valid" {
            continue;
        }
        let ch = authz["challenges"][0]["url"].as_str().unwrap().to_owned();
        s.post_kid(k, kid, &ch, Some(&json!({}))).await;
    }
    common::poll_until(s, k, kid, r.location.as_deref().unwrap(), |o| {
        o["status"] == "ready"
    })
    .await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = common::rcgen_csr(names, &key);
    s.post_kid(
        k,
        kid,
        r.body["finalize"].as_str().unwrap(),
        Some(&json!({"csr": b64::encode(&csr)})),
    )
    .await
}

#[track_caller]
fn assert_limited(r: &Reply, fragment: &str, retry_after: i64) {
    r.assert_problem("rateLimited", 429, fragment);
    let got: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(got, retry_after, "Retry-After: {r:?}");
    let links: Vec<&str> = r
        .headers
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        links
            .iter()
            .any(|l| l.contains("/rate-limits>") && l.contains("rel=\"help\"")),
        "{links:?}"
    );
}

async fn certificates_per_domain_and_duplicates(e: Engine) {
    let s = limited(e, |_| {}).await;
    let clock = s.clock.clone().unwrap();
    let first_at = cobble_core::clock::Clock::now_ms(&clock);
    let k = ec();
    let kid = s.account(&k).await;
    // 20 certificates under example.co.uk, one day apart for the first.
    let r = issue(&s, &k, &kid, &["n0.blog.example.co.uk"]).await;
    assert_eq!(r.body["status"], "valid", "{r:?}");
    clock.advance(86_400_000);
    for i in 1..20 {
        let name = format!("n{i}.example.co.uk");
        let r = issue(&s, &k, &kid, &[&name]).await;
        assert_eq!(r.body["status"], "valid", "certificate {}: {r:?}", i + 1);
    }
    // The 21st is refused at newOrder, until the first leaves the week (in 6 days).
    let r = issue(&s, &k, &kid, &["n20.example.co.uk"]).await;
    assert_limited(
        &r,
        "certificates per registered domain: 20 of at most 20 per week for registered domain example.co.uk",
        6 * 86_400,
    );
    // A renewal (the same names as an earlier certificate of this account) is exempt.
    let r = issue(&s, &k, &kid, &["n5.example.co.uk"]).await;
    assert_eq!(r.body["status"], "valid", "renewal: {r:?}");
    // Another account is not: the limit is the registered domain's. The renewal counted,
    // so the domain is at 21: the first certificate leaving the week (in 6 days) leaves
    // 20, still the limit; only when the second leaves (in 7 days) is there room.
    let k2 = ec();
    let kid2 = s.account(&k2).await;
    let r = issue(&s, &k2, &kid2, &["n5.example.co.uk"]).await;
    assert_limited(
        &r,
        "certificates per registered domain: 21 of at most 20 per week for registered domain example.co.uk",
        7 * 86_400,
    );
    let frees = first_at + 86_400_000 + 7 * 86_400_000;
    assert!(
        r.body["detail"].as_str().unwrap().ends_with(&format!(
            "retry after {}",
            cobble_core::clock::rfc3339(frees)
        )),
        "{r:?}"
    );
    // The usage report says the same.
    let u = admin_api(&s, "GET", "/admin/limits?domain=example.co.uk", None).await;
    let d = limit_entry(&u.body, "certificates-per-domain", "example.co.uk");
    assert_eq!(
        (d["count"].as_i64(), d["limited"].as_bool()),
        (Some(21), Some(true)),
        "{d}"
    );
    assert_eq!(d["oldest"], cobble_core::clock::rfc3339(first_at), "{d}");
    assert_eq!(d["frees_at"], cobble_core::clock::rfc3339(frees), "{d}");
    // A week after the others (renewals count, they are only never refused), the domain
    // has room again.
    clock.advance(7 * 86_400_000 + 1);
    let r = issue(&s, &k, &kid, &["n20.example.co.uk"]).await;
    assert_eq!(r.body["status"], "valid", "{r:?}");

    // Duplicates: 5 per week for the same set of names, whatever the order and case.
    for i in 0..5 {
        let names: &[&str] = if i % 2 == 0 {
            &["a.dup.test", "b.dup.test"]
        } else {
            &["b.dup.test", "a.dup.test"]
        };
        let r = issue(&s, &k, &kid, names).await;
        assert_eq!(r.body["status"], "valid", "duplicate {}: {r:?}", i + 1);
    }
    let r = issue(&s, &k, &kid, &["b.dup.test", "a.dup.test"]).await;
    assert_limited(
        &r,
        "duplicate certificates (the same set of names): 5 of at most 5 per week for [a.dup.test,b.dup.test]",
        7 * 86_400,
    );
    let r = issue(&s, &k, &kid, &["a.dup.test", "b.dup.test", "c.dup.test"]).await;
    assert_eq!(r.body["status"], "valid", "another set of names: {r:?}");
    s.stop().await;

    // The off switch: 25 certificates under one registered domain.
    let s = limited(e, |c| c.no_rate_limits = true).await;
    let kid = s.account(&k).await;
    for i in 0..25 {
        let name = format!("x{i}.off.test");
        let r = issue(&s, &k, &kid, &[&name]).await;
        assert_eq!(r.body["status"], "valid", "{r:?}");
    }
    s.stop().await;
}

async fn pending_authorizations(e: Engine) {
    let s = limited(e, |_| {}).await;
    let k = ec();
    let kid = s.account(&k).await;
    let order = |from: usize, n: usize| {
        let ids: Vec<Value> = (from..from + n)
            .map(|i| json!({"type": "dns", "value": format!("p{i}.pending.test")}))
            .collect();
        json!({"identifiers": ids})
    };
    let mut first_authz = None;
    for batch in 0..3 {
        let r = s
            .post_kid(
                &k,
                &kid,
                &s.url("/acme/new-order"),
                Some(&order(batch * 100, 100)),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        first_authz.get_or_insert_with(|| r.body["authorizations"][0].as_str().unwrap().to_owned());
    }
    // 300 pending: one more is refused.
    let r = s
        .post_kid(&k, &kid, &s.url("/acme/new-order"), Some(&order(300, 1)))
        .await;
    r.assert_problem("rateLimited", 429, "account");
    assert!(r.body["detail"].as_str().unwrap().contains("300"), "{r:?}");
    // Deactivating one frees a slot.
    let authz = first_authz.unwrap();
    let d = s
        .post_kid(&k, &kid, &authz, Some(&json!({"status": "deactivated"})))
        .await;
    assert_eq!(d.status, 200, "{d:?}");
    let r = s
        .post_kid(&k, &kid, &s.url("/acme/new-order"), Some(&order(300, 1)))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    s.stop().await;
}

async fn failed_validations(e: Engine) {
    // Real validation against the challenge test server, which serves no answer: each
    // http-01 attempt fails.
    let env = ValidationEnv::start_clock(
        e,
        |c| {
            c.no_rate_limits = false;
            c.authz_reuse_percent = 0;
        },
        true,
    )
    .await;
    let s = &env.server;
    let k = ec();
    let kid = s.account(&k).await;
    let try_once = || async {
        let r = s
            .post_kid(
                &k,
                &kid,
                &s.url("/acme/new-order"),
                Some(&json!({"identifiers": [{"type": "dns", "value": "fail.example.com"}]})),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        let authz_url = r.body["authorizations"][0].as_str().unwrap().to_owned();
        let authz = s.post_kid(&k, &kid, &authz_url, None).await.body;
        let ch = authz["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "http-01")
            .unwrap()["url"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = s.post_kid(&k, &kid, &ch, Some(&json!({}))).await;
        (r, authz_url)
    };
    for i in 0..5 {
        let (r, authz_url) = try_once().await;
        assert_eq!(r.status, 200, "attempt {}: {r:?}", i + 1);
        common::poll_until(s, &k, &kid, &authz_url, |a| a["status"] == "invalid").await;
    }
    let (r, _) = try_once().await;
    r.assert_problem(
        "rateLimited",
        429,
        "failed validations: 5 of at most 5 per hour for fail.example.com",
    );
    let retry: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    // An hour later the name may be tried again.
    env.server.clock.as_ref().unwrap().advance(3_600_001);
    let (r, _) = try_once().await;
    assert_eq!(r.status, 200, "{r:?}");
    env.stop().await;
}

async fn request_rates(e: Engine) {
    let s = limited(e, |c| {
        c.rate_limits.directory = cobble_core::ratelimit::Rate {
            per_second: 2,
            burst: 5,
        };
    })
    .await;
    let mut statuses = Vec::new();
    let mut refusal = None;
    for _ in 0..12 {
        let r = Reply::from(s.http.get(&s.directory_url).send().await.unwrap()).await;
        statuses.push(r.status);
        if r.status == 429 && refusal.is_none() {
            refusal = Some(r);
        }
    }
    assert!(
        statuses[..5].iter().all(|s| *s == 200),
        "the burst passes: {statuses:?}"
    );
    let r = refusal.expect("a 429 after the burst");
    r.assert_problem("rateLimited", 429, "too many requests to directory");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert!(
        r.headers["link"].to_str().unwrap().contains("rel=\"help\"")
            || r.headers
                .get_all("link")
                .iter()
                .any(|l| l.to_str().unwrap().contains("rel=\"help\""))
    );
    let page = s
        .http
        .get(s.url("/rate-limits"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("20 certificates per week"), "{page}");
    // The page agrees with the README on renewals, and names the README's section.
    assert!(
        page.contains(
            "count towards the certificates-per-domain limit but are never refused by it"
        ),
        "{page}"
    );
    assert!(
        page.contains("<em>Rate limits</em> section of Cobble's README"),
        "{page}"
    );
    s.stop().await;
}

/// `renewals-exempt = false`: a renewal counts and is refused past the limit like any
/// other certificate, and the help page says so.
async fn renewals_refused_when_not_exempt(e: Engine) {
    let s = limited(e, |c| {
        c.rate_limits.renewals_exempt = false;
        c.rate_limits.certificates_per_domain.count = 2;
    })
    .await;
    let k = ec();
    let kid = s.account(&k).await;
    for n in ["a.renew.test", "b.renew.test"] {
        let r = issue(&s, &k, &kid, &[n]).await;
        assert_eq!(r.body["status"], "valid", "{r:?}");
    }
    let r = issue(&s, &k, &kid, &["a.renew.test"]).await;
    assert_limited(
        &r,
        "certificates per registered domain: 2 of at most 2 per week for registered domain renew.test",
        7 * 86_400,
    );
    let page = s
        .http
        .get(s.url("/rate-limits"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("count towards the certificates-per-domain limit and are refused by it"),
        "{page}"
    );
    s.stop().await;
}

/// An order that `replaces` an earlier certificate (ARI, RFC 9773 §5) is a renewal with
/// the limits on, even for a set of names the account was never issued.
async fn a_replaces_order_is_a_renewal(e: Engine) {
    let s = limited(e, |c| c.rate_limits.certificates_per_domain.count = 2).await;
    let k = ec();
    let kid = s.account(&k).await;
    let mut first = None;
    for n in ["a.ari.test", "b.ari.test"] {
        let r = issue(&s, &k, &kid, &[n]).await;
        assert_eq!(r.body["status"], "valid", "{r:?}");
        first.get_or_insert_with(|| r.body["certificate"].as_str().unwrap().to_owned());
    }
    let pem = s.post_kid(&k, &kid, &first.unwrap(), None).await.text;
    let der = cobble_ca::pem::certificates(&pem).unwrap().remove(0);
    let cert_id = cobble_ca::ari::ari_cert_id(&der).unwrap();
    let names = [
        json!({"type": "dns", "value": "a.ari.test"}),
        json!({"type": "dns", "value": "c.ari.test"}),
    ];
    // A new set of names is not a renewal on its own...
    let r = s
        .post_kid(
            &k,
            &kid,
            &s.url("/acme/new-order"),
            Some(&json!({"identifiers": names})),
        )
        .await;
    assert_limited(
        &r,
        "2 of at most 2 per week for registered domain ari.test",
        7 * 86_400,
    );
    // ...but replacing the certificate of a.ari.test makes it one, through finalize.
    let r = s
        .post_kid(
            &k,
            &kid,
            &s.url("/acme/new-order"),
            Some(&json!({"identifiers": names, "replaces": cert_id})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    for a in r.body["authorizations"].as_array().unwrap() {
        let authz = s.post_kid(&k, &kid, a.as_str().unwrap(), None).await.body;
        if authz["status"] != "valid" {
            let ch = authz["challenges"][0]["url"].as_str().unwrap().to_owned();
            s.post_kid(&k, &kid, &ch, Some(&json!({}))).await;
        }
    }
    common::poll_until(&s, &k, &kid, r.location.as_deref().unwrap(), |o| {
        o["status"] == "ready"
    })
    .await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = common::rcgen_csr(&["a.ari.test", "c.ari.test"], &key);
    let f = s
        .post_kid(
            &k,
            &kid,
            r.body["finalize"].as_str().unwrap(),
            Some(&json!({"csr": b64::encode(&csr)})),
        )
        .await;
    assert_eq!(f.body["status"], "valid", "{f:?}");
    // It counted: the domain is at 3.
    let u = admin_api(&s, "GET", "/admin/limits?domain=ari.test", None).await;
    let d = limit_entry(&u.body, "certificates-per-domain", "ari.test");
    assert_eq!(d["count"], 3, "{d}");
    s.stop().await;
}

async fn certbot_prints_the_limit(e: Engine) {
    if std::process::Command::new("certbot")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("COBBLE_TEST_NO_CLIENTS").is_ok(),
            "certbot is not installed: run scripts/test.sh"
        );
        return;
    }
    let certbot = std::env::var("COBBLE_TEST_CERTBOT").unwrap_or_else(|_| "certbot".into());
    let port = common::ports::free_port();
    let env = ValidationEnv::start(e, |c| {
        c.http01_port = port;
        c.no_rate_limits = false;
        c.rate_limits.certificates_per_domain.count = 2;
    })
    .await;
    let s = &env.server;
    let work = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        let mut cmd = tokio::process::Command::new(&certbot);
        cmd.args([
            "certonly",
            "--standalone",
            "--http-01-port",
            &port.to_string(),
            "--http-01-address",
            "127.0.0.1",
            "--agree-tos",
            "-m",
            "ops@example.com",
            "-d",
            name,
            "--cert-name",
            name,
        ])
        .args(["--server", &s.directory_url, "-n", "--config-dir"])
        .arg(work.path().join("conf"))
        .arg("--work-dir")
        .arg(work.path().join("work"))
        .arg("--logs-dir")
        .arg(work.path().join("logs"))
        .env("REQUESTS_CA_BUNDLE", s.trust_root());
        cmd.kill_on_drop(true);
        cmd
    };
    for name in ["a.limit.example.com", "b.limit.example.com"] {
        common::run_client(run(name), "certbot").await;
    }
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        run("c.limit.example.com").output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!out.status.success());
    let mut said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if std::env::var("COBBLE_TEST_CERTBOT").is_err() && said.contains("AttributeError") {
        // Debian's certbot 2.1 prints only its own AttributeError: read what it logged.
        said =
            std::fs::read_to_string(work.path().join("logs/letsencrypt.log")).unwrap_or_default();
    }
    assert!(said.contains("rate limit reached: too many certificates per registered domain: 2 of at most 2 per week for registered domain example.com; retry after"), "{said}");
    env.stop().await;
}

/// Two `cobble serve` processes on one database race to finalize the 20th and 21st
/// certificates of a registered domain: exactly 20 are issued.
async fn last_certificate_raced_by_two_processes(e: Engine) {
    let a = TestServer::start_with(
        e,
        |c| {
            c.va_always_valid = true;
            c.no_rate_limits = false;
            request_rates_off(c);
        },
        false,
    )
    .await;
    let (mut child, b) = common::spawn_instance(&a, &[]).await;
    let k = ec();
    let kid = a.account(&k).await;
    for i in 0..18 {
        let name = format!("r{i}.race.test");
        let r = issue(&a, &k, &kid, &[&name]).await;
        assert_eq!(r.body["status"], "valid", "{r:?}");
    }
    // Three ready orders for the last two slots, finalized at once on both processes.
    let mut finals = Vec::new();
    for i in 18..21 {
        let name = format!("r{i}.race.test");
        let ids = json!({"identifiers": [{"type": "dns", "value": name}]});
        let r = a
            .post_kid(&k, &kid, &a.url("/acme/new-order"), Some(&ids))
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        let authz = a
            .post_kid(
                &k,
                &kid,
                r.body["authorizations"][0].as_str().unwrap(),
                None,
            )
            .await
            .body;
        let ch = authz["challenges"][0]["url"].as_str().unwrap().to_owned();
        a.post_kid(&k, &kid, &ch, Some(&json!({}))).await;
        common::poll_until(&a, &k, &kid, r.location.as_deref().unwrap(), |o| {
            o["status"] == "ready"
        })
        .await;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        finals.push((
            r.body["finalize"].as_str().unwrap().to_owned(),
            common::rcgen_csr(&[&name], &key),
        ));
    }
    let (a, b, k) = (
        std::sync::Arc::new(a),
        std::sync::Arc::new(b),
        std::sync::Arc::new(k),
    );
    let mut tasks = Vec::new();
    for (i, (url, csr)) in finals.into_iter().enumerate() {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (k, kid, abase) = (k.clone(), kid.clone(), a.base.clone());
        tasks.push(tokio::spawn(async move {
            let url = url.replace(&abase, &s.base);
            let kid = kid.replace(&abase, &s.base);
            let body = k.sign_with_kid(
                &kid,
                &url,
                &s.nonce().await,
                Some(&json!({"csr": b64::encode(&csr)})),
            );
            s.post(&url, &body).await
        }));
    }
    let mut valid = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == 200 && r.body["status"] == "valid" {
            valid += 1;
        } else if r.status == 200 {
            assert_eq!(
                r.body["error"]["type"], "urn:ietf:params:acme:error:rateLimited",
                "{r:?}"
            );
        } else {
            assert_eq!(r.status, 429, "{r:?}");
        }
    }
    assert_eq!(valid, 2, "exactly the two slots left");
    let store = a.running.as_ref().unwrap().store.clone();
    let issued = store
        .certificates_page(
            &cobble_store::ListQuery {
                limit: 100,
                ..Default::default()
            },
            0,
        )
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(issued, 20);
    child.kill().await.unwrap();
    match std::sync::Arc::try_unwrap(a) {
        Ok(a) => a.stop().await,
        Err(_) => panic!("tasks are done"),
    }
}

fn limit_entry<'a>(report: &'a Value, limit: &str, key: &str) -> &'a Value {
    report["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["limit"] == limit && l["key"] == key)
        .unwrap_or_else(|| panic!("no {limit} entry for {key}: {report:#}"))
}

/// Overrides from the configuration and the admin API, per registered domain, account and
/// external account (the most specific wins, an exemption too), the usage report, the CLI,
/// and the admin API's bad paths.
async fn overrides_and_usage(e: Engine) {
    let hmac = b64::encode([7u8; 32]);
    let s = limited(e, |c| {
        c.rate_limits.overrides = vec![Override {
            count: Some(2),
            ..Override::for_subject(
                Scope::Domain,
                "example.net",
                LimitName::CertificatesPerDomain,
            )
        }];
        c.eab_mac_keys.insert("kid-rl".into(), hmac.clone());
    })
    .await;
    let clock = s.clock.clone().unwrap();
    let first_at = cobble_core::clock::Clock::now_ms(&clock);
    let k = ec();
    let kid = s.account(&k).await;
    let acct = kid.rsplit('/').next().unwrap().to_owned();
    for n in ["a1.example.net", "a2.example.net"] {
        let r = issue(&s, &k, &kid, &[n]).await;
        assert_eq!(r.body["status"], "valid", "{r:?}");
    }
    // The configuration's domain override: 2, not 20.
    let r = issue(&s, &k, &kid, &["a3.example.net"]).await;
    assert_limited(
        &r,
        "2 of at most 2 per week (an override for domain example.net) for registered domain example.net",
        7 * 86_400,
    );

    // An account override wins over the domain's.
    let body = json!({"scope": "account", "subject": acct, "limit": "certificates-per-domain", "count": 3, "comment": "pilot customer"});
    let r = admin_api(&s, "PUT", "/admin/limit-overrides", Some(body.clone())).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["count"], 3);
    let r = admin_api(&s, "PUT", "/admin/limit-overrides", Some(body)).await;
    assert_eq!(r.status, 200, "replaced: {r:?}");
    let r = issue(&s, &k, &kid, &["a3.example.net"]).await;
    assert_eq!(r.body["status"], "valid", "{r:?}");
    let r = issue(&s, &k, &kid, &["a4.example.net"]).await;
    assert_limited(
        &r,
        &format!("3 of at most 3 per week (an override for account {acct})"),
        7 * 86_400,
    );

    // The usage report, by account and by registered domain.
    let u = admin_api(&s, "GET", &format!("/admin/limits?account={acct}"), None).await;
    assert_eq!(u.status, 200, "{u:?}");
    let d = limit_entry(&u.body, "certificates-per-domain", "example.net");
    assert_eq!(
        (d["count"].as_i64(), d["max"].as_i64()),
        (Some(3), Some(3)),
        "{d}"
    );
    assert_eq!(d["limited"], true);
    assert_eq!(d["account_count"], 3);
    assert_eq!(d["override"]["scope"], "account");
    assert_eq!(d["override"]["comment"], "pilot customer");
    assert_eq!(
        d["frees_at"],
        cobble_core::clock::rfc3339(first_at + 7 * 86_400_000),
        "the first certificate leaves the week: {d}"
    );
    let p = limit_entry(
        &u.body,
        "pending-authorizations",
        &format!("account {acct}"),
    );
    assert_eq!(
        (p["count"].as_i64(), p["max"].as_i64()),
        (Some(0), Some(300))
    );
    let dup = limit_entry(&u.body, "duplicate-certificates", "[a1.example.net]");
    assert_eq!(
        (dup["count"].as_i64(), dup["max"].as_i64()),
        (Some(1), Some(5))
    );
    let u = admin_api(&s, "GET", "/admin/limits?domain=www.example.net", None).await;
    assert_eq!(u.body["domain"], "example.net", "{u:?}");
    let d = limit_entry(&u.body, "certificates-per-domain", "example.net");
    assert_eq!(
        (d["count"].as_i64(), d["max"].as_i64()),
        (Some(3), Some(2)),
        "{d}"
    );
    assert_eq!(d["override"]["scope"], "domain");
    assert_eq!(
        u.body["limits"].as_array().unwrap().len(),
        4,
        "3 name sets: {u:?}"
    );

    // The same through the CLI.
    let v = cobble_admin(&s, &["limits", "show", "--account", &acct]).await;
    assert_eq!(
        limit_entry(&v, "certificates-per-domain", "example.net")["count"],
        3
    );
    let v = cobble_admin(
        &s,
        &[
            "limits",
            "set",
            "--domain",
            "shop.example.org",
            "--limit",
            "duplicate-certificates",
            "--count",
            "9",
        ],
    )
    .await;
    assert_eq!(
        (v["subject"].as_str(), v["count"].as_i64()),
        (Some("example.org"), Some(9))
    );
    let v = cobble_admin(&s, &["limits", "overrides"]).await;
    let items = v["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|o| o["subject"] == "example.org" && o["source"] == "admin-api"),
        "{v}"
    );
    assert!(
        items
            .iter()
            .any(|o| o["subject"] == "example.net" && o["source"] == "config"),
        "{v}"
    );
    let v = cobble_admin(
        &s,
        &[
            "limits",
            "unset",
            "--domain",
            "example.org",
            "--limit",
            "duplicate-certificates",
        ],
    )
    .await;
    assert_eq!(v["count"], 9);

    // An exemption stored for the domain wins over the configuration's override for it.
    let r = admin_api(
        &s,
        "PUT",
        "/admin/limit-overrides",
        Some(json!({"scope": "domain", "subject": "example.net", "limit": "certificates-per-domain", "enabled": false})),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let k2 = ec();
    let kid2 = s.account(&k2).await;
    let r = issue(&s, &k2, &kid2, &["b1.example.net"]).await;
    assert_eq!(r.body["status"], "valid", "exempt: {r:?}");
    // The account's own override still applies to it (the most specific wins).
    let r = issue(&s, &k, &kid, &["a4.example.net"]).await;
    assert_eq!(r.status, 429, "{r:?}");
    let r = admin_api(
        &s,
        "DELETE",
        &format!("/admin/limit-overrides/account/{acct}/certificates-per-domain"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = issue(&s, &k, &kid, &["a4.example.net"]).await;
    assert_eq!(
        r.body["status"], "valid",
        "now the domain's exemption: {r:?}"
    );

    // An external account's override applies to every account bound to it.
    let kb = ec();
    let reg = register_eab(&s, &kb, "kid-rl", &hmac).await;
    assert_eq!(reg.status, 201, "{reg:?}");
    let kid_b = reg.location.unwrap();
    let r = admin_api(
        &s,
        "PUT",
        "/admin/limit-overrides",
        Some(json!({"scope": "external-account", "subject": "kid-rl", "limit": "pending-authorizations", "count": 1})),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let ids = json!({"identifiers": [{"type": "dns", "value": "c1.example.com"}, {"type": "dns", "value": "c2.example.com"}]});
    let r = s
        .post_kid(&kb, &kid_b, &s.url("/acme/new-order"), Some(&ids))
        .await;
    r.assert_problem(
        "rateLimited",
        429,
        "over the limit of 1 (an override for external-account kid-rl)",
    );
    let u = admin_api(
        &s,
        "GET",
        &format!(
            "/admin/limits?account={}",
            kid_b.rsplit('/').next().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(u.body["external_account"], "kid-rl", "{u:?}");

    // Bad paths: clear problems, never a 5xx.
    for (method, path, body, status, fragment) in [
        (
            "GET",
            "/admin/limits".to_owned(),
            None,
            400,
            "exactly one of",
        ),
        (
            "GET",
            "/admin/limits?account=nobody".to_owned(),
            None,
            404,
            "nobody",
        ),
        (
            "PUT",
            "/admin/limit-overrides".to_owned(),
            Some(json!({"scope": "galaxy", "subject": "x", "limit": "failed-validations"})),
            400,
            "galaxy",
        ),
        (
            "PUT",
            "/admin/limit-overrides".to_owned(),
            Some(
                json!({"scope": "domain", "subject": "x.test", "limit": "pending-authorizations"}),
            ),
            400,
            "counted per account",
        ),
        (
            "PUT",
            "/admin/limit-overrides".to_owned(),
            Some(json!({"scope": "domain", "subject": "x.test", "limit": "speed"})),
            400,
            "speed",
        ),
        (
            "PUT",
            "/admin/limit-overrides".to_owned(),
            Some(json!({"scope": "account", "subject": "nobody", "limit": "failed-validations"})),
            404,
            "nobody",
        ),
        (
            "PUT",
            "/admin/limit-overrides".to_owned(),
            Some(
                json!({"scope": "external-account", "subject": "no-kid", "limit": "failed-validations"}),
            ),
            404,
            "no-kid",
        ),
        (
            "PUT",
            "/admin/limit-overrides".to_owned(),
            Some(
                json!({"scope": "domain", "subject": "x.test", "limit": "failed-validations", "window_secs": 0}),
            ),
            400,
            "at least one second",
        ),
        (
            "PUT",
            "/admin/limit-overrides".to_owned(),
            Some(json!({"scope": "domain"})),
            400,
            "JSON",
        ),
        (
            "DELETE",
            "/admin/limit-overrides/domain/none.test/failed-validations".to_owned(),
            None,
            404,
            "none.test",
        ),
    ] {
        let r = admin_api(&s, method, &path, body).await;
        assert_eq!(r.status, status, "{method} {path}: {r:?}");
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(fragment),
            "{method} {path}: {r:?}"
        );
        assert_eq!(r.headers["content-type"], "application/problem+json");
    }
    let audit = admin_api(&s, "GET", "/admin/audit", None).await;
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "limit-override.delete"),
        "{audit:?}"
    );
    s.stop().await;
}

/// `shared-request-rates`: the buckets live in the store, so a second `cobble serve`
/// process on the same database draws from the same bucket as this one.
async fn request_rates_shared_by_two_processes(e: Engine) {
    let s = limited(e, |c| {
        c.rate_limits.shared_request_rates = true;
        c.rate_limits.directory = cobble_core::ratelimit::Rate {
            per_second: 1,
            burst: 3,
        };
    })
    .await;
    let cfg = s.dir.path().join("shared-rates.toml");
    std::fs::write(
        &cfg,
        "[rate-limits]\nshared-request-rates = true\n[rate-limits.directory]\nper-second = 1\nburst = 3\n",
    )
    .unwrap();
    let (mut child, b) = common::spawn_instance(&s, &["--config", cfg.to_str().unwrap()]).await;
    // The other process spends the burst (its clock is the real one, later than this
    // server's manual clock, which stands still)...
    for i in 0..3 {
        let r = Reply::from(b.http.get(&b.directory_url).send().await.unwrap()).await;
        assert_eq!(r.status, 200, "request {i} of the burst: {r:?}");
    }
    // ...so this one refuses its first request: the bucket is shared.
    let r = Reply::from(s.http.get(&s.directory_url).send().await.unwrap()).await;
    r.assert_problem("rateLimited", 429, "per second across every instance");
    assert!(r.headers.contains_key("retry-after"), "{r:?}");
    let page = s
        .http
        .get(s.url("/rate-limits"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("across every instance"), "{page}");
    child.kill().await.unwrap();
    s.stop().await;
}

/// An override the server cannot use stops it at start with the entry named, rather than
/// being ignored.
#[tokio::test]
async fn a_bad_override_in_the_config_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[[rate-limits.overrides]]\nlimit = \"pending-authorizations\"\ndomain = \"example.com\"\n",
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cobble"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "",
            "--config",
        ])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rate-limits.overrides[0]") && err.contains("counted per account"),
        "{err}"
    );
}
