//! RFC 8555 §7.5, §7.1.6 and §8: authorizations and challenges, answered through the
//! challenge test server.

use crate::client::{Halt, Verdict, fail_with};
use crate::ctx::{Account, Ctx};
use crate::ensure;
use crate::fixtures::{Order, dns_ids};
use serde_json::{Value, json};

async fn one(c: &Ctx) -> Result<(Account, Order, String), Halt> {
    let a = c.account().await?;
    let o = c.new_order(&a, dns_ids(&[c.name()])).await?;
    let az = o.body["authorizations"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((a, o, az))
}

pub async fn fields(c: &Ctx) -> Verdict {
    let (a, _, az) = one(c).await?;
    let r = c.signed(&a, &az, None).await?;
    r.expect_status(&[200], "POST-as-GET of the authorization")?;
    ensure!(
        r.body["status"] == "pending",
        &r,
        "a fresh authorization is not pending"
    );
    ensure!(
        r.body["identifier"]["type"] == "dns",
        &r,
        "identifier.type is not dns"
    );
    ensure!(
        r.body["expires"].is_string(),
        &r,
        "a pending authorization without expires"
    );
    let chs = r.body["challenges"].as_array().cloned().unwrap_or_default();
    ensure!(!chs.is_empty(), &r, "no challenges");
    for ch in &chs {
        ensure!(
            ch["type"].is_string()
                && ch["url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("https://"))
                && ch["status"] == "pending",
            &r,
            "a challenge without type, https url or pending status: {ch}"
        );
    }
    Ok(())
}

pub async fn token_syntax(c: &Ctx) -> Verdict {
    let (a, _, az) = one(c).await?;
    let r = c.signed(&a, &az, None).await?;
    for ch in r.body["challenges"].as_array().cloned().unwrap_or_default() {
        if !["http-01", "dns-01", "tls-alpn-01"].contains(&ch["type"].as_str().unwrap_or_default())
        {
            continue;
        }
        let t = ch["token"].as_str().unwrap_or_default();
        ensure!(
            t.len() >= 22
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            &r,
            "token {t:?} of {} is not base64url of at least 128 bits",
            ch["type"]
        );
    }
    Ok(())
}

pub async fn challenge_post_as_get(c: &Ctx) -> Verdict {
    let (a, _, az) = one(c).await?;
    let z = c.signed(&a, &az, None).await?;
    let ch = z.body["challenges"][0].clone();
    let url = ch["url"].as_str().unwrap_or_default().to_owned();
    let r = c.signed(&a, &url, None).await?;
    r.expect_status(&[200], "POST-as-GET of a challenge")?;
    ensure!(
        r.body["type"] == ch["type"] && r.body["status"] == "pending",
        &r,
        "not the pending challenge {ch}"
    );
    Ok(())
}

pub async fn other_account(c: &Ctx) -> Verdict {
    let (_, _, az) = one(c).await?;
    let b = c.account().await?;
    let r = c
        .signed(&b, &az, Some(&json!({"status": "deactivated"})))
        .await?;
    r.expect_problem(
        &["unauthorized", "malformed"],
        &[401, 403, 404],
        "deactivating another account's authorization",
    )
}

async fn validate(
    c: &Ctx,
    kind: &str,
    good: bool,
) -> Result<(Account, Order, Value, Option<crate::client::Reply>), Halt> {
    c.can_answer(kind)?;
    let (a, o, az) = one(c).await?;
    let (posted, done) = c.solve(&a, &az, kind, good).await?;
    Ok((a, o, done, posted))
}

async fn valid(c: &Ctx, kind: &str) -> Verdict {
    let (a, o, done, _) = validate(c, kind, true).await?;
    if done["status"] != "valid" {
        return crate::client::fail(format!(
            "{kind} answered correctly, but the authorization ended {}: {done}",
            done["status"]
        ));
    }
    let ch = done["challenges"]
        .as_array()
        .and_then(|v| v.iter().find(|x| x["type"] == kind))
        .cloned()
        .unwrap_or_default();
    ensure!(
        ch["status"] == "valid" && ch["validated"].is_string(),
        &c.signed(&a, &o.url, None).await?,
        "the {kind} challenge is not valid with a validated time: {ch}"
    );
    let r = c
        .poll(&a, &o.url, "the order", |b| b["status"] != "pending")
        .await?;
    ensure!(
        r.body["status"] == "ready",
        &r,
        "the order is not ready once its only authorization is valid"
    );
    Ok(())
}

async fn wrong(c: &Ctx, kind: &str) -> Verdict {
    let (a, o, done, _) = validate(c, kind, false).await?;
    let r = c.signed(&a, &o.url, None).await?;
    ensure!(
        done["status"] == "invalid",
        &r,
        "a wrong {kind} answer left the authorization {}: {done}",
        done["status"]
    );
    let ch = done["challenges"]
        .as_array()
        .and_then(|v| v.iter().find(|x| x["type"] == kind))
        .cloned()
        .unwrap_or_default();
    ensure!(
        ch["status"] == "invalid",
        &r,
        "the failed challenge is not invalid: {ch}"
    );
    let t = ch["error"]["type"].as_str().unwrap_or_default();
    let ok = ["unauthorized", "incorrectResponse", "dns", "tls"]
        .iter()
        .any(|k| t == format!("{}{k}", crate::client::ACME_ERROR));
    ensure!(
        ok,
        &r,
        "the failed challenge's error type is {t:?}, not unauthorized or incorrectResponse: {ch}"
    );
    Ok(())
}

pub async fn http01_valid(c: &Ctx) -> Verdict {
    valid(c, "http-01").await
}

pub async fn http01_wrong(c: &Ctx) -> Verdict {
    wrong(c, "http-01").await
}

pub async fn dns01_valid(c: &Ctx) -> Verdict {
    valid(c, "dns-01").await
}

pub async fn dns01_wrong(c: &Ctx) -> Verdict {
    wrong(c, "dns-01").await
}

pub async fn tlsalpn01_valid(c: &Ctx) -> Verdict {
    valid(c, "tls-alpn-01").await
}

pub async fn tlsalpn01_wrong(c: &Ctx) -> Verdict {
    wrong(c, "tls-alpn-01").await
}

pub async fn challenge_retry_after(c: &Ctx) -> Verdict {
    c.can_answer("http-01")?;
    let (a, _, az) = one(c).await?;
    let z = c.signed(&a, &az, None).await?;
    let ident = z.body["identifier"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let Some(ch) = z.body["challenges"]
        .as_array()
        .and_then(|v| v.iter().find(|x| x["type"] == "http-01"))
        .cloned()
    else {
        return Err(Halt::Skip("no http-01 challenge offered".into()));
    };
    let url = ch["url"].as_str().unwrap_or_default().to_owned();
    c.arrange(&a, &ident, &ch, true).await?;
    let mut answers = vec![c.signed(&a, &url, Some(&json!({}))).await?];
    for _ in 0..3 {
        let g = c.signed(&a, &url, None).await?;
        let settled = g.body["status"] != "processing" && g.body["status"] != "pending";
        answers.push(g);
        if settled {
            break;
        }
    }
    let _ = c
        .poll(&a, &az, "the authorization", |b| b["status"] != "pending")
        .await;
    c.unarrange(&ident, &ch).await;
    let mut seen = false;
    for r in &answers {
        if r.body["status"] == "processing" {
            seen = true;
            ensure!(
                r.header("retry-after").is_some(),
                r,
                "a challenge answer with status processing carries no Retry-After"
            );
        }
    }
    if !seen {
        return Err(Halt::NotApplicable(
            "no answer showed the challenge processing".into(),
        ));
    }
    Ok(())
}

pub async fn invalid_order_invalid(c: &Ctx) -> Verdict {
    let (a, o, _, _) = validate(c, "http-01", false).await?;
    let r = c
        .poll(&a, &o.url, "the order", |b| b["status"] != "pending")
        .await?;
    ensure!(
        r.body["status"] == "invalid",
        &r,
        "an order whose authorization failed is not invalid"
    );
    Ok(())
}

pub async fn retry_after(c: &Ctx) -> Verdict {
    c.can_answer("http-01")?;
    let (a, _, az) = one(c).await?;
    let z = c.signed(&a, &az, None).await?;
    let ident = z.body["identifier"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let Some(ch) = z.body["challenges"]
        .as_array()
        .and_then(|v| v.iter().find(|x| x["type"] == "http-01"))
        .cloned()
    else {
        return Err(Halt::Skip("no http-01 challenge offered".into()));
    };
    c.arrange(&a, &ident, &ch, true).await?;
    let r = c
        .signed(&a, ch["url"].as_str().unwrap_or_default(), Some(&json!({})))
        .await?;
    let polled = c.signed(&a, &az, None).await?;
    let _ = c
        .poll(&a, &az, "the authorization", |b| b["status"] != "pending")
        .await;
    c.unarrange(&ident, &ch).await;
    r.expect_status(&[200], "responding to the challenge")?;
    let mut seen_processing = false;
    let under_way = |b: &Value| {
        b["status"] == "processing"
            || b["challenges"]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x["status"] == "processing"))
    };
    for reply in [&r, &polled] {
        if under_way(&reply.body) {
            seen_processing = true;
            ensure!(
                reply.header("retry-after").is_some(),
                reply,
                "an answer showing the validation still under way carries no Retry-After"
            );
        }
    }
    if !seen_processing {
        return Err(Halt::NotApplicable(
            "validation finished before any answer showed it under way".into(),
        ));
    }
    Ok(())
}

pub async fn deactivate(c: &Ctx) -> Verdict {
    let (a, _, az) = one(c).await?;
    let r = c
        .signed(&a, &az, Some(&json!({"status": "deactivated"})))
        .await?;
    r.expect_status(&[200], "deactivating a pending authorization")?;
    ensure!(
        r.body["status"] == "deactivated",
        &r,
        "status is not deactivated"
    );
    let g = c.signed(&a, &az, None).await?;
    ensure!(
        g.body["status"] == "deactivated",
        &g,
        "the authorization did not stay deactivated"
    );
    Ok(())
}

pub async fn deactivated_order_invalid(c: &Ctx) -> Verdict {
    let (a, o, az) = one(c).await?;
    let r = c
        .signed(&a, &az, Some(&json!({"status": "deactivated"})))
        .await?;
    if r.status != 200 {
        return fail_with(&r, "prerequisite: deactivating the authorization");
    }
    let g = c.signed(&a, &o.url, None).await?;
    ensure!(
        g.body["status"] == "invalid",
        &g,
        "an order with a deactivated authorization is not invalid"
    );
    Ok(())
}
