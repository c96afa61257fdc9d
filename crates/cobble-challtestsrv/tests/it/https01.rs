//! The https-01 responder: http-01 answers over HTTPS with a self-signed certificate, the
//! target of http-01 redirects to https, which it does not redirect again.

use crate::{Harness, WAIT};
use serde_json::json;
use x509_parser::prelude::{FromDer, X509Certificate};

#[tokio::test]
async fn https01_serves_tokens_over_tls_and_ends_redirects() {
    let h = Harness::start().await;
    let http = h.srv.http01_addr().unwrap();
    let https = h.srv.https01_addr().unwrap();
    h.post(
        "/add-http01",
        json!({"token": "tok2", "content": "tok2.thumb"}),
    )
    .await;
    // http -> https for the token path: the https listener must answer, not redirect again.
    let target = format!(
        "https://localhost:{}/.well-known/acme-challenge/tok2",
        https.port()
    );
    h.post(
        "/add-redirect",
        json!({"path": "/.well-known/acme-challenge/tok2", "targetURL": target}),
    )
    .await;

    // A validator's way: follow the redirect, accept the self-signed certificate.
    let client = reqwest::Client::builder()
        .timeout(WAIT)
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .resolve("localhost", https)
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .unwrap();
    let resp = client
        .get(format!("http://{http}/.well-known/acme-challenge/tok2"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.url().as_str(), target);
    assert_eq!(resp.status(), 200);
    let info = resp.extensions().get::<reqwest::tls::TlsInfo>().cloned();
    assert_eq!(resp.text().await.unwrap(), "tok2.thumb");

    // The certificate is pebble-challtestsrv's kind: self-signed, CN "challenge test server".
    let der = info.and_then(|i| i.peer_certificate().map(<[u8]>::to_vec));
    let der = der.expect("peer certificate");
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), cobble_challtestsrv::SELF_SIGNED_CN);
    assert_eq!(cert.subject(), cert.issuer());

    // Unknown tokens: an empty 200 over https too.
    let resp = client
        .get(format!(
            "https://localhost:{}/.well-known/acme-challenge/nope",
            https.port()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "");

    // Both requests over https are in the history, with HTTPS and the SNI name.
    let events = h.history("/http-request-history", "localhost").await;
    assert_eq!(events.len(), 2, "{events:?}");
    for e in &events {
        assert_eq!(e["HTTPS"], true, "{e}");
        assert_eq!(e["ServerName"], "localhost", "{e}");
    }
    let plain = h.history("/http-request-history", "127.0.0.1").await;
    assert_eq!(plain.len(), 1, "{plain:?}");
    assert_eq!(plain[0]["HTTPS"], false);

    // Plain HTTP spoken to the TLS port fails the handshake cleanly; the listener lives on.
    let bad = h
        .http
        .get(format!("http://{https}/.well-known/acme-challenge/tok2"))
        .send()
        .await;
    assert!(bad.is_err(), "{bad:?}");
    let resp = client.get(&target).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    h.srv.shutdown().await;
}
