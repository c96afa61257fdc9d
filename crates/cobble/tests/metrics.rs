//! `/metrics` on the management listener (issue 14): behind the admin token, in Prometheus
//! text format, parsed here by a strict parser of that format, with the families for
//! requests, problems, validations, issuance, nonces, job queues and the database pool,
//! counting what a real issuance did. SQLite and PostgreSQL.

mod common;

use cobble_core::jwk::Curve;
use cobble_core::sign::Signer;
use common::prom::{Exposition, parse};
use common::{Engine, TestServer};
use serde_json::json;

both_engines!(metrics_count_an_issuance_and_need_the_token);

/// Scrapes `/metrics` with the admin token and parses it.
pub async fn scrape(s: &TestServer) -> Exposition {
    let r = s.running.as_ref().unwrap();
    let token = std::fs::read_to_string(r.admin_token_file.as_ref().unwrap()).unwrap();
    let resp = s
        .http
        .get(format!("{}/metrics", r.admin_url.as_ref().unwrap()))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.text().await.unwrap();
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

async fn metrics_count_an_issuance_and_need_the_token(e: Engine) {
    let s = TestServer::start_with(
        e,
        |c| {
            c.va_always_valid = true;
            c.validation_poll_ms = 20;
        },
        false,
    )
    .await;
    let admin = s.running.as_ref().unwrap().admin_url.clone().unwrap();
    // Without the token: 401 with a problem document, as every admin route.
    let r = common::Reply::from(s.http.get(format!("{admin}/metrics")).send().await.unwrap()).await;
    r.assert_problem("unauthorized", 401, "Authorization: Bearer");

    let k = Signer::generate_ec(Curve::P256).unwrap();
    let kid = s.account(&k).await;
    let name = "metrics.example.com";
    let csr = common::rcgen_csr(&[name], &rcgen::KeyPair::generate().unwrap());
    let fin = common::finalize_by_hand(&s, &k, &kid, &[name], &csr).await;
    assert_eq!(fin.status, 200, "{fin:?}");
    let order = common::poll_until(&s, &k, &kid, fin.location.as_ref().unwrap(), |o| {
        o["status"] == "valid"
    })
    .await;
    assert!(order["certificate"].is_string());
    // A bad nonce, and an unknown resource.
    let url = s.url("/acme/new-order");
    let bad = k.sign_with_kid(&kid, &url, "bogus", Some(&json!({"identifiers": []})));
    s.post(&url, &bad)
        .await
        .assert_problem("badNonce", 400, "anti-replay nonce");
    assert_eq!(
        s.http.get(s.url("/nowhere")).send().await.unwrap().status(),
        404
    );

    let m = scrape(&s).await;
    for (family, kind) in [
        ("cobble_http_requests_total", "counter"),
        ("cobble_http_request_duration_seconds", "histogram"),
        ("cobble_acme_problems_total", "counter"),
        ("cobble_rate_limit_refusals_total", "counter"),
        ("cobble_validations_total", "counter"),
        ("cobble_validation_duration_seconds", "histogram"),
        ("cobble_issuances_total", "counter"),
        ("cobble_issuance_duration_seconds", "histogram"),
        ("cobble_nonces_issued_total", "counter"),
        ("cobble_nonces_redeemed_total", "counter"),
        ("cobble_nonces_rejected_total", "counter"),
        ("cobble_job_queue_depth", "gauge"),
        ("cobble_job_queue_oldest_age_seconds", "gauge"),
        ("cobble_db_pool_connections", "gauge"),
        ("cobble_db_acquire_seconds", "gauge"),
    ] {
        assert_eq!(
            m.types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    // Route patterns, never concrete URLs, as the endpoint label.
    assert_eq!(
        m.sum(
            "cobble_http_requests_total",
            &[
                ("endpoint", "/acme/new-acct"),
                ("method", "POST"),
                ("status", "201")
            ]
        ),
        1.0
    );
    assert_eq!(
        m.sum(
            "cobble_http_requests_total",
            &[("endpoint", "/acme/order/{id}/finalize"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        m.sum(
            "cobble_http_requests_total",
            &[("endpoint", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert!(
        m.find("cobble_http_requests_total", &[])
            .iter()
            .all(|s| !s.labels["endpoint"].contains(&kid)),
        "no account id in a label"
    );
    assert_eq!(
        m.sum(
            "cobble_acme_problems_total",
            &[("type", "badNonce"), ("code", "")]
        ),
        1.0
    );
    assert_eq!(m.sum("cobble_nonces_rejected_total", &[]), 1.0);
    assert_eq!(
        m.sum(
            "cobble_validations_total",
            &[("challenge_type", "http-01"), ("outcome", "valid")]
        ) + m.sum(
            "cobble_validations_total",
            &[("challenge_type", "dns-01"), ("outcome", "valid")]
        ),
        1.0
    );
    assert_eq!(
        m.sum("cobble_issuances_total", &[("outcome", "issued")]),
        1.0
    );
    assert_eq!(m.sum("cobble_issuance_duration_seconds_count", &[]), 1.0);
    // Every signed request that verified used up its nonce: newAccount, newOrder, authz,
    // challenge, finalize, and the polls; the bogus nonce never verified.
    let redeemed = m.sum("cobble_nonces_redeemed_total", &[]);
    let posts_ok: f64 = m
        .find("cobble_http_requests_total", &[("method", "POST")])
        .iter()
        .filter(|s| s.labels["status"].starts_with('2'))
        .map(|s| s.value)
        .sum();
    assert_eq!(redeemed, posts_ok);
    assert!(m.sum("cobble_nonces_issued_total", &[]) >= redeemed);
    assert_eq!(
        m.sum("cobble_job_queue_depth", &[("queue", "issuance")]),
        0.0
    );
    assert!(m.sum("cobble_db_pool_connections", &[("state", "max")]) >= 1.0);
    s.stop().await;
}

#[test]
fn the_parser_refuses_what_prometheus_would() {
    let ok = "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\\\"q\"} 3\n";
    let e = parse(ok).unwrap();
    assert_eq!(e.samples[0].labels["k"], "v\"q");
    for bad in [
        "a_total 1\n",                    // no TYPE
        "# TYPE a counter\na{k=v} 1\n",   // unquoted
        "# TYPE a counter\na{k=\"v} 1\n", // unterminated
        "# TYPE a counter\na x\n",        // not a number
        "# TYPE 1a counter\n",            // bad name
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", // not cumulative
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\nh_sum 0\n", // +Inf != count
        "# TYPE h histogram\nh 1\n",                                         // bare histogram
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}

/// `cobble serve --log-format json`: one JSON object a line, carrying the request's span
/// fields (request id, account, order), the same request id in the response's
/// X-Request-Id, and an audit line for the issuance and for the revocation.
#[tokio::test]
async fn json_logs_carry_the_request_id() {
    use instant_acme::{
        AuthorizationStatus, ChallengeType, Identifier, NewOrder, RetryPolicy, RevocationRequest,
    };
    use std::io::{BufRead, BufReader, Read};
    common::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cobble"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "",
            "--va-always-valid",
            "--log-format",
            "json",
            "--log",
            "debug",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("COBBLE_DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = None;
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .take(10)
        .map_while(Result::ok)
    {
        if let Some(u) = line.trim().strip_prefix("directory:") {
            url = Some(u.trim().to_owned());
            break;
        }
    }
    let url = url.expect("the ready lines name the directory");
    let root = dir.path().join("tls/ca.pem");
    let http = common::client_trusting(&std::fs::read(&root).unwrap());
    let r = http.get(&url).send().await.unwrap();
    let id: u64 = r.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();

    // One order, issued and revoked, through instant-acme.
    let account = instant_acme::Account::builder_with_root(&root)
        .unwrap()
        .create(
            &instant_acme::NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            url.clone(),
            None,
        )
        .await
        .unwrap()
        .0;
    let retry = RetryPolicy::new()
        .initial_delay(std::time::Duration::from_millis(50))
        .timeout(std::time::Duration::from_secs(20));
    let mut order = account
        .new_order(&NewOrder::new(&[Identifier::Dns(
            "logs.example.com".into(),
        )]))
        .await
        .unwrap();
    let order_url = order.url().to_owned();
    let mut authzs = order.authorizations();
    while let Some(a) = authzs.next().await {
        let mut a = a.unwrap();
        if a.status != AuthorizationStatus::Valid {
            a.challenge(ChallengeType::Http01)
                .unwrap()
                .set_ready()
                .await
                .unwrap();
        }
    }
    order.poll_ready(&retry).await.unwrap();
    order.finalize().await.unwrap();
    let chain = order.poll_certificate(&retry).await.unwrap();
    let leaf = cobble_ca::pem::certificates(&chain).unwrap().remove(0);
    account
        .revoke(&RevocationRequest {
            certificate: &rustls::pki_types::CertificateDer::from(leaf),
            reason: None,
        })
        .await
        .unwrap();

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let _ = child.wait();
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["request_id"] == id && l["span"]["path"] == "/dir"),
        "no line of request {id}:\n{err}"
    );
    let order_id = order_url.rsplit('/').next().unwrap();
    let account_id = account.id().rsplit('/').next().unwrap();
    assert!(
        lines.iter().any(|l| l["span"]["order"] == order_id
            && l["span"]["account"] == account_id
            && l["span"]["request_id"].is_u64()),
        "no line whose request span names order {order_id} and account {account_id}:\n{err}"
    );
    for (audit, field, value) in [
        ("issuance", "order", order_id),
        ("revocation", "reason", "0"),
    ] {
        assert!(
            lines.iter().any(|l| l["fields"]["audit"] == audit
                && l["fields"][field].to_string().trim_matches('"') == value),
            "no {audit} audit line with {field} {value}:\n{err}"
        );
    }
}
