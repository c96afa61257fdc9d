//! RFC 8555 §7.3.5: account key change.

use super::util::raw_jws;
use crate::client::{Halt, Reply, Verdict};
use crate::ctx::{Account, Ctx};
use crate::ensure;
use cobble_core::sign::Signer;
use serde_json::{Value, json};

/// The inner JWS of a keyChange by `new` for account `a`, with `tweak` applied to
/// (protected header, payload) before signing.
fn inner(
    c: &Ctx,
    a: &Account,
    new: &Signer,
    tweak: impl FnOnce(&mut Value, &mut Value),
) -> Result<Value, Halt> {
    let url = c.url("keyChange")?;
    let mut h = json!({"alg": new.alg(), "jwk": new.public_key().to_jwk(), "url": url});
    let mut p = json!({"account": a.kid, "oldKey": a.key.public_key().to_jwk()});
    tweak(&mut h, &mut p);
    Ok(raw_jws(new, &h, Some(&p.to_string())))
}

async fn send(c: &Ctx, a: &Account, inner: &Value) -> Result<Reply, Halt> {
    let url = c.url("keyChange")?;
    c.signed(a, &url, Some(inner)).await
}

async fn refused(c: &Ctx, what: &str, tweak: impl FnOnce(&mut Value, &mut Value)) -> Verdict {
    let a = c.account().await?;
    let new = c.key();
    let j = inner(c, &a, &new, tweak)?;
    let r = send(c, &a, &j).await?;
    r.expect_problem(&["malformed", "unauthorized"], &[400, 401, 403], what)?;
    still_old_key(c, &a).await
}

async fn still_old_key(c: &Ctx, a: &Account) -> Verdict {
    let r = c.signed(a, &a.kid, None).await?;
    r.expect_status(&[200], "the old key after a refused key change")
}

pub async fn rollover(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let new = c.key();
    let j = inner(c, &a, &new, |_, _| {})?;
    let r = send(c, &a, &j).await?;
    r.expect_status(&[200], "a valid key change")?;
    let moved = Account {
        key: new,
        kid: a.kid.clone(),
        body: Value::Null,
    };
    let n = c.signed(&moved, &a.kid, None).await?;
    n.expect_status(&[200], "POST-as-GET signed with the new key")?;
    ensure!(
        n.body["key"].is_null() || n.body["key"] == moved.key.public_key().to_jwk(),
        &n,
        "the account's key is not the new key"
    );
    let o = c.signed(&a, &a.kid, None).await?;
    o.expect_problem(
        &["unauthorized", "malformed", "accountDoesNotExist"],
        &[400, 401, 403, 404],
        "a request signed with the replaced key",
    )
}

pub async fn inner_nonce(c: &Ctx) -> Verdict {
    let n = c.nonce().await?;
    refused(c, "an inner JWS carrying a nonce", |h, _| {
        h["nonce"] = json!(n)
    })
    .await
}

pub async fn inner_url(c: &Ctx) -> Verdict {
    let other = c.url("newOrder")?;
    refused(c, "an inner JWS whose url is not keyChange", |h, _| {
        h["url"] = json!(other)
    })
    .await
}

pub async fn inner_kid(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let new = c.key();
    let url = c.url("keyChange")?;
    let h = json!({"alg": new.alg(), "kid": a.kid, "url": url});
    let p = json!({"account": a.kid, "oldKey": a.key.public_key().to_jwk()});
    let r = send(c, &a, &raw_jws(&new, &h, Some(&p.to_string()))).await?;
    r.expect_problem(
        &["malformed", "unauthorized"],
        &[400, 401, 403],
        "an inner JWS with kid instead of jwk",
    )?;
    still_old_key(c, &a).await
}

pub async fn inner_signature(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let new = c.key();
    let mut j = inner(c, &a, &new, |_, _| {})?;
    let other = c.key();
    let sig = other.sign_raw(
        format!(
            "{}.{}",
            j["protected"].as_str().unwrap_or_default(),
            j["payload"].as_str().unwrap_or_default()
        )
        .as_bytes(),
    );
    j["signature"] = json!(cobble_core::b64::encode(sig));
    let r = send(c, &a, &j).await?;
    r.expect_problem(
        &["malformed", "unauthorized"],
        &[400, 401, 403],
        "an inner JWS not signed by its jwk",
    )?;
    still_old_key(c, &a).await
}

pub async fn wrong_old_key(c: &Ctx) -> Verdict {
    let stranger = c.key().public_key().to_jwk();
    refused(c, "oldKey that is not the account's key", |_, p| {
        p["oldKey"] = stranger
    })
    .await
}

pub async fn wrong_account(c: &Ctx) -> Verdict {
    let b = c.account().await?;
    refused(c, "account naming another account", |_, p| {
        p["account"] = json!(b.kid)
    })
    .await
}

async fn setup_key_in_use(c: &Ctx) -> Result<(Account, Account, Reply), Halt> {
    let a = c.account().await?;
    let b = c.account().await?;
    let url = c.url("keyChange")?;
    let h = json!({"alg": b.key.alg(), "jwk": b.key.public_key().to_jwk(), "url": url});
    let p = json!({"account": a.kid, "oldKey": a.key.public_key().to_jwk()});
    let r = send(c, &a, &raw_jws(&b.key, &h, Some(&p.to_string()))).await?;
    Ok((a, b, r))
}

pub async fn key_in_use(c: &Ctx) -> Verdict {
    let (a, _, r) = setup_key_in_use(c).await?;
    ensure!(
        !(200..300).contains(&r.status),
        &r,
        "a key change to a key another account holds was accepted"
    );
    still_old_key(c, &a).await
}

pub async fn key_in_use_409(c: &Ctx) -> Verdict {
    let (_, b, r) = setup_key_in_use(c).await?;
    r.expect_status(&[409], "a key change to a key another account holds")?;
    ensure!(
        r.location().as_deref() == Some(b.kid.as_str()),
        &r,
        "the 409 answer's Location is {:?}, not the account holding the key ({})",
        r.location(),
        b.kid
    );
    Ok(())
}
