//! `cobble load` as a library against an in-process Cobble (always-valid validation), on both
//! engines: a handful of orders with 2 clients complete, every step is measured and the JSON
//! report is whole. No timing is asserted.

mod common;

use cobble_load::{Limit, Options, Step};
use common::{Engine, TestServer};

async fn a_few_orders_with_two_clients(e: Engine) {
    let server = TestServer::start_with(
        e,
        |c| {
            c.va_always_valid = true;
            c.authz_reuse_percent = 0;
        },
        false,
    )
    .await;
    let opts = Options {
        clients: 2,
        limit: Limit::Orders(6),
        ca_bundle: Some(server.trust_root()),
        server_pids: vec![std::process::id()],
        stall_secs: 30,
        key_pool: 4,
        ..Options::new(server.directory_url.clone())
    };
    let report = cobble_load::run(opts, |_| {})
        .await
        .expect("the run starts");

    assert_eq!(report.orders_completed, 6, "{}", report.text());
    assert_eq!(report.orders_failed, 0, "{:?}", report.failure_examples);
    assert!(report.failures.is_empty());
    assert_eq!(report.stalled_secs, None);
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.order.count, 6);
    for step in [
        Step::NewOrder,
        Step::Authz,
        Step::Challenge,
        Step::PollAuthz,
        Step::PollOrderReady,
        Step::Finalize,
        Step::Certificate,
    ] {
        let m = report
            .steps
            .iter()
            .find(|(s, _)| *s == step)
            .map(|(_, m)| *m)
            .unwrap_or_else(|| panic!("no figures for {}", step.name()));
        assert_eq!(m.count, 6, "{}", step.name());
        assert!(m.p50_ms <= m.p90_ms && m.p90_ms <= m.p99_ms && m.p99_ms <= m.max_ms);
    }
    // At least newOrder, authz, challenge, one poll of each, finalize and the certificate.
    assert!(report.requests >= 6 * 7, "{} requests", report.requests);
    assert_eq!(report.servers.len(), 1);
    assert!(report.servers[0].rss_kib_after.unwrap_or(0) > 0);

    // What `cobble load` prints last: one JSON object with every figure.
    let text = format!("{}{}\n", report.text(), report.to_json());
    let last = text.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).expect("the last line is JSON");
    assert_eq!(v["orders_completed"], 6);
    assert_eq!(v["orders_failed"], 0);
    assert_eq!(v["clients"], 2);
    assert_eq!(v["stalled"], false);
    assert_eq!(v["order"]["count"], 6);
    assert!(v["orders_per_sec"].as_f64().unwrap() > 0.0);
    for step in [
        "new_order",
        "authz",
        "challenge",
        "poll_authz",
        "finalize",
        "certificate",
    ] {
        assert!(v["steps"][step]["p99_ms"].is_number(), "{step}: {v}");
    }
    assert!(v["servers"][0]["cpu_ms_per_order"].is_number(), "{v}");
    assert!(v["server_cpu_ms_per_order"].is_number(), "{v}");
    assert!(v["client_cpu_ms"].is_number());
}

both_engines!(a_few_orders_with_two_clients);
