//! RFC 8555 §7.3.4: External Account Binding.

use crate::client::{Halt, Reply, Verdict};
use crate::ctx::Ctx;
use crate::ensure;
use cobble_core::b64;
use cobble_core::sign::Signer;
use serde_json::{Value, json};

/// RFC 8555 §7.3.4 names no problem type for a bad binding: any refusal passes.
fn refused(r: &Reply, what: &str) -> Verdict {
    ensure!(
        [400, 401, 403].contains(&r.status) && r.problem_type().is_some(),
        r,
        "{what}: expected an ACME problem with status 400, 401 or 403"
    );
    Ok(())
}

async fn pair(c: &Ctx) -> Result<(String, Vec<u8>), Halt> {
    let Some((kid, hmac)) = c.eab_pair().await? else {
        return Err(Halt::Skip(
            "needs EAB credentials: --eab-kid and --eab-hmac-key, or --eab-cmd".into(),
        ));
    };
    let key = b64::decode(hmac.trim_end_matches('='))
        .or_else(|_| {
            b64::decode(
                &hmac
                    .trim_end_matches('=')
                    .replace('+', "-")
                    .replace('/', "_"),
            )
        })
        .map_err(|_| Halt::Skip("the EAB MAC key is not base64".into()))?;
    Ok((kid, key))
}

/// An EAB JWS over `jwk` with `url`, MACed with `mac_key`.
fn binding(kid: &str, url: &str, jwk: &Value, mac_key: &[u8]) -> Value {
    let protected = b64::encode(json!({"alg": "HS256", "kid": kid, "url": url}).to_string());
    let payload = b64::encode(jwk.to_string());
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, mac_key);
    let sig = ring::hmac::sign(&k, format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": b64::encode(sig.as_ref())})
}

/// newAccount for a fresh key with `eab` (None: without one).
async fn new_account(c: &Ctx, key: &Signer, eab: Option<Value>) -> Result<Reply, Halt> {
    let mut p = json!({"termsOfServiceAgreed": true});
    if let Some(e) = eab {
        p["externalAccountBinding"] = e;
    }
    c.signed_jwk(key, &c.url("newAccount")?, Some(&p)).await
}

pub async fn required(c: &Ctx) -> Verdict {
    if c.dir["meta"]["externalAccountRequired"] != true {
        return Err(Halt::NotApplicable(
            "the server does not require External Account Binding".into(),
        ));
    }
    let r = new_account(c, &c.key(), None).await?;
    r.expect_problem(
        &["externalAccountRequired"],
        &[400, 401, 403],
        "newAccount without externalAccountBinding where meta.externalAccountRequired is true",
    )
}

pub async fn success(c: &Ctx) -> Verdict {
    let (kid, mac) = pair(c).await?;
    let key = c.key();
    let url = c.url("newAccount")?;
    let e = binding(&kid, &url, &key.public_key().to_jwk(), &mac);
    let r = new_account(c, &key, Some(e)).await?;
    r.expect_status(&[201], "newAccount with a good External Account Binding")?;
    ensure!(
        r.body["status"] == "valid",
        &r,
        "the bound account is not valid"
    );
    Ok(())
}

pub async fn bad_mac(c: &Ctx) -> Verdict {
    let (kid, mut mac) = pair(c).await?;
    for b in mac.iter_mut() {
        *b ^= 0x5a;
    }
    let key = c.key();
    let url = c.url("newAccount")?;
    let e = binding(&kid, &url, &key.public_key().to_jwk(), &mac);
    let r = new_account(c, &key, Some(e)).await?;
    refused(&r, "an EAB MACed with the wrong key")
}

pub async fn other_key(c: &Ctx) -> Verdict {
    let (kid, mac) = pair(c).await?;
    let key = c.key();
    let url = c.url("newAccount")?;
    let e = binding(&kid, &url, &c.key().public_key().to_jwk(), &mac);
    let r = new_account(c, &key, Some(e)).await?;
    refused(&r, "an EAB binding a key other than the account's")
}

pub async fn url_mismatch(c: &Ctx) -> Verdict {
    let (kid, mac) = pair(c).await?;
    let key = c.key();
    let url = c.url("newOrder")?;
    let e = binding(&kid, &url, &key.public_key().to_jwk(), &mac);
    let r = new_account(c, &key, Some(e)).await?;
    refused(&r, "an EAB whose url is not the newAccount URL")
}
