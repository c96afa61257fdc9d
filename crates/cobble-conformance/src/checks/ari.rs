//! RFC 9773 §5: orders that name the certificate they replace.

use super::revoke::cert_id;
use crate::client::{Halt, Reply, Verdict, fail_with};
use crate::ctx::{Account, Ctx};
use crate::ensure;
use crate::fixtures::{Issued, dns_ids};
use serde_json::json;

fn has_ari(c: &Ctx) -> Result<(), Halt> {
    match c.dir["renewalInfo"].as_str() {
        Some(_) => Ok(()),
        None => Err(Halt::Skip(
            "the directory has no renewalInfo (RFC 9773)".into(),
        )),
    }
}

async fn replacing(c: &Ctx, a: &Account, names: &[String], id: &str) -> Result<Reply, Halt> {
    c.signed(
        a,
        &c.url("newOrder")?,
        Some(&json!({"identifiers": dns_ids(names), "replaces": id})),
    )
    .await
}

async fn issued_with_id(c: &Ctx) -> Result<(Issued, String), Halt> {
    has_ari(c)?;
    let i = c.issue(1).await?;
    let Some(id) = cert_id(&i.leaf_der) else {
        return fail_with(
            &i.download,
            "the certificate has no authority key identifier, so no RFC 9773 certID",
        );
    };
    Ok((i, id))
}

pub async fn replaces_reflected(c: &Ctx) -> Verdict {
    let (i, id) = issued_with_id(c).await?;
    let r = replacing(c, &i.account, &i.names, &id).await?;
    r.expect_status(&[201], "newOrder replacing the account's own certificate")?;
    ensure!(
        r.body["replaces"] == id.as_str(),
        &r,
        "the order does not show \"replaces\": {id:?}"
    );
    let g = c
        .signed(&i.account, &r.location().unwrap_or_default(), None)
        .await?;
    ensure!(
        g.body["replaces"] == id.as_str(),
        &g,
        "POST-as-GET of the order does not show \"replaces\": {id:?}"
    );
    Ok(())
}

pub async fn already_replaced(c: &Ctx) -> Verdict {
    let (i, id) = issued_with_id(c).await?;
    let first = replacing(c, &i.account, &i.names, &id).await?;
    if first.status != 201 {
        return fail_with(&first, "prerequisite: the first replacing order");
    }
    let r = replacing(c, &i.account, &i.names, &id).await?;
    r.expect_problem(
        &["alreadyReplaced"],
        &[400, 403, 409],
        "a second order replacing the same certificate while the first is pending",
    )
}

pub async fn replaces_other_account(c: &Ctx) -> Verdict {
    let (i, id) = issued_with_id(c).await?;
    let b = c.account().await?;
    let r = replacing(c, &b, &i.names, &id).await?;
    ensure!(
        r.status >= 400,
        &r,
        "an order of another account replacing this account's certificate was accepted"
    );
    Ok(())
}

pub async fn replaces_unknown(c: &Ctx) -> Verdict {
    has_ari(c)?;
    let a = c.account().await?;
    let id = format!(
        "{}.{}",
        cobble_core::b64::encode([7u8; 20]),
        cobble_core::b64::encode([0x01, 0x02, 0x03])
    );
    let r = replacing(c, &a, &[c.name()], &id).await?;
    ensure!(
        r.status >= 400 && r.problem_type().is_some(),
        &r,
        "an order replacing a certificate the server never issued was not refused with a problem"
    );
    Ok(())
}
