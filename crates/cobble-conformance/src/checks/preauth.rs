//! RFC 8555 §7.4.1 pre-authorization (`newAuthz`) and draft-ietf-acme-profiles (profiles).

use crate::client::{Halt, Reply, Verdict, fail_with};
use crate::ctx::{Account, Ctx};
use crate::ensure;
use crate::fixtures::dns_ids;
use serde_json::{Value, json};

fn new_authz_url(c: &Ctx) -> Result<String, Halt> {
    match c.dir["newAuthz"].as_str() {
        Some(u) => Ok(u.to_owned()),
        None => Err(Halt::Skip(
            "the directory has no newAuthz: the server does not offer pre-authorization".into(),
        )),
    }
}

async fn new_authz(c: &Ctx, a: &Account, value: &str) -> Result<Reply, Halt> {
    let url = new_authz_url(c)?;
    c.signed(
        a,
        &url,
        Some(&json!({"identifier": {"type": "dns", "value": value}})),
    )
    .await
}

pub async fn create(c: &Ctx) -> Verdict {
    new_authz_url(c)?;
    let a = c.account().await?;
    let name = c.name();
    let r = new_authz(c, &a, &name).await?;
    r.expect_status(&[201], "newAuthz for a fresh name")?;
    ensure!(r.location().is_some(), &r, "201 without Location");
    ensure!(
        r.body["status"] == "pending"
            && r.body["identifier"] == json!({"type": "dns", "value": name}),
        &r,
        "not a pending authorization for {name}"
    );
    ensure!(
        r.body["challenges"]
            .as_array()
            .is_some_and(|v| !v.is_empty()),
        &r,
        "a pre-authorization without challenges"
    );
    Ok(())
}

pub async fn wildcard_refused(c: &Ctx) -> Verdict {
    new_authz_url(c)?;
    let a = c.account().await?;
    let r = new_authz(c, &a, &format!("*.{}", c.name())).await?;
    r.expect_problem(
        &["malformed", "rejectedIdentifier", "unsupportedIdentifier"],
        &[400, 403],
        "newAuthz for a wildcard name",
    )
}

pub async fn used_by_order(c: &Ctx) -> Verdict {
    new_authz_url(c)?;
    c.can_answer("http-01")?;
    let a = c.account().await?;
    let name = c.name();
    let r = new_authz(c, &a, &name).await?;
    if r.status != 201 {
        return fail_with(&r, "prerequisite: newAuthz");
    }
    let Some(az) = r.location() else {
        return fail_with(&r, "prerequisite: newAuthz answered without Location");
    };
    let (_, done) = c.solve(&a, &az, "http-01", true).await?;
    if done["status"] != "valid" {
        return crate::client::fail(format!(
            "prerequisite: validating the pre-authorization ended {}: {done}",
            done["status"]
        ));
    }
    let o = c.new_order(&a, dns_ids(&[name])).await?;
    let r = c
        .poll(&a, &o.url, "the order", |b| b["status"] != "pending")
        .await?;
    ensure!(
        r.body["status"] == "ready",
        &r,
        "an order for a name with a valid pre-authorization is not ready (its authorizations: {})",
        r.body["authorizations"]
    );
    Ok(())
}

fn profiles(c: &Ctx) -> Result<Vec<String>, Halt> {
    match c.dir["meta"]["profiles"].as_object() {
        Some(m) if !m.is_empty() => Ok(m.keys().cloned().collect()),
        _ => Err(Halt::Skip(
            "the directory has no meta.profiles: the server does not offer profiles".into(),
        )),
    }
}

pub async fn meta_shape(c: &Ctx) -> Verdict {
    profiles(c)?;
    let r = c.get(&c.opts.directory).await?;
    let m = &r.body["meta"]["profiles"];
    ensure!(
        m.as_object()
            .is_some_and(|o| o.values().all(Value::is_string)),
        &r,
        "meta.profiles is not an object of profile names to description strings"
    );
    Ok(())
}

pub async fn listed_accepted(c: &Ctx) -> Verdict {
    let names = profiles(c)?;
    let a = c.account().await?;
    for p in names {
        let r = c
            .signed(
                &a,
                &c.url("newOrder")?,
                Some(&json!({"identifiers": dns_ids(&[c.name()]), "profile": p})),
            )
            .await?;
        r.expect_status(
            &[201],
            &format!("newOrder with the advertised profile {p:?}"),
        )?;
        ensure!(
            r.body["profile"] == p.as_str(),
            &r,
            "the order does not show the profile {p:?} it was created with"
        );
    }
    Ok(())
}

pub async fn unknown_refused(c: &Ctx) -> Verdict {
    profiles(c)?;
    let a = c.account().await?;
    let r = c
        .signed(
            &a,
            &c.url("newOrder")?,
            Some(&json!({"identifiers": dns_ids(&[c.name()]), "profile": "conformance-no-such-profile"})),
        )
        .await?;
    r.expect_problem(
        &["invalidProfile"],
        &[400],
        "newOrder with a profile the directory does not list",
    )
}
