//! The http-01 responder and its redirects.

use crate::Harness;
use serde_json::json;

#[tokio::test]
async fn http01_serves_key_authorizations_and_redirects() {
    let h = Harness::start().await;
    let base = format!("http://{}", h.srv.http01_addr().unwrap());
    h.post(
        "/add-http01",
        json!({"token": "tok1", "content": "tok1.thumb"}),
    )
    .await;
    h.post("/add-redirect", json!({"path": "/.well-known/acme-challenge/moved", "targetURL": "http://elsewhere.test/ok"})).await;

    let resp = h
        .http
        .get(format!("{base}/.well-known/acme-challenge/tok1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "tok1.thumb");

    let resp = h
        .http
        .get(format!("{base}/.well-known/acme-challenge/unknown"))
        .send()
        .await
        .unwrap();
    // As pebble-challtestsrv: 200 with an empty body.
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "");

    let resp = h
        .http
        .get(format!("{base}/.well-known/acme-challenge/moved"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "http://elsewhere.test/ok");

    // Deleting stops serving.
    h.post("/del-http01", json!({"token": "tok1"})).await;
    h.post(
        "/del-redirect",
        json!({"path": "/.well-known/acme-challenge/moved"}),
    )
    .await;
    for path in ["tok1", "moved"] {
        let resp = h
            .http
            .get(format!("{base}/.well-known/acme-challenge/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.text().await.unwrap(), "", "{path}");
    }

    // History is filed under the Host header without its port.
    let events = h.history("/http-request-history", "127.0.0.1").await;
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(events[0]["URL"], "/.well-known/acme-challenge/tok1");
    assert_eq!(events[0]["HTTPS"], false);
    h.post(
        "/clear-request-history",
        json!({"host": "127.0.0.1", "type": "http"}),
    )
    .await;
    assert!(
        h.history("/http-request-history", "127.0.0.1")
            .await
            .is_empty()
    );
    h.srv.shutdown().await;
}
