//! RFC 8738: IP identifiers validated (http-01 and tls-alpn-01 to 127.0.0.1) and issued.

use crate::client::{Halt, Verdict, fail, fail_with};
use crate::ctx::{Account, Ctx};
use crate::ensure;
use crate::fixtures::{Order, csr, pem_certs};
use serde_json::json;
use x509_parser::prelude::*;

const IP: &str = "127.0.0.1";

/// A fresh account and an order for 127.0.0.1, or a skip when the server takes no IP
/// identifiers.
async fn ip_order(c: &Ctx) -> Result<(Account, Order), Halt> {
    let a = c.account().await?;
    let r = c
        .signed(
            &a,
            &c.url("newOrder")?,
            Some(&json!({"identifiers": [{"type": "ip", "value": IP}]})),
        )
        .await?;
    if r.status != 201 {
        if matches!(
            r.problem_type(),
            Some("rejectedIdentifier" | "unsupportedIdentifier" | "malformed")
        ) {
            return Err(Halt::Skip(format!(
                "the server does not take IP identifiers (RFC 8738): {}",
                r.body["detail"]
            )));
        }
        return fail_with(&r, "prerequisite: newOrder for 127.0.0.1");
    }
    Ok((
        a,
        Order {
            url: r.location().unwrap_or_default(),
            body: r.body,
        },
    ))
}

async fn validate(c: &Ctx, kind: &str) -> Result<(Account, Order), Halt> {
    c.can_answer(kind)?;
    let (a, o) = ip_order(c).await?;
    let az = o.body["authorizations"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (_, done) = c.solve(&a, &az, kind, true).await?;
    if done["status"] != "valid" {
        return fail(format!(
            "{kind} answered correctly for {IP}, but the authorization ended {}: {done}",
            done["status"]
        ));
    }
    Ok((a, o))
}

pub async fn http01_valid(c: &Ctx) -> Verdict {
    let (a, o) = validate(c, "http-01").await?;
    let r = c
        .poll(&a, &o.url, "the order", |b| b["status"] != "pending")
        .await?;
    ensure!(
        r.body["status"] == "ready",
        &r,
        "the IP order is not ready once its authorization is valid"
    );
    Ok(())
}

/// RFC 8738 §6: tls-alpn-01 for an IP address, with the reverse-mapping name as SNI and the
/// address as the certificate's IP SAN (the challenge test server is given the address).
pub async fn tlsalpn01_valid(c: &Ctx) -> Verdict {
    let (a, o) = validate(c, "tls-alpn-01").await?;
    let r = c
        .poll(&a, &o.url, "the order", |b| b["status"] != "pending")
        .await?;
    ensure!(
        r.body["status"] == "ready",
        &r,
        "the IP order is not ready once its tls-alpn-01 authorization is valid"
    );
    Ok(())
}

pub async fn issued(c: &Ctx) -> Verdict {
    let (a, o) = validate(c, "http-01").await?;
    let o = Order {
        body: c
            .poll(&a, &o.url, "the order", |b| b["status"] != "pending")
            .await?
            .body,
        url: o.url,
    };
    let key = rcgen::KeyPair::generate().expect("key");
    let (fin, done) = c.finalize(&a, &o, &csr(&[IP.to_owned()], &key)).await?;
    fin.expect_status(&[200], "finalize of the IP order with a CSR for 127.0.0.1")?;
    ensure!(
        done.body["status"] == "valid",
        &done,
        "the IP order did not become valid"
    );
    let url = done.body["certificate"].as_str().unwrap_or_default();
    let dl = c.signed(&a, url, None).await?;
    dl.expect_status(&[200], "POST-as-GET of the certificate")?;
    let Some(leaf) = pem_certs(&dl.text).into_iter().next() else {
        return fail_with(&dl, "no PEM certificate in the download");
    };
    let Ok((_, cert)) = X509Certificate::from_der(&leaf) else {
        return fail_with(&dl, "the leaf does not parse");
    };
    let mut ips = Vec::new();
    let mut dns = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::IPAddress(b) => ips.push(b.to_vec()),
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                _ => {}
            }
        }
    }
    ensure!(
        ips == [vec![127u8, 0, 0, 1]] && dns.is_empty(),
        &dl,
        "the leaf's SANs should be exactly iPAddress 127.0.0.1 (RFC 8738 §3); got IPs {ips:?}, DNS names {dns:?}"
    );
    Ok(())
}
