//! RFC 8555 §7.6 revocation, and RFC 9773 renewal information.

use crate::client::{Halt, Reply, Verdict, fail_with};
use crate::ctx::Ctx;
use crate::ensure;
use crate::fixtures::Issued;
use cobble_core::b64;
use serde_json::{Value, json};

async fn revoke_kid(
    c: &Ctx,
    a: &crate::ctx::Account,
    i: &Issued,
    reason: Option<u8>,
) -> Result<Reply, Halt> {
    let mut p = json!({"certificate": b64::encode(&i.leaf_der)});
    if let Some(r) = reason {
        p["reason"] = json!(r);
    }
    c.signed(a, &c.url("revokeCert")?, Some(&p)).await
}

pub async fn by_account(c: &Ctx) -> Verdict {
    let i = c.issue(1).await?;
    let r = revoke_kid(c, &i.account, &i, None).await?;
    r.expect_status(&[200], "revocation by the ordering account")
}

pub async fn already_revoked(c: &Ctx) -> Verdict {
    let i = c.issue(1).await?;
    let r = revoke_kid(c, &i.account, &i, None).await?;
    if r.status != 200 {
        return fail_with(&r, "prerequisite: the first revocation");
    }
    let r = revoke_kid(c, &i.account, &i, None).await?;
    r.expect_problem(
        &["alreadyRevoked"],
        &[400],
        "revoking a revoked certificate again",
    )
}

pub async fn by_cert_key(c: &Ctx) -> Verdict {
    let i = c.issue(1).await?;
    let signer = cobble_core::sign::Signer::ec_from_pkcs8(
        cobble_core::jwk::Curve::P256,
        &i.cert_key.serialize_der(),
    )
    .map_err(|e| Halt::Fail(format!("internal: the certificate key: {e}"), None))?;
    let url = c.url("revokeCert")?;
    let p = json!({"certificate": b64::encode(&i.leaf_der)});
    let r = c.signed_jwk(&signer, &url, Some(&p)).await?;
    r.expect_status(&[200], "revocation signed with the certificate's key (jwk)")
}

pub async fn by_authz_holder(c: &Ctx) -> Verdict {
    let i = c.issue(1).await?;
    let b = c.account().await?;
    let _ = c.ready_order(&b, &i.names).await?;
    let r = revoke_kid(c, &b, &i, None).await?;
    r.expect_status(
        &[200],
        "revocation by another account holding valid authorizations for every name",
    )
}

pub async fn unrelated_account(c: &Ctx) -> Verdict {
    let i = c.issue(1).await?;
    let b = c.account().await?;
    let r = revoke_kid(c, &b, &i, None).await?;
    r.expect_problem(
        &["unauthorized"],
        &[401, 403],
        "revocation by an account with no claim on the certificate",
    )
}

pub async fn bad_reason(c: &Ctx) -> Verdict {
    let i = c.issue(1).await?;
    let r = revoke_kid(c, &i.account, &i, Some(7)).await?;
    r.expect_problem(
        &["badRevocationReason", "malformed"],
        &[400],
        "reason 7 (unassigned in RFC 5280)",
    )
}

/// RFC 8555 §7.6: a server may disallow reason codes, but then only with badRevocationReason.
async fn reason_allowed_or_refused(c: &Ctx, code: u8, what: &str) -> Verdict {
    let i = c.issue(1).await?;
    let r = revoke_kid(c, &i.account, &i, Some(code)).await?;
    if r.status == 200 {
        return Ok(());
    }
    r.expect_problem(
        &["badRevocationReason"],
        &[400, 403],
        &format!("reason {code} ({what}) is either taken or refused as badRevocationReason"),
    )
}

pub async fn reason_ca_compromise(c: &Ctx) -> Verdict {
    reason_allowed_or_refused(c, 2, "cACompromise").await
}

pub async fn reason_certificate_hold(c: &Ctx) -> Verdict {
    reason_allowed_or_refused(c, 6, "certificateHold").await
}

pub async fn reason_out_of_range(c: &Ctx) -> Verdict {
    let i = c.issue(1).await?;
    let r = revoke_kid(c, &i.account, &i, Some(11)).await?;
    r.expect_problem(
        &["badRevocationReason", "malformed"],
        &[400],
        "reason 11 (no such CRLReason in RFC 5280 §5.3.1)",
    )
}

pub async fn cert_key_wrong_key(c: &Ctx) -> Verdict {
    let i = c.issue(1).await?;
    let other = c.key();
    let url = c.url("revokeCert")?;
    let p = json!({"certificate": b64::encode(&i.leaf_der)});
    let r = c.signed_jwk(&other, &url, Some(&p)).await?;
    r.expect_problem(
        &["unauthorized"],
        &[401, 403],
        "revocation signed (jwk) by a key that is neither the certificate's nor an account's",
    )
}

pub async fn reason_accepted(c: &Ctx) -> Verdict {
    let i = c.issue(1).await?;
    let r = revoke_kid(c, &i.account, &i, Some(4)).await?;
    if r.problem_type() == Some("badRevocationReason") {
        return Err(Halt::NotApplicable(
            "the server does not take reason 4 (superseded) from subscribers".into(),
        ));
    }
    r.expect_status(&[200], "revocation with reason 4 (superseded)")
}

/// The RFC 9773 certID of a DER certificate: base64url(AKI keyIdentifier) "." base64url(serial).
pub(crate) fn cert_id(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut aki = None;
    for ext in cert.extensions() {
        if let ParsedExtension::AuthorityKeyIdentifier(a) = ext.parsed_extension() {
            aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
        }
    }
    Some(format!(
        "{}.{}",
        b64::encode(aki?),
        b64::encode(cert.tbs_certificate.raw_serial())
    ))
}

fn renewal_info(c: &Ctx) -> Result<String, Halt> {
    match c.dir["renewalInfo"].as_str() {
        Some(u) => Ok(u.trim_end_matches('/').to_owned()),
        None => Err(Halt::Skip(
            "the directory has no renewalInfo (RFC 9773)".into(),
        )),
    }
}

pub async fn ari_renewal_info(c: &Ctx) -> Verdict {
    let base = renewal_info(c)?;
    let i = c.issue(1).await?;
    let Some(id) = cert_id(&i.leaf_der) else {
        return fail_with(
            &i.download,
            "the certificate has no authority key identifier, so no RFC 9773 certID",
        );
    };
    let r = c.get(&format!("{base}/{id}")).await?;
    r.expect_status(&[200], "GET of the renewal information")?;
    let w: &Value = &r.body["suggestedWindow"];
    let f = &time::format_description::well_known::Rfc3339;
    let start = w["start"]
        .as_str()
        .and_then(|s| time::OffsetDateTime::parse(s, f).ok());
    let end = w["end"]
        .as_str()
        .and_then(|s| time::OffsetDateTime::parse(s, f).ok());
    ensure!(
        matches!((start, end), (Some(s), Some(e)) if s < e),
        &r,
        "suggestedWindow lacks RFC 3339 start and end with start before end"
    );
    Ok(())
}

pub async fn ari_unknown(c: &Ctx) -> Verdict {
    let base = renewal_info(c)?;
    let r = c
        .get(&format!(
            "{base}/{}.{}",
            b64::encode([7u8; 20]),
            b64::encode([0x01, 0x02, 0x03])
        ))
        .await?;
    r.expect_status(
        &[404],
        "renewal information for a certificate the server never issued",
    )
}
