//! Bad management requests: 400 with a message saying what was wrong, never a panic.

use crate::Harness;

#[tokio::test]
async fn bad_management_requests_are_400_with_a_reason() {
    let h = Harness::start().await;
    // (endpoint, body, fragment of the reason)
    let rows = [
        ("/add-a", "", "was empty"),
        ("/add-a", "{not json", "invalid JSON"),
        ("/add-a", "[]", "JSON object"),
        (
            "/add-a",
            r#"{"addresses":["1.2.3.4"]}"#,
            "\"host\" field is required",
        ),
        (
            "/add-a",
            r#"{"host":"a.test","addresses":[]}"#,
            "non-empty array",
        ),
        (
            "/add-a",
            r#"{"host":"a.test","addresses":["::1"]}"#,
            "not an IPv4 address",
        ),
        (
            "/add-aaaa",
            r#"{"host":"a.test","addresses":["1.2.3.4"]}"#,
            "not an IPv6 address",
        ),
        (
            "/set-default-ipv4",
            r#"{"ip":"nope"}"#,
            "not an IPv4 address",
        ),
        (
            "/set-txt",
            r#"{"host":"a.test"}"#,
            "\"value\" field is required",
        ),
        ("/set-txt", r#"{"host":7,"value":"v"}"#, "must be a string"),
        ("/clear-txt", "{}", "\"host\" field is required"),
        (
            "/add-caa",
            r#"{"host":"a.test","policies":[{"value":"x"}]}"#,
            "\"tag\" field is required",
        ),
        (
            "/add-caa",
            r#"{"host":"a.test","policies":[{"tag":"issue","flag":300}]}"#,
            "0 to 255",
        ),
        (
            "/set-cname",
            r#"{"host":"a.test"}"#,
            "\"target\" field is required",
        ),
        ("/set-servfail", "{}", "\"host\" field is required"),
        (
            "/add-http01",
            r#"{"token":"t"}"#,
            "\"content\" field is required",
        ),
        ("/del-http01", "{}", "\"token\" field is required"),
        (
            "/add-redirect",
            r#"{"path":"/x"}"#,
            "\"targetURL\" field is required",
        ),
        (
            "/add-tlsalpn01",
            r#"{"host":"a.test"}"#,
            "\"content\" field is required",
        ),
        ("/dns-request-history", "{}", "\"host\" field is required"),
        (
            "/clear-request-history",
            r#"{"host":"a.test","type":"ftp"}"#,
            "event type unknown",
        ),
        (
            "/clear-request-history",
            r#"{"type":"dns"}"#,
            "host parameter must not be empty",
        ),
    ];
    for (path, body, fragment) in rows {
        let (status, text) = h.post_raw(path, body).await;
        assert_eq!(status, 400, "{path} {body}: {text}");
        assert!(
            text.contains(fragment),
            "{path} {body}: {text:?} lacks {fragment:?}"
        );
    }
    // The server still answers after all of them.
    h.post(
        "/set-txt",
        serde_json::json!({"host": "a.test", "value": "ok"}),
    )
    .await;
    h.srv.shutdown().await;
}

#[tokio::test]
async fn in_process_state_is_what_the_api_sees() {
    let h = Harness::start().await;
    let s = h.srv.state();
    s.add_http01("tok", "tok.ka");
    let url = format!(
        "http://{}/.well-known/acme-challenge/tok",
        h.srv.http01_addr().unwrap()
    );
    let resp = h.http.get(url).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "tok.ka");
    h.post("/set-default-ipv4", serde_json::json!({"ip": ""}))
        .await;
    assert_eq!(s.default_ips(), (None, Some("::1".parse().unwrap())));
    h.srv.shutdown().await;
}
