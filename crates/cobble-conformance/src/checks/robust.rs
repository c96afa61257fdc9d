//! Robustness: malformed input gets a clean client error, never a server error or a cut-off
//! answer.

use crate::client::{Halt, Reply, Verdict, fail_with};
use crate::ctx::Ctx;
use crate::ensure;
use cobble_core::b64;
use serde_json::json;

/// A 4xx answer that is a complete problem document.
fn clean_refusal(r: &Reply, what: &str) -> Verdict {
    ensure!(
        (400..500).contains(&r.status),
        r,
        "{what}: expected a 4xx answer, got {}",
        r.status
    );
    ensure!(
        r.body["type"].is_string(),
        r,
        "{what}: the {} answer is not a complete problem document",
        r.status
    );
    Ok(())
}

pub async fn malformed_bodies(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let nonce = c.nonce().await?;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bad_utf8: Vec<u8> = vec![0xff, 0xfe, b'{', 0xc3, 0x28];
    let header_only = json!({"protected": b64::encode(json!({"alg": "ES256", "kid": a.kid, "url": a.kid, "nonce": nonce}).to_string())});
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("an empty body", Vec::new()),
        ("{}", b"{}".to_vec()),
        ("null", b"null".to_vec()),
        ("5000 nested arrays", deep.into_bytes()),
        ("invalid UTF-8", bad_utf8),
        (
            "a JWS without payload or signature",
            header_only.to_string().into_bytes(),
        ),
        (
            "protected that is not base64url",
            json!({"protected": "!!!", "payload": "", "signature": ""})
                .to_string()
                .into_bytes(),
        ),
        (
            "protected that is base64url of garbage",
            json!({"protected": b64::encode([0xff, 0, 1]), "payload": "", "signature": "AA"})
                .to_string()
                .into_bytes(),
        ),
    ];
    let mut urls = vec![
        c.url("newAccount")?,
        c.url("newOrder")?,
        c.url("revokeCert")?,
        c.url("keyChange")?,
        a.kid.clone(),
    ];
    urls.dedup();
    for url in &urls {
        for (what, body) in &bodies {
            let r = c
                .post_raw(&c.http, url, Some("application/jose+json"), body.clone())
                .await?;
            clean_refusal(&r, &format!("{what} to {url}"))?;
        }
    }
    Ok(())
}

async fn big_body(c: &Ctx, client: &reqwest::Client, want: reqwest::Version) -> Verdict {
    let url = c.url("newAccount")?;
    let big = json!({"protected": "A".repeat(2 * 1024 * 1024), "payload": "", "signature": ""});
    let r = c
        .post_raw(
            client,
            &url,
            Some("application/jose+json"),
            big.to_string().into_bytes(),
        )
        .await?;
    if r.version != want {
        return Err(Halt::Skip(format!(
            "the server answered over {:?}, not {want:?}",
            r.version
        )));
    }
    clean_refusal(&r, "a 2 MiB request body")?;
    ensure!(
        [400, 413].contains(&r.status),
        &r,
        "a 2 MiB request body should get 400 or 413, got {}",
        r.status
    );
    // The connection (HTTP/1.1) or the client (HTTP/2) must still work afterwards.
    let n = c
        .send(
            client.head(c.url("newNonce")?),
            format!("HEAD {} (after the big body)", c.url("newNonce")?),
        )
        .await?;
    n.expect_status(&[200, 204], "newNonce after the big body")
}

pub async fn big_body_http1(c: &Ctx) -> Verdict {
    big_body(c, &c.http1, reqwest::Version::HTTP_11).await
}

pub async fn big_body_http2(c: &Ctx) -> Verdict {
    big_body(c, &c.http, reqwest::Version::HTTP_2).await
}

pub async fn unknown_revoke(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec![c.name()]).expect("params");
    let cert = params.self_signed(&key).expect("self-signed");
    let r = c
        .signed(
            &a,
            &c.url("revokeCert")?,
            Some(&json!({"certificate": b64::encode(cert.der())})),
        )
        .await?;
    if r.status == 200 {
        return fail_with(
            &r,
            "the server claims to have revoked a certificate it never issued",
        );
    }
    clean_refusal(
        &r,
        "revoking a self-signed certificate the server never issued",
    )
}
