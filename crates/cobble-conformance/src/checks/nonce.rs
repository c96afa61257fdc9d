//! RFC 8555 §6.5 and §7.2: nonces.

use super::util::{kid_header, raw_jws};
use crate::client::{Verdict, fail_with, skip};
use crate::ctx::Ctx;
use crate::ensure;
use serde_json::json;
use std::time::Duration;

fn is_b64url(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub async fn head_200(c: &Ctx) -> Verdict {
    let r = c.head(&c.url("newNonce")?).await?;
    r.expect_status(&[200], "HEAD newNonce")?;
    ensure!(r.nonce().is_some(), &r, "no Replay-Nonce header");
    Ok(())
}

pub async fn get_204(c: &Ctx) -> Verdict {
    let r = c.get(&c.url("newNonce")?).await?;
    r.expect_status(&[204], "GET newNonce")?;
    ensure!(r.nonce().is_some(), &r, "no Replay-Nonce header");
    Ok(())
}

pub async fn cache_control(c: &Ctx) -> Verdict {
    let url = c.url("newNonce")?;
    for r in [c.head(&url).await?, c.get(&url).await?] {
        let cc = r
            .header("cache-control")
            .unwrap_or_default()
            .to_ascii_lowercase();
        ensure!(
            cc.split(',').any(|d| d.trim() == "no-store"),
            &r,
            "newNonce answered without Cache-Control: no-store (got {cc:?})"
        );
    }
    Ok(())
}

pub async fn syntax(c: &Ctx) -> Verdict {
    let r = c.head(&c.url("newNonce")?).await?;
    let n = r.nonce().unwrap_or_default();
    ensure!(is_b64url(&n), &r, "Replay-Nonce {n:?} is not base64url");
    Ok(())
}

pub async fn unique(c: &Ctx) -> Verdict {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        let r = c.head(&c.url("newNonce")?).await?;
        let n = r.nonce().unwrap_or_default();
        ensure!(
            seen.insert(n.clone()),
            &r,
            "nonce {n:?} was handed out twice"
        );
    }
    Ok(())
}

pub async fn post_as_get(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let r = c.signed(&a, &c.url("newNonce")?, None).await?;
    r.expect_status(&[200, 204], "POST-as-GET of newNonce")?;
    ensure!(r.nonce().is_some(), &r, "no Replay-Nonce header");
    Ok(())
}

pub async fn index_link(c: &Ctx) -> Verdict {
    let r = c.head(&c.url("newNonce")?).await?;
    let idx = r.links("index");
    ensure!(
        idx.contains(&c.opts.directory),
        &r,
        "newNonce has no Link rel=\"index\" to {} (got {idx:?})",
        c.opts.directory
    );
    Ok(())
}

pub async fn replay(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let n = c.nonce().await?;
    let first = c
        .post_jws(&a.kid, &a.key.sign_with_kid(&a.kid, &a.kid, &n, None))
        .await?;
    first.expect_status(&[200], "the first use of the nonce")?;
    let r = c
        .post_jws(&a.kid, &a.key.sign_with_kid(&a.kid, &a.kid, &n, None))
        .await?;
    r.expect_problem(&["badNonce"], &[400], "a replayed nonce")
}

pub async fn unknown(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let r = c
        .post_jws(
            &a.kid,
            &a.key
                .sign_with_kid(&a.kid, &a.kid, "bm90LWEtbm9uY2UtZnJvbS10aGlz", None),
        )
        .await?;
    r.expect_problem(&["badNonce"], &[400], "a nonce the server never issued")
}

pub async fn missing(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let h = json!({"alg": a.key.alg(), "kid": a.kid, "url": a.kid});
    let r = c.post_jws(&a.kid, &raw_jws(&a.key, &h, None)).await?;
    r.expect_problem(&["badNonce", "malformed"], &[400], "a JWS without a nonce")
}

pub async fn bad_nonce_fresh(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let r = c
        .post_jws(
            &a.kid,
            &raw_jws(
                &a.key,
                &kid_header(&a.key, &a.kid, &a.kid, "AAAAAAAAAAAAAAAAAAAAAA"),
                None,
            ),
        )
        .await?;
    r.expect_problem(&["badNonce"], &[400], "an unknown nonce")?;
    let Some(fresh) = r.nonce() else {
        return fail_with(
            &r,
            "the badNonce answer carries no Replay-Nonce for the retry",
        );
    };
    let retry = c
        .post_jws(&a.kid, &a.key.sign_with_kid(&a.kid, &a.kid, &fresh, None))
        .await?;
    retry.expect_status(&[200], "the retry with the nonce from the badNonce answer")
}

pub async fn success_carries_nonce(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let r = c.signed(&a, &a.kid, None).await?;
    r.expect_status(&[200], "POST-as-GET of the account")?;
    ensure!(
        r.nonce().is_some(),
        &r,
        "a successful POST answer without Replay-Nonce"
    );
    Ok(())
}

pub async fn error_carries_nonce(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let r = c
        .signed(
            &a,
            &c.url("newOrder")?,
            Some(&json!({"identifiers": "not-an-array"})),
        )
        .await?;
    ensure!(
        r.status >= 400,
        &r,
        "a newOrder with identifiers as a string was accepted"
    );
    ensure!(
        r.nonce().is_some(),
        &r,
        "an error answer to a POST without Replay-Nonce"
    );
    Ok(())
}

/// RFC 8555 §6.5: a nonce the server no longer accepts is refused with `badNonce`. Only with
/// `--nonce-wait` (the server's nonce lifetime): two nonces are fetched together; the first,
/// used at once, shows that nonces of that moment are accepted; the second, used after the
/// wait and one second more, must be refused.
pub async fn expired(c: &Ctx) -> Verdict {
    let Some(wait) = c.opts.nonce_wait_secs else {
        return skip(
            "needs --nonce-wait SECS (the server's nonce lifetime): an outside client cannot \
             tell when a nonce expires; nonce.unknown judges the same refusal",
        );
    };
    let a = c.account().await?;
    let fresh = c.nonce().await?;
    let old = c.nonce().await?;
    let first = c
        .post_jws(&a.kid, &a.key.sign_with_kid(&a.kid, &a.kid, &fresh, None))
        .await?;
    first.expect_status(
        &[200],
        "POST-as-GET of the account with a nonce used at once",
    )?;
    tokio::time::sleep(Duration::from_secs(wait + 1)).await;
    let r = c
        .post_jws(&a.kid, &a.key.sign_with_kid(&a.kid, &a.kid, &old, None))
        .await?;
    r.expect_problem(
        &["badNonce"],
        &[400],
        &format!(
            "a nonce left unused for {} s (--nonce-wait {wait})",
            wait + 1
        ),
    )
}
