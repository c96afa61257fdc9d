//! The mock DNS server, checked with hickory-resolver over UDP and TCP.

use crate::{Harness, WAIT};
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, net::NetError};
use serde_json::json;
use std::net::SocketAddr;

fn resolver(addr: SocketAddr, tcp: bool) -> Resolver<TokioRuntimeProvider> {
    let mut conn = if tcp {
        ConnectionConfig::tcp()
    } else {
        ConnectionConfig::udp()
    };
    conn.port = addr.port();
    let ns = NameServerConfig::new(addr.ip(), true, vec![conn]);
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    opts.timeout = WAIT;
    opts.attempts = 1;
    Resolver::builder_with_config(
        ResolverConfig::from_parts(None, vec![], vec![ns]),
        TokioRuntimeProvider::default(),
    )
    .with_options(opts)
    .build()
    .expect("resolver")
}

async fn lookup(
    r: &Resolver<TokioRuntimeProvider>,
    name: &str,
    t: RecordType,
) -> Result<Vec<RData>, NetError> {
    Ok(r.lookup(name, t)
        .await?
        .answers()
        .iter()
        .map(|rec| rec.data.clone())
        .collect())
}

fn texts(data: &[RData]) -> Vec<String> {
    data.iter()
        .filter_map(|d| match d {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|c| String::from_utf8_lossy(c))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn dns_answers_over_udp_and_tcp() {
    let h = Harness::start().await;
    let addr = h.srv.dns01_addr().unwrap();
    h.post(
        "/add-a",
        json!({"host": "a.example.test", "addresses": ["10.0.0.1", "10.0.0.2"]}),
    )
    .await;
    h.post(
        "/add-aaaa",
        json!({"Host": "a.example.test.", "Addresses": ["2001:db8::1"]}),
    )
    .await;
    h.post(
        "/set-txt",
        json!({"host": "_acme-challenge.example.test.", "value": "first"}),
    )
    .await;
    h.post(
        "/set-txt",
        json!({"host": "_ACME-challenge.Example.test", "value": "second"}),
    )
    .await;
    h.post(
        "/set-cname",
        json!({"host": "alias.example.test", "target": "a.example.test"}),
    )
    .await;

    for tcp in [false, true] {
        let r = resolver(addr, tcp);
        // A default for any other name, and the set records (case-insensitive, dot optional).
        let a = lookup(&r, "unknown.example.test.", RecordType::A)
            .await
            .unwrap();
        assert_eq!(a, vec![RData::A("127.0.0.1".parse().unwrap())], "tcp={tcp}");
        let aaaa = lookup(&r, "unknown.example.test.", RecordType::AAAA)
            .await
            .unwrap();
        assert_eq!(aaaa, vec![RData::AAAA("::1".parse().unwrap())], "tcp={tcp}");
        let a = lookup(&r, "A.Example.Test.", RecordType::A).await.unwrap();
        assert_eq!(
            a,
            vec![
                RData::A("10.0.0.1".parse().unwrap()),
                RData::A("10.0.0.2".parse().unwrap())
            ]
        );
        let aaaa = lookup(&r, "a.example.test.", RecordType::AAAA)
            .await
            .unwrap();
        assert_eq!(aaaa, vec![RData::AAAA("2001:db8::1".parse().unwrap())]);
        // TXT values accumulate.
        let txt = lookup(&r, "_acme-challenge.example.test.", RecordType::TXT)
            .await
            .unwrap();
        assert_eq!(texts(&txt), vec!["first", "second"], "tcp={tcp}");
        // CNAME: the alias and the target's records.
        let via = lookup(&r, "alias.example.test.", RecordType::A)
            .await
            .unwrap();
        assert!(
            via.contains(&RData::A("10.0.0.1".parse().unwrap())),
            "{via:?}"
        );
        let cname = lookup(&r, "alias.example.test.", RecordType::CNAME)
            .await
            .unwrap();
        assert!(
            matches!(&cname[0], RData::CNAME(c) if c.0.to_ascii() == "a.example.test."),
            "{cname:?}"
        );
        // No TXT: NOERROR with no records (never NXDOMAIN, as pebble-challtestsrv).
        let err = lookup(&r, "none.example.test.", RecordType::TXT)
            .await
            .unwrap_err();
        assert!(err.is_no_records_found() && !err.is_nx_domain(), "{err:?}");
    }

    // Clearing works; the default comes back for A.
    h.post("/clear-a", json!({"host": "a.example.test"})).await;
    h.post(
        "/clear-txt",
        json!({"host": "_acme-challenge.example.test."}),
    )
    .await;
    h.post("/set-default-ipv4", json!({"ip": "10.9.9.9"})).await;
    h.post("/set-default-ipv6", json!({"ip": ""})).await;
    let r = resolver(addr, false);
    let a = lookup(&r, "a.example.test.", RecordType::A).await.unwrap();
    assert_eq!(a, vec![RData::A("10.9.9.9".parse().unwrap())]);
    let err = lookup(&r, "other.example.test.", RecordType::AAAA)
        .await
        .unwrap_err();
    assert!(err.is_no_records_found(), "{err:?}");
    let err = lookup(&r, "_acme-challenge.example.test.", RecordType::TXT)
        .await
        .unwrap_err();
    assert!(err.is_no_records_found(), "{err:?}");
    h.srv.shutdown().await;
}

#[tokio::test]
async fn dns_caa_with_critical_issuewild_and_iodef() {
    let h = Harness::start().await;
    let r = resolver(h.srv.dns01_addr().unwrap(), false);
    h.post(
        "/add-caa",
        json!({"host": "caa.example.test", "policies": [
            {"tag": "issue", "value": "cobble.test; validationmethods=dns-01"},
            {"tag": "issuewild", "value": ";"},
            {"tag": "iodef", "value": "mailto:sec@example.test"},
            {"tag": "tbs", "value": "x", "flag": 128},
        ]}),
    )
    .await;
    let caa: Vec<_> = lookup(&r, "caa.example.test.", RecordType::CAA)
        .await
        .unwrap()
        .into_iter()
        .map(|d| match d {
            RData::CAA(c) => (
                c.issuer_critical,
                c.tag.clone(),
                String::from_utf8(c.value.clone()).unwrap(),
            ),
            other => panic!("not CAA: {other:?}"),
        })
        .collect();
    assert_eq!(
        caa,
        vec![
            (
                false,
                "issue".into(),
                "cobble.test; validationmethods=dns-01".into()
            ),
            (false, "issuewild".into(), ";".into()),
            (false, "iodef".into(), "mailto:sec@example.test".into()),
            (true, "tbs".into(), "x".into()),
        ]
    );
    h.post("/clear-caa", json!({"host": "caa.example.test"}))
        .await;
    let err = lookup(&r, "caa.example.test.", RecordType::CAA)
        .await
        .unwrap_err();
    assert!(err.is_no_records_found(), "{err:?}");
    h.srv.shutdown().await;
}

#[tokio::test]
async fn dns_servfail_and_history() {
    let h = Harness::start().await;
    let r = resolver(h.srv.dns01_addr().unwrap(), false);
    h.post("/set-servfail", json!({"host": "broken.example.test"}))
        .await;
    let err = lookup(&r, "broken.example.test.", RecordType::A)
        .await
        .unwrap_err();
    assert!(
        !err.is_no_records_found() && format!("{err:?}").contains("ServFail"),
        "{err:?}"
    );
    h.post("/clear-servfail", json!({"host": "broken.example.test"}))
        .await;
    assert!(
        lookup(&r, "broken.example.test.", RecordType::A)
            .await
            .is_ok()
    );

    let events = h
        .history("/dns-request-history", "broken.example.test")
        .await;
    // The resolver may ask again after SERVFAIL: at least both lookups are there.
    assert!(events.len() >= 2, "{events:?}");
    assert_eq!(
        events[0]["Question"],
        json!({"Name": "broken.example.test.", "Qtype": 1, "Qclass": 1})
    );
    h.post(
        "/clear-request-history",
        json!({"host": "broken.example.test", "type": "dns"}),
    )
    .await;
    assert!(
        h.history("/dns-request-history", "broken.example.test")
            .await
            .is_empty()
    );
    h.srv.shutdown().await;
}
