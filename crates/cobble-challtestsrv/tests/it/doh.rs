//! DNS over HTTPS (RFC 8484) over GET and POST, answering from the mock records; bad
//! requests get a problem document with 400, 405, 413 or 415.

use crate::{Harness, WAIT};
use base64::Engine;
use cobble_challtestsrv::{ChalltestConfig, TlsFiles};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::{Value, json};

const DNS_MESSAGE: &str = "application/dns-message";

fn query(name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::new(0, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(hickory_proto::op::Query::query(
        Name::from_ascii(name).unwrap(),
        t,
    ));
    m.to_vec().unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .danger_accept_invalid_certs(true)
        .user_agent("doh-test/1")
        .build()
        .unwrap()
}

async fn answer(resp: reqwest::Response) -> Message {
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], DNS_MESSAGE);
    Message::from_vec(&resp.bytes().await.unwrap()).expect("a DNS message")
}

async fn problem(resp: reqwest::Response, status: u16, fragment: &str) {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains(fragment),
        "{fragment:?} in {body}"
    );
}

#[tokio::test]
async fn doh_answers_get_and_post_from_the_mock_records() {
    let h = Harness::start().await;
    let base = format!("https://{}/dns-query", h.srv.doh_addr().unwrap());
    h.post(
        "/set-txt",
        json!({"host": "_acme-challenge.doh.test.", "value": "digest-1"}),
    )
    .await;
    h.post(
        "/add-a",
        json!({"host": "doh.test.", "addresses": ["10.0.0.7"]}),
    )
    .await;
    let c = client();

    // GET: base64url without padding (RFC 8484 §4.1).
    let q = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(query("_acme-challenge.doh.test.", RecordType::TXT));
    let m = answer(c.get(format!("{base}?dns={q}")).send().await.unwrap()).await;
    assert_eq!(m.metadata.message_type, MessageType::Response);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let texts: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(t.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["digest-1"]);

    // POST, on another path: any path answers, as pebble-challtestsrv.
    let resp = c
        .post(format!("https://{}/", h.srv.doh_addr().unwrap()))
        .header("content-type", DNS_MESSAGE)
        .body(query("doh.test.", RecordType::A))
        .send()
        .await
        .unwrap();
    let m = answer(resp).await;
    let ips: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    assert_eq!(ips, ["10.0.0.7"]);
    assert_eq!(m.queries.len(), 1);

    // An unsupported type: NOTIMP inside a 200, as over UDP.
    let resp = c
        .post(&base)
        .header("content-type", DNS_MESSAGE)
        .body(query("doh.test.", RecordType::MX))
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer(resp).await.metadata.response_code,
        ResponseCode::NotImp
    );

    // The history holds the questions with the client's User-Agent.
    let events = h.history("/dns-request-history", "doh.test").await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["UserAgent"], "doh-test/1");
    assert_eq!(events[0]["Question"]["Qtype"], 1);

    // Bad requests: a clean problem document each, never a crash.
    problem(
        c.get(&base).send().await.unwrap(),
        400,
        "dns query parameter",
    )
    .await;
    problem(
        c.get(format!("{base}?dns=%%%")).send().await.unwrap(),
        400,
        "not base64url",
    )
    .await;
    problem(
        c.get(format!("{base}?dns=AAEC")).send().await.unwrap(),
        400,
        "not a DNS message",
    )
    .await;
    // A long parameter (a URI near http's limit; the 413 past 65535 bytes is unit-tested):
    // refused cleanly, by the handler (400, not a DNS message) or by hyper (414/431).
    let long = "A".repeat(60_000);
    let resp = c.get(format!("{base}?dns={long}")).send().await.unwrap();
    let status = resp.status().as_u16();
    assert!([400, 414, 431].contains(&status), "{status}");
    problem(
        c.post(&base)
            .header("content-type", "application/json")
            .body(query("doh.test.", RecordType::A))
            .send()
            .await
            .unwrap(),
        415,
        DNS_MESSAGE,
    )
    .await;
    problem(
        c.post(&base).body(vec![0u8; 12]).send().await.unwrap(),
        415,
        DNS_MESSAGE,
    )
    .await;
    problem(
        c.post(&base)
            .header("content-type", DNS_MESSAGE)
            .body(vec![0u8; 70_000])
            .send()
            .await
            .unwrap(),
        413,
        "65535",
    )
    .await;
    let mut response = Message::new(7, MessageType::Response, OpCode::Query);
    response.add_query(hickory_proto::op::Query::query(
        Name::from_ascii("doh.test.").unwrap(),
        RecordType::A,
    ));
    problem(
        c.post(&base)
            .header("content-type", DNS_MESSAGE)
            .body(response.to_vec().unwrap())
            .send()
            .await
            .unwrap(),
        400,
        "not a query",
    )
    .await;
    let resp = c.put(&base).send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "GET, POST");
    problem(resp, 405, "RFC 8484").await;
    // Still serving after all that.
    let m = answer(c.get(format!("{base}?dns={q}")).send().await.unwrap()).await;
    assert_eq!(m.answers.len(), 1);
    h.srv.shutdown().await;
}

#[tokio::test]
async fn doh_uses_the_certificate_it_is_given() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("cobble-doh-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["doh.localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let files = TlsFiles {
        cert: dir.join("doh.pem"),
        key: dir.join("doh-key.pem"),
    };
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();

    let cfg = ChalltestConfig {
        doh_tls: Some(files.clone()),
        ..ChalltestConfig::loopback_ephemeral()
    };
    let srv = cobble_challtestsrv::start(cfg).await.expect("start");
    let doh = srv.doh_addr().unwrap();
    // A client that trusts only that certificate and checks the name.
    let c = reqwest::Client::builder()
        .timeout(WAIT)
        .tls_certs_only([reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap()])
        .resolve("doh.localhost", doh)
        .build()
        .unwrap();
    let resp = c
        .post(format!("https://doh.localhost:{}/dns-query", doh.port()))
        .header("content-type", DNS_MESSAGE)
        .body(query("any.test.", RecordType::A))
        .send()
        .await
        .unwrap();
    let m = answer(resp).await;
    assert_eq!(m.answers[0].data.to_string(), "127.0.0.1");
    srv.shutdown().await;

    // A missing or empty file is an error at start, naming the file.
    std::fs::write(&files.cert, "").unwrap();
    let cfg = ChalltestConfig {
        doh_tls: Some(files.clone()),
        ..ChalltestConfig::loopback_ephemeral()
    };
    let err = cobble_challtestsrv::start(cfg)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("doh.pem"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
