//! RFC 8555 §6.2-§6.4: request authentication.

use super::util::{jwk_header, kid_header, raw_jws};
use crate::client::{Verdict, fail_with};
use crate::ctx::Ctx;
use crate::ensure;
use cobble_core::b64;
use serde_json::json;

/// An algorithm refusal: RFC 8555 §6.2 names badSignatureAlgorithm; a server that refuses at
/// JWS parsing with malformed also rejects the request.
const BAD_ALG: &[&str] = &["badSignatureAlgorithm", "malformed"];

pub async fn content_type(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    for ctype in [Some("application/json"), Some("text/plain"), None] {
        let body = a.key.sign_with_kid(&a.kid, &a.kid, &c.nonce().await?, None);
        let r = c
            .post_raw(&c.http, &a.kid, ctype, body.to_string().into_bytes())
            .await?;
        r.expect_status(&[415], &format!("a JWS sent as {ctype:?}"))?;
    }
    Ok(())
}

pub async fn compact(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let j = a.key.sign_with_kid(&a.kid, &a.kid, &c.nonce().await?, None);
    let compact = format!(
        "{}.{}.{}",
        j["protected"].as_str().unwrap_or_default(),
        j["payload"].as_str().unwrap_or_default(),
        j["signature"].as_str().unwrap_or_default()
    );
    let r = c
        .post_raw(
            &c.http,
            &a.kid,
            Some("application/jose+json"),
            compact.into_bytes(),
        )
        .await?;
    r.expect_problem(&["malformed"], &[400], "a JWS in compact serialization")
}

pub async fn general(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let j = a.key.sign_with_kid(&a.kid, &a.kid, &c.nonce().await?, None);
    let g = json!({"payload": j["payload"], "signatures": [{"protected": j["protected"], "signature": j["signature"]}]});
    let r = c.post_jws(&a.kid, &g).await?;
    r.expect_problem(&["malformed"], &[400], "a JWS in general serialization")
}

pub async fn unprotected_header(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let mut j = a.key.sign_with_kid(&a.kid, &a.kid, &c.nonce().await?, None);
    j["header"] = json!({"x-conformance": 1});
    let r = c.post_jws(&a.kid, &j).await?;
    r.expect_problem(&["malformed"], &[400], "a JWS with an unprotected header")
}

async fn with_alg(c: &Ctx, alg: &str) -> Result<crate::client::Reply, crate::client::Halt> {
    let key = c.key();
    let url = c.url("newAccount")?;
    let mut h = jwk_header(&key, &url, &c.nonce().await?);
    h["alg"] = json!(alg);
    let payload = c.account_payload(&key, json!({})).await?.to_string();
    let mut j = raw_jws(&key, &h, Some(&payload));
    if alg == "none" {
        j["signature"] = json!("");
    }
    if alg == "HS256" {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"conformance-shared-secret");
        let input = format!(
            "{}.{}",
            j["protected"].as_str().unwrap_or_default(),
            j["payload"].as_str().unwrap_or_default()
        );
        j["signature"] = json!(b64::encode(ring::hmac::sign(&k, input.as_bytes()).as_ref()));
    }
    c.post_jws(&url, &j).await
}

pub async fn alg_none(c: &Ctx) -> Verdict {
    with_alg(c, "none")
        .await?
        .expect_problem(BAD_ALG, &[400], "alg \"none\"")
}

pub async fn alg_hs256(c: &Ctx) -> Verdict {
    with_alg(c, "HS256")
        .await?
        .expect_problem(BAD_ALG, &[400], "alg \"HS256\" (a MAC)")
}

pub async fn alg_unknown(c: &Ctx) -> Verdict {
    with_alg(c, "XX512")
        .await?
        .expect_problem(BAD_ALG, &[400], "an unknown alg")
}

pub async fn alg_key_mismatch(c: &Ctx) -> Verdict {
    with_alg(c, "RS256")
        .await?
        .expect_problem(BAD_ALG, &[400], "alg RS256 with an EC P-256 key")
}

pub async fn bad_alg_lists_algorithms(c: &Ctx) -> Verdict {
    let r = with_alg(c, "XX512").await?;
    if r.problem_type() != Some("badSignatureAlgorithm") {
        return Err(crate::client::Halt::NotApplicable(format!(
            "the server refused the unknown alg as {:?}, not badSignatureAlgorithm",
            r.problem_type()
        )));
    }
    ensure!(
        r.body["algorithms"]
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(|x| x.is_string())),
        &r,
        "a badSignatureAlgorithm problem without an \"algorithms\" array"
    );
    Ok(())
}

pub async fn jwk_and_kid(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let mut h = kid_header(&a.key, &a.kid, &a.kid, &c.nonce().await?);
    h["jwk"] = a.key.public_key().to_jwk();
    let r = c.post_jws(&a.kid, &raw_jws(&a.key, &h, None)).await?;
    r.expect_problem(&["malformed"], &[400], "a header with both jwk and kid")
}

pub async fn neither_jwk_nor_kid(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let h = json!({"alg": a.key.alg(), "url": a.kid, "nonce": c.nonce().await?});
    let r = c.post_jws(&a.kid, &raw_jws(&a.key, &h, None)).await?;
    r.expect_problem(&["malformed"], &[400], "a header with neither jwk nor kid")
}

pub async fn kid_on_new_account(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let url = c.url("newAccount")?;
    let payload = json!({"termsOfServiceAgreed": true});
    let r = c
        .post_jws(
            &url,
            &a.key
                .sign_with_kid(&a.kid, &url, &c.nonce().await?, Some(&payload)),
        )
        .await?;
    r.expect_problem(&["malformed"], &[400], "newAccount signed with kid")
}

pub async fn jwk_on_account_resource(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let url = c.url("newOrder")?;
    let payload = json!({"identifiers": [{"type": "dns", "value": c.name()}]});
    let r = c
        .post_jws(
            &url,
            &a.key
                .sign_with_jwk(&url, Some(&c.nonce().await?), Some(&payload)),
        )
        .await?;
    r.expect_problem(
        &["malformed", "unauthorized"],
        &[400, 401, 403],
        "newOrder signed with jwk",
    )
}

pub async fn url_missing(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let h = json!({"alg": a.key.alg(), "kid": a.kid, "nonce": c.nonce().await?});
    let r = c.post_jws(&a.kid, &raw_jws(&a.key, &h, None)).await?;
    r.expect_problem(&["malformed"], &[400], "a header without url")
}

pub async fn url_mismatch(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let other = c.url("newOrder")?;
    let r = c
        .post_jws(
            &a.kid,
            &a.key.sign_with_kid(&a.kid, &other, &c.nonce().await?, None),
        )
        .await?;
    r.expect_problem(
        &["unauthorized"],
        &[401, 403],
        "a header url naming another resource",
    )
}

pub async fn bad_signature(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let mut j = a.key.sign_with_kid(&a.kid, &a.kid, &c.nonce().await?, None);
    let mut sig = b64::decode(j["signature"].as_str().unwrap_or_default()).unwrap_or_default();
    if let Some(b) = sig.get_mut(5) {
        *b ^= 0x55;
    }
    j["signature"] = json!(b64::encode(sig));
    let r = c.post_jws(&a.kid, &j).await?;
    r.expect_problem(
        &["malformed", "unauthorized"],
        &[400, 401, 403],
        "a signature that does not verify",
    )
}

pub async fn payload_not_json(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let url = c.url("newOrder")?;
    let r = c
        .post_jws(
            &url,
            &raw_jws(
                &a.key,
                &kid_header(&a.key, &a.kid, &url, &c.nonce().await?),
                Some("{not json"),
            ),
        )
        .await?;
    r.expect_problem(&["malformed"], &[400], "a payload that is not JSON")
}

pub async fn payload_not_object(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let url = c.url("newOrder")?;
    for p in ["[]", "\"text\"", "42", "null"] {
        let r = c
            .post_jws(
                &url,
                &raw_jws(
                    &a.key,
                    &kid_header(&a.key, &a.kid, &url, &c.nonce().await?),
                    Some(p),
                ),
            )
            .await?;
        r.expect_problem(
            &["malformed"],
            &[400],
            &format!("a newOrder payload of {p}"),
        )?;
    }
    Ok(())
}

pub async fn unknown_kid(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let bogus = format!("{}x0conformance0unknown", a.kid);
    let r = c
        .post_jws(
            &a.kid,
            &raw_jws(
                &a.key,
                &kid_header(&a.key, &bogus, &a.kid, &c.nonce().await?),
                None,
            ),
        )
        .await?;
    r.expect_problem(
        &["accountDoesNotExist", "unauthorized", "malformed"],
        &[400, 401, 403, 404],
        "a kid naming no account",
    )
}

pub async fn get_refused(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let order = c
        .new_order(&a, json!([{"type": "dns", "value": c.name()}]))
        .await?;
    let authz = order.body["authorizations"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for url in [a.kid.clone(), order.url.clone(), authz] {
        let r = c.get(&url).await?;
        if r.status != 405 {
            return fail_with(
                &r,
                format!(
                    "GET {url}: expected 405 (POST-as-GET only), got {}",
                    r.status
                ),
            );
        }
        if r.body.get("type").is_some() {
            r.expect_problem(&["malformed"], &[405], "GET of a POST-as-GET resource")?;
        }
    }
    Ok(())
}
