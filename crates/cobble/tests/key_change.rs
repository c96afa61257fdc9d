//! keyChange (RFC 8555 §7.3.5) end to end, on SQLite and PostgreSQL.

mod common;

use cobble_core::jwk::Curve;
use cobble_core::sign::Signer;
use common::{Engine, TestServer};
use instant_acme::{Account, NewAccount};
use serde_json::{Value, json};

both_engines!(instant_acme_rolls_the_key_over, key_change_problems);

fn p256() -> Signer {
    Signer::generate_ec(Curve::P256).unwrap()
}

async fn instant_acme_rolls_the_key_over(e: Engine) {
    let s = TestServer::start(e).await;
    let (mut account, creds_before) = Account::builder_with_root(s.trust_root())
        .unwrap()
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            s.directory_url.clone(),
            None,
        )
        .await
        .unwrap();
    let id = account.id().rsplit('/').next().unwrap().to_owned();
    let thumb_before = s
        .running
        .as_ref()
        .unwrap()
        .store
        .account(&id)
        .await
        .unwrap()
        .unwrap()
        .key_thumbprint;
    let creds_after = account.update_key().await.expect("key change");
    let stored = s
        .running
        .as_ref()
        .unwrap()
        .store
        .account(&id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(stored.key_thumbprint, thumb_before);
    // The new key works; the old one is refused.
    account
        .update_contacts(&["mailto:new@example.com"])
        .await
        .expect("new key works");
    let old = Account::builder_with_root(s.trust_root())
        .unwrap()
        .from_credentials(creds_before)
        .await
        .unwrap();
    let err = old
        .update_contacts(&["mailto:old@example.com"])
        .await
        .unwrap_err();
    assert!(format!("{err}").contains("signature is invalid"), "{err}");
    let again = Account::builder_with_root(s.trust_root())
        .unwrap()
        .from_credentials(creds_after)
        .await
        .unwrap();
    assert_eq!(again.id(), account.id());
    s.stop().await;
}

/// The inner JWS of a key change, signed by `new`.
fn inner(new: &Signer, url: &str, account: &str, old_key: Value) -> Value {
    new.sign(
        json!({"jwk": new.public_key().to_jwk(), "url": url}),
        Some(&json!({"account": account, "oldKey": old_key})),
    )
}

async fn key_change_problems(e: Engine) {
    let s = TestServer::start(e).await;
    let url = s.url("/acme/key-change");
    let (old, new) = (p256(), p256());
    let kid = s.account(&old).await;
    let old_jwk = old.public_key().to_jwk();
    let send = |payload: Value| {
        let (s, old, kid, url) = (&s, &old, &kid, &url);
        async move { s.post_kid(old, kid, url, Some(&payload)).await }
    };
    // Inner JWS problems.
    send(json!({"not": "a jws"}))
        .await
        .assert_problem("malformed", 400, "inner JWS");
    // A signature that belongs to another payload.
    let mut forged = inner(&new, &url, &kid, old_jwk.clone());
    forged["signature"] = inner(&new, &url, &kid, json!({"x": 1}))["signature"].clone();
    send(forged)
        .await
        .assert_problem("malformed", 400, "inner JWS");
    send(inner(&new, &s.url("/acme/new-acct"), &kid, old_jwk.clone()))
        .await
        .assert_problem("malformed", 400, "differs from the outer");
    send(inner(
        &new,
        &url,
        &s.url("/acme/acct/someone-else"),
        old_jwk.clone(),
    ))
    .await
    .assert_problem("malformed", 400, "\"account\"");
    send(inner(&new, &url, &kid, p256().public_key().to_jwk()))
        .await
        .assert_problem("malformed", 400, "oldKey");
    send(inner(&old, &url, &kid, old_jwk.clone()))
        .await
        .assert_problem("malformed", 400, "current key");
    let by_kid = new.sign(
        json!({"kid": kid, "url": url}),
        Some(&json!({"account": kid, "oldKey": old_jwk})),
    );
    send(by_kid)
        .await
        .assert_problem("malformed", 400, "\"jwk\"");
    let weak = json!({"kty": "RSA", "n": cobble_core::b64::encode([0xC3u8; 128]), "e": "AQAB"});
    let mut weak_inner = inner(&new, &url, &kid, old_jwk.clone());
    weak_inner["protected"] = json!(common::b64json(
        &json!({"alg": "RS256", "jwk": weak, "url": url})
    ));
    send(weak_inner)
        .await
        .assert_problem("badPublicKey", 400, "1024 bits");
    // The outer JWS must use kid.
    let body = old.sign_with_jwk(
        &url,
        Some(&s.nonce().await),
        Some(&inner(&new, &url, &kid, old_jwk.clone())),
    );
    s.post(&url, &body)
        .await
        .assert_problem("malformed", 400, "\"kid\"");
    // A new key that another account holds: 409 with that account's Location.
    let taken = p256();
    let taken_kid = s.account(&taken).await;
    let r = send(inner(&taken, &url, &kid, old_jwk.clone())).await;
    r.assert_problem("malformed", 409, "already belongs");
    assert_eq!(r.location.as_deref(), Some(taken_kid.as_str()));
    // And a good one works; the old key is then refused.
    let r = send(inner(&new, &url, &kid, old_jwk.clone())).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["key"], new.public_key().to_jwk());
    s.post_kid(&old, &kid, &kid, None).await.assert_problem(
        "malformed",
        400,
        "signature is invalid",
    );
    assert_eq!(s.post_kid(&new, &kid, &kid, None).await.status, 200);
    s.stop().await;
}
