//! The validation address policy through the whole server: `ip` identifiers at newOrder
//! and every validation hop follow one policy, under `--va-allow-private` and
//! `--va-deny-loopback`. Traffic goes to loopback only; refused addresses are never contacted.

mod common;

use cobble_challtestsrv::EventKind;
use cobble_core::challenge::key_authorization;
use cobble_core::jwk::Curve;
use cobble_core::sign::Signer;
use cobble_server::config::ServerConfig;
use common::{Engine, TestServer, ValidationEnv, poll_until};
use serde_json::{Value, json};

fn p256() -> Signer {
    Signer::generate_ec(Curve::P256).unwrap()
}

/// newOrder with one `ip` identifier, under each setting: accepted, or `rejectedIdentifier`
/// with one subproblem naming the identifier, its class and RFC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_identifiers_follow_the_address_policy() {
    type Tweak = fn(&mut ServerConfig);
    let settings: [(&str, Tweak); 3] = [
        ("default", |_| {}),
        ("allow-private", |c| c.va_allow_private = true),
        ("deny-loopback", |c| c.va_deny_loopback = true),
    ];
    // (ip, accepted under default, allow-private, deny-loopback; detail fragment when refused)
    let rows: &[(&str, [bool; 3], &str)] = &[
        (
            "127.0.0.1",
            [true, true, false],
            "127.0.0.1 is a loopback address",
        ),
        ("::1", [true, true, false], "::1 is a loopback address"),
        (
            "10.0.0.5",
            [false, true, false],
            "10.0.0.5 is a private address (RFC 1918)",
        ),
        (
            "fd00::1",
            [false, true, false],
            "fd00::1 is a unique local address (RFC 4193)",
        ),
        ("100.64.0.1", [false, true, false], "carrier-grade NAT"),
        (
            "169.254.169.254",
            [false, false, false],
            "169.254.169.254 is a link-local address (RFC 3927)",
        ),
        (
            "fe80::1",
            [false, false, false],
            "fe80::1 is a link-local address",
        ),
        (
            "192.0.2.1",
            [false, false, false],
            "documentation address (RFC 5737)",
        ),
        (
            "::ffff:10.0.0.5",
            [false, true, false],
            "IPv4-mapped 10.0.0.5",
        ),
        ("8.8.8.8", [true, true, true], ""),
    ];
    for (i, (setting, tweak)) in settings.iter().enumerate() {
        let s = TestServer::start_with(Engine::Sqlite, tweak, false).await;
        let k = p256();
        let kid = s.account(&k).await;
        for (ip, accepted, fragment) in rows {
            let r = s
                .post_kid(
                    &k,
                    &kid,
                    &s.url("/acme/new-order"),
                    Some(&json!({"identifiers": [{"type": "ip", "value": ip}]})),
                )
                .await;
            if accepted[i] {
                assert_eq!(r.status, 201, "{setting} {ip}: {r:?}");
                continue;
            }
            r.assert_problem("rejectedIdentifier", 400, fragment);
            let sub = &r.body["subproblems"];
            assert_eq!(
                sub.as_array().map(Vec::len),
                Some(1),
                "{setting} {ip}: {r:?}"
            );
            assert_eq!(sub[0]["identifier"], json!({"type": "ip", "value": ip}));
        }
        s.stop().await;
    }
}

/// Orders `name`, lets `setup(token, key authorization)` arrange the responders, answers the
/// http-01 challenge and returns the challenge's error once the authorization is invalid.
async fn http01_error(env: &ValidationEnv, name: &str, setup: impl FnOnce(&str, &str)) -> Value {
    let (s, k) = (&env.server, p256());
    let kid = s.account(&k).await;
    let r = s
        .post_kid(
            &k,
            &kid,
            &s.url("/acme/new-order"),
            Some(&json!({"identifiers": [{"type": "dns", "value": name}]})),
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
        .cloned()
        .unwrap();
    let token = ch["token"].as_str().unwrap();
    setup(
        token,
        &key_authorization(token, &k.public_key().thumbprint()),
    );
    s.post_kid(&k, &kid, ch["url"].as_str().unwrap(), Some(&json!({})))
        .await;
    let a = poll_until(s, &k, &kid, &authz_url, |a| a["status"] != "pending").await;
    assert_eq!(a["status"], "invalid", "{name}: {a}");
    a["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "http-01")
        .unwrap()["error"]
        .clone()
}

#[track_caller]
fn assert_connection(err: &Value, fragment: &str) {
    assert_eq!(
        err["type"], "urn:ietf:params:acme:error:connection",
        "{err}"
    );
    let detail = err["detail"].as_str().unwrap();
    assert!(detail.contains(fragment), "{fragment:?} not in {err}");
    assert!(
        !detail.contains("Timeout"),
        "a connection was attempted: {err}"
    );
}

/// By default a redirect to a private or metadata address, or a name resolving to one,
/// fails the challenge with `connection` before any connection to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_addresses_fail_the_challenge_at_every_hop() {
    let env = ValidationEnv::start(Engine::Sqlite, |_| {}).await;
    let st = env.chall.state();
    let err = http01_error(&env, "redirect.example.com", |t, ka| {
        let path = format!("/.well-known/acme-challenge/{t}");
        st.add_http01(t, ka);
        st.add_redirect(&path, &format!("http://10.0.0.1{path}"));
    })
    .await;
    assert_connection(&err, "10.0.0.1 is a private address (RFC 1918)");
    // The responder saw the first hop only.
    let hops = st.request_history("redirect.example.com", EventKind::Http);
    assert_eq!(hops.len(), 1, "{hops:?}");
    let err = http01_error(&env, "metadata.example.com", |t, ka| {
        st.add_http01(t, ka);
        st.add_a(
            "metadata.example.com",
            &["169.254.169.254".parse().unwrap()],
        );
    })
    .await;
    assert_connection(&err, "169.254.169.254 is a link-local address (RFC 3927)");
    env.stop().await;
}

/// `--va-deny-loopback`: a challenge whose name resolves to 127.0.0.1 fails, although the
/// responder there holds the right key authorization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_loopback_refuses_validation_against_loopback() {
    let env = ValidationEnv::start(Engine::Sqlite, |c| c.va_deny_loopback = true).await;
    let st = env.chall.state();
    let err = http01_error(&env, "loopback.example.com", |t, ka| st.add_http01(t, ka)).await;
    assert_connection(&err, "127.0.0.1 is a loopback address");
    assert!(
        st.request_history("loopback.example.com", EventKind::Http)
            .is_empty(),
        "the responder was contacted"
    );
    env.stop().await;
}
