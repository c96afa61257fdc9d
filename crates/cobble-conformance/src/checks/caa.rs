//! RFC 8659 (CAA) and RFC 8657 (CAA accounturi and validationmethods), with the records
//! served by the challenge test server's `/add-caa`.

use crate::client::{Halt, Reply, Verdict, fail, fail_with, skip};
use crate::ctx::{Account, Ctx};
use crate::fixtures::{csr, dns_ids};
use serde_json::{Value, json};

/// What became of an order under a CAA RRset.
enum Caa {
    /// Refused with a `caa` problem (at newOrder, in the challenge error or at finalize).
    Refused,
    /// A certificate was issued.
    Issued(Reply),
    /// Refused some other way.
    Other(String, Option<Reply>),
}

/// The CA's first `meta.caaIdentities` entry, or a skip.
fn identity(c: &Ctx) -> Result<String, Halt> {
    match c.dir["meta"]["caaIdentities"][0].as_str() {
        Some(d) => Ok(d.to_owned()),
        None => {
            skip("the directory names no meta.caaIdentities, so no CAA record can name this CA")
        }
    }
}

fn is_caa(v: &Value) -> bool {
    v["type"].as_str() == Some("urn:ietf:params:acme:error:caa")
        || v["subproblems"]
            .as_array()
            .is_some_and(|s| s.iter().any(is_caa))
}

/// Orders `name` (CAA `records` set on `caa_host`), answers http-01, finalizes, and says
/// what happened; the records are removed again.
async fn under_caa(
    c: &Ctx,
    a: &Account,
    caa_host: &str,
    name: &str,
    records: Value,
) -> Result<Caa, Halt> {
    c.challtestsrv()?;
    let host = format!("{}.", caa_host.trim_end_matches('.'));
    c.chall("/add-caa", json!({"host": host, "policies": records}))
        .await?;
    // A wildcard name is validated with dns-01 (RFC 8555 §7.1.3), other names with http-01.
    let kind = if name.starts_with("*.") {
        "dns-01"
    } else {
        "http-01"
    };
    let r = attempt(c, a, name, kind).await;
    let _ = c.chall("/clear-caa", json!({"host": host})).await;
    r
}

async fn attempt(c: &Ctx, a: &Account, name: &str, kind: &str) -> Result<Caa, Halt> {
    let names = vec![name.to_owned()];
    let r = c
        .signed(
            a,
            &c.url("newOrder")?,
            Some(&json!({"identifiers": dns_ids(&names)})),
        )
        .await?;
    if r.status != 201 {
        if is_caa(&r.body) {
            return Ok(Caa::Refused);
        }
        return Ok(Caa::Other("newOrder refused".into(), Some(r)));
    }
    let order_url = r.location().unwrap_or_default();
    let az = r.body["authorizations"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (_, done) = c.solve(a, &az, kind, true).await?;
    if done["status"] != "valid" {
        let errs: Vec<&Value> = done["challenges"]
            .as_array()
            .map(|v| v.iter().map(|ch| &ch["error"]).collect())
            .unwrap_or_default();
        if errs.iter().any(|e| is_caa(e)) {
            return Ok(Caa::Refused);
        }
        return Ok(Caa::Other(
            format!(
                "the authorization ended {} without a caa error: {done}",
                done["status"]
            ),
            None,
        ));
    }
    let o = c
        .poll(a, &order_url, "the order", |b| b["status"] != "pending")
        .await?;
    if o.body["status"] != "ready" {
        if is_caa(&o.body["error"]) {
            return Ok(Caa::Refused);
        }
        return Ok(Caa::Other("the order did not become ready".into(), Some(o)));
    }
    let order = crate::fixtures::Order {
        url: order_url,
        body: o.body,
    };
    let key = rcgen::KeyPair::generate().expect("key");
    let (fin, done) = c.finalize(a, &order, &csr(&names, &key)).await?;
    if fin.status != 200 {
        if is_caa(&fin.body) {
            return Ok(Caa::Refused);
        }
        return Ok(Caa::Other("finalize refused".into(), Some(fin)));
    }
    if done.body["status"] == "valid" {
        return Ok(Caa::Issued(done));
    }
    if is_caa(&done.body["error"]) {
        return Ok(Caa::Refused);
    }
    Ok(Caa::Other(
        "the order did not become valid".into(),
        Some(done),
    ))
}

fn issue(value: &str) -> Value {
    json!([{"flag": 0, "tag": "issue", "value": value}])
}

/// Passes when issuance was refused with `caa`.
fn must_refuse(got: Caa, what: &str) -> Verdict {
    match got {
        Caa::Refused => Ok(()),
        Caa::Issued(r) => fail_with(&r, format!("{what}: the CA issued anyway")),
        Caa::Other(why, Some(r)) => fail_with(
            &r,
            format!("{what}: refused, but not with a caa problem ({why})"),
        ),
        Caa::Other(why, None) => fail(format!(
            "{what}: refused, but not with a caa problem ({why})"
        )),
    }
}

/// Passes when a certificate was issued.
fn must_issue(got: Caa, what: &str) -> Verdict {
    match got {
        Caa::Issued(_) => Ok(()),
        Caa::Refused => fail(format!("{what}: issuance was refused with caa")),
        Caa::Other(why, Some(r)) => fail_with(&r, format!("{what}: not issued ({why})")),
        Caa::Other(why, None) => fail(format!("{what}: not issued ({why})")),
    }
}

pub async fn other_ca(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let n = c.name();
    let got = under_caa(c, &a, &n, &n, issue("conformance-other-ca.invalid")).await?;
    must_refuse(got, "CAA issue \"conformance-other-ca.invalid\"")
}

pub async fn no_ca(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let n = c.name();
    let got = under_caa(c, &a, &n, &n, issue(";")).await?;
    must_refuse(got, "CAA issue \";\"")
}

pub async fn this_ca(c: &Ctx) -> Verdict {
    let id = identity(c)?;
    let a = c.account().await?;
    let n = c.name();
    let got = under_caa(c, &a, &n, &n, issue(&id)).await?;
    must_issue(got, &format!("CAA issue {id:?} (this CA)"))
}

pub async fn tree_climbing(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let parent = c.name();
    let child = format!("www.{parent}");
    let got = under_caa(
        c,
        &a,
        &parent,
        &child,
        issue("conformance-other-ca.invalid"),
    )
    .await?;
    must_refuse(
        got,
        "CAA issue \"conformance-other-ca.invalid\" on the parent of the name ordered",
    )
}

pub async fn critical_unknown(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let n = c.name();
    let mut records = vec![json!({"flag": 128, "tag": "conformancex", "value": "1"})];
    if let Ok(id) = identity(c) {
        records.push(json!({"flag": 0, "tag": "issue", "value": id}));
    }
    let records = Value::Array(records);
    let got = under_caa(c, &a, &n, &n, records).await?;
    must_refuse(got, "a critical CAA property of an unknown tag")
}

/// RFC 8659 §4.2 lets a CA ignore parameters it does not know: issuing under a mismatched
/// RFC 8657 parameter is then not a departure, only the absence of RFC 8657.
fn refuse_or_unsupported(got: Caa, what: &str, param: &str) -> Verdict {
    match got {
        Caa::Issued(_) => Err(Halt::NotApplicable(format!(
            "the CA issued under {what}: it does not implement RFC 8657 {param}, which RFC 8659 \
             §4.2 lets it ignore"
        ))),
        other => must_refuse(other, what),
    }
}

pub async fn accounturi_mismatch(c: &Ctx) -> Verdict {
    let id = identity(c)?;
    let a = c.account().await?;
    let n = c.name();
    let other = format!("{}-not-this-one", a.kid);
    let got = under_caa(c, &a, &n, &n, issue(&format!("{id}; accounturi={other}"))).await?;
    refuse_or_unsupported(got, "CAA accounturi naming another account", "accounturi")
}

pub async fn accounturi_match(c: &Ctx) -> Verdict {
    let id = identity(c)?;
    let a = c.account().await?;
    let n = c.name();
    let v = format!("{id}; accounturi={}", a.kid);
    let got = under_caa(c, &a, &n, &n, issue(&v)).await?;
    must_issue(got, "CAA accounturi naming the ordering account")
}

pub async fn validationmethods_mismatch(c: &Ctx) -> Verdict {
    let id = identity(c)?;
    let a = c.account().await?;
    let n = c.name();
    let got = under_caa(
        c,
        &a,
        &n,
        &n,
        issue(&format!("{id}; validationmethods=dns-01")),
    )
    .await?;
    refuse_or_unsupported(
        got,
        "CAA validationmethods=dns-01 with an http-01 validation",
        "validationmethods",
    )
}

pub async fn validationmethods_match(c: &Ctx) -> Verdict {
    let id = identity(c)?;
    let a = c.account().await?;
    let n = c.name();
    let got = under_caa(
        c,
        &a,
        &n,
        &n,
        issue(&format!("{id}; validationmethods=dns-01,http-01")),
    )
    .await?;
    must_issue(
        got,
        "CAA validationmethods=dns-01,http-01 with an http-01 validation",
    )
}

/// RFC 8659 §4.3: for a wildcard name, `issuewild` takes precedence over `issue`; here
/// `issue` names this CA (when the directory says who it is) and `issuewild` another CA.
pub async fn issuewild_forbids(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let n = c.name();
    let mut records =
        vec![json!({"flag": 0, "tag": "issuewild", "value": "conformance-other-ca.invalid"})];
    if let Ok(id) = identity(c) {
        records.push(json!({"flag": 0, "tag": "issue", "value": id}));
    }
    let got = under_caa(c, &a, &n, &format!("*.{n}"), Value::Array(records)).await?;
    must_refuse(
        got,
        "a wildcard order under CAA issuewild \"conformance-other-ca.invalid\"",
    )
}

/// RFC 8659 §4.3: `issuewild` naming this CA permits a wildcard even where `issue ";"`
/// forbids every other certificate.
pub async fn issuewild_permits(c: &Ctx) -> Verdict {
    let id = identity(c)?;
    let a = c.account().await?;
    let n = c.name();
    let records = json!([
        {"flag": 0, "tag": "issue", "value": ";"},
        {"flag": 0, "tag": "issuewild", "value": id},
    ]);
    let got = under_caa(c, &a, &n, &format!("*.{n}"), records).await?;
    must_issue(
        got,
        &format!("a wildcard order under CAA issue \";\" and issuewild {id:?}"),
    )
}
