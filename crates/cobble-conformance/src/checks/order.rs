//! RFC 8555 §7.4 and RFC 8738: orders and identifiers.

use crate::client::{Halt, Reply, Verdict};
use crate::ctx::{Account, Ctx};
use crate::ensure;
use crate::fixtures::dns_ids;
use serde_json::{Value, json};

const REFUSED_ID: &[&str] = &["rejectedIdentifier", "malformed", "unsupportedIdentifier"];

async fn post_order(c: &Ctx, a: &Account, payload: Value) -> Result<Reply, Halt> {
    c.signed(a, &c.url("newOrder")?, Some(&payload)).await
}

pub async fn create(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let name = c.name();
    let r = post_order(
        c,
        &a,
        json!({"identifiers": dns_ids(std::slice::from_ref(&name))}),
    )
    .await?;
    r.expect_status(&[201], "newOrder")?;
    ensure!(r.location().is_some(), &r, "201 without Location");
    ensure!(
        r.body["status"] == "pending",
        &r,
        "a new order for a fresh name is not pending"
    );
    Ok(())
}

pub async fn fields(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let names = vec![c.name(), c.name()];
    let o = c.new_order(&a, dns_ids(&names)).await?;
    let r = c.signed(&a, &o.url, None).await?;
    let b = &r.body;
    ensure!(b["status"].is_string(), &r, "no status");
    ensure!(
        b["expires"].is_string(),
        &r,
        "a pending order without expires"
    );
    ensure!(
        b["finalize"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://")),
        &r,
        "no finalize URL"
    );
    let got: Vec<&str> = b["identifiers"]
        .as_array()
        .map(|v| v.iter().filter_map(|i| i["value"].as_str()).collect())
        .unwrap_or_default();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
    want.sort();
    ensure!(
        got_sorted == want,
        &r,
        "identifiers {got:?} are not the ones ordered {want:?}"
    );
    ensure!(
        b["authorizations"]
            .as_array()
            .is_some_and(|v| v.len() == 2 && v.iter().all(|u| u.is_string())),
        &r,
        "expected two authorization URLs"
    );
    Ok(())
}

pub async fn post_as_get(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let o = c.new_order(&a, dns_ids(&[c.name()])).await?;
    let r = c.signed(&a, &o.url, None).await?;
    r.expect_status(&[200], "POST-as-GET of the order")?;
    ensure!(
        r.body["finalize"] == o.body["finalize"],
        &r,
        "not the same order"
    );
    Ok(())
}

pub async fn empty_identifiers(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let r = post_order(c, &a, json!({"identifiers": []})).await?;
    r.expect_problem(REFUSED_ID, &[400], "newOrder with no identifiers")
}

pub async fn missing_identifiers(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let r = post_order(c, &a, json!({})).await?;
    r.expect_problem(
        &["malformed"],
        &[400],
        "newOrder without an identifiers field",
    )
}

pub async fn unsupported_type(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let r = post_order(
        c,
        &a,
        json!({"identifiers": [{"type": "conformance-x", "value": "x"}]}),
    )
    .await?;
    r.expect_problem(
        &["unsupportedIdentifier", "rejectedIdentifier", "malformed"],
        &[400, 403],
        "an identifier of an unknown type",
    )
}

fn bad_name(c: &Ctx) -> String {
    format!("bad_name!{}", c.name())
}

pub async fn rejected_name(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let r = post_order(
        c,
        &a,
        json!({"identifiers": [{"type": "dns", "value": bad_name(c)}]}),
    )
    .await?;
    r.expect_problem(
        REFUSED_ID,
        &[400, 403],
        "a dns identifier that is not a domain name",
    )
}

async fn two_bad(c: &Ctx) -> Result<(Reply, Vec<String>), Halt> {
    let a = c.account().await?;
    let bad = vec![bad_name(c), format!("-{}", c.name())];
    let mut ids = vec![json!({"type": "dns", "value": c.name()})];
    ids.extend(bad.iter().map(|n| json!({"type": "dns", "value": n})));
    let r = post_order(c, &a, json!({"identifiers": ids})).await?;
    r.expect_problem(
        &[
            "rejectedIdentifier",
            "malformed",
            "compound",
            "unsupportedIdentifier",
        ],
        &[400, 403],
        "an order with two malformed names",
    )?;
    Ok((r, bad))
}

pub async fn subproblems(c: &Ctx) -> Verdict {
    let (r, bad) = two_bad(c).await?;
    let Some(subs) = r.body["subproblems"].as_array() else {
        return Err(Halt::NotApplicable(
            "the server reports the refusal without subproblems".into(),
        ));
    };
    for s in subs {
        ensure!(
            s["identifier"]["type"].is_string() && s["identifier"]["value"].is_string(),
            &r,
            "a subproblem without an identifier object: {s}"
        );
        ensure!(
            s["type"]
                .as_str()
                .is_some_and(|t| t.starts_with(crate::client::ACME_ERROR)),
            &r,
            "a subproblem without an ACME error type: {s}"
        );
    }
    for b in &bad {
        ensure!(
            subs.iter().any(|s| s["identifier"]["value"] == *b),
            &r,
            "no subproblem names the refused identifier {b:?}"
        );
    }
    Ok(())
}

pub async fn no_top_level_identifier(c: &Ctx) -> Verdict {
    let (r, _) = two_bad(c).await?;
    ensure!(
        r.body.get("identifier").is_none(),
        &r,
        "the top-level problem carries \"identifier\", which belongs in subproblems"
    );
    Ok(())
}

pub async fn wildcard(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let base = c.name();
    let r = post_order(
        c,
        &a,
        json!({"identifiers": [{"type": "dns", "value": format!("*.{base}")}]}),
    )
    .await?;
    if r.status != 201
        && matches!(
            r.problem_type(),
            Some("rejectedIdentifier" | "unsupportedIdentifier")
        )
    {
        return Err(Halt::Skip(format!(
            "the server does not issue wildcards here: {}",
            r.body["detail"]
        )));
    }
    r.expect_status(&[201], "newOrder for a wildcard")?;
    let az = r.body["authorizations"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let z = c.signed(&a, &az, None).await?;
    z.expect_status(&[200], "POST-as-GET of the wildcard's authorization")?;
    ensure!(
        z.body["wildcard"] == true,
        &z,
        "the authorization lacks \"wildcard\": true"
    );
    ensure!(
        z.body["identifier"]["value"] == base.as_str(),
        &z,
        "the authorization's identifier should be {base:?}, without \"*.\""
    );
    ensure!(
        z.body["challenges"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "dns-01")),
        &z,
        "a wildcard authorization without dns-01"
    );
    Ok(())
}

async fn ip_order(c: &Ctx) -> Result<(Account, Reply), Halt> {
    let a = c.account().await?;
    let r = post_order(
        c,
        &a,
        json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]}),
    )
    .await?;
    if r.status != 201
        && matches!(
            r.problem_type(),
            Some("rejectedIdentifier" | "unsupportedIdentifier" | "malformed")
        )
    {
        return Err(Halt::Skip(format!(
            "the server does not take IP identifiers (RFC 8738): {}",
            r.body["detail"]
        )));
    }
    r.expect_status(&[201], "newOrder for an IP address")?;
    Ok((a, r))
}

pub async fn ip(c: &Ctx) -> Verdict {
    let (a, r) = ip_order(c).await?;
    ensure!(
        r.body["identifiers"][0] == json!({"type": "ip", "value": "127.0.0.1"}),
        &r,
        "the order's identifier is not the IP address"
    );
    let az = r.body["authorizations"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let z = c.signed(&a, &az, None).await?;
    ensure!(
        z.body["identifier"]["type"] == "ip",
        &z,
        "the authorization's identifier is not of type ip"
    );
    Ok(())
}

pub async fn ip_no_dns01(c: &Ctx) -> Verdict {
    let (a, r) = ip_order(c).await?;
    let az = r.body["authorizations"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let z = c.signed(&a, &az, None).await?;
    z.expect_status(&[200], "POST-as-GET of the IP authorization")?;
    ensure!(
        z.body["challenges"]
            .as_array()
            .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c["type"] != "dns-01")),
        &z,
        "an IP authorization must not offer dns-01"
    );
    Ok(())
}

pub async fn validity_fields(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let nb = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let na = nb + time::Duration::days(2);
    let f = &time::format_description::well_known::Rfc3339;
    let (nb, na) = (
        nb.replace_nanosecond(0)
            .unwrap_or(nb)
            .format(f)
            .unwrap_or_default(),
        na.replace_nanosecond(0)
            .unwrap_or(na)
            .format(f)
            .unwrap_or_default(),
    );
    let r = post_order(
        c,
        &a,
        json!({"identifiers": dns_ids(&[c.name()]), "notBefore": nb, "notAfter": na}),
    )
    .await?;
    if r.status == 201 {
        ensure!(
            r.body["notBefore"].is_string() && r.body["notAfter"].is_string(),
            &r,
            "the order was accepted with notBefore/notAfter but does not show them"
        );
        return Ok(());
    }
    r.expect_problem(
        &["malformed", "rejectedIdentifier", "unsupportedIdentifier"],
        &[400, 403],
        "an order with notBefore/notAfter",
    )
}

pub async fn in_orders_list(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let Some(list) = a.body["orders"].as_str().map(str::to_owned) else {
        return Err(Halt::Skip(
            "the account object has no orders URL (see acct.fields)".into(),
        ));
    };
    let o = c.new_order(&a, dns_ids(&[c.name()])).await?;
    let r = c.signed(&a, &list, None).await?;
    r.expect_status(&[200], "POST-as-GET of the orders list")?;
    ensure!(
        r.body["orders"]
            .as_array()
            .is_some_and(|v| v.iter().any(|u| *u == o.url.as_str())),
        &r,
        "the new pending order {} is not in the account's orders list",
        o.url
    );
    Ok(())
}
