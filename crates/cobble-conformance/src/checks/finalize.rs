//! RFC 8555 §7.4: finalizing an order.

use crate::client::{Halt, Reply, Verdict, fail_with};
use crate::ctx::{Account, Ctx};
use crate::ensure;
use crate::fixtures::{Order, csr, dns_ids};
use cobble_core::b64;
use serde_json::{Value, json};

/// RFC 8555 §7.4: the finalize "will result in error"; badCSR is what the problem SHOULD say,
/// judged separately by fin.csr-names-badcsr.
const CSR_REFUSED: &[&str] = &["badCSR", "unauthorized", "malformed", "rejectedIdentifier"];

async fn ready(c: &Ctx, n: usize) -> Result<(Account, Order, Vec<String>), Halt> {
    c.can_answer("http-01")?;
    let a = c.account().await?;
    let names: Vec<String> = (0..n).map(|_| c.name()).collect();
    let o = c.ready_order(&a, &names).await?;
    Ok((a, o, names))
}

async fn finalize_raw(c: &Ctx, a: &Account, o: &Order, payload: Value) -> Result<Reply, Halt> {
    let url = o.body["finalize"].as_str().unwrap_or_default().to_owned();
    c.signed(a, &url, Some(&payload)).await
}

async fn refused_csr(
    c: &Ctx,
    n: usize,
    what: &str,
    make: impl FnOnce(&[String]) -> Vec<u8>,
) -> Verdict {
    let (a, o, names) = ready(c, n).await?;
    let r = finalize_raw(c, &a, &o, json!({"csr": b64::encode(make(&names))})).await?;
    r.expect_problem(CSR_REFUSED, &[400, 403], what)?;
    let g = c.signed(&a, &o.url, None).await?;
    ensure!(
        g.body["status"] != "valid" && g.body["certificate"].is_null(),
        &g,
        "a refused CSR still produced a certificate"
    );
    Ok(())
}

pub async fn not_ready(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let names = vec![c.name()];
    let o = c.new_order(&a, dns_ids(&names)).await?;
    let key = rcgen::KeyPair::generate().expect("key");
    let r = finalize_raw(c, &a, &o, json!({"csr": b64::encode(csr(&names, &key))})).await?;
    r.expect_problem(&["orderNotReady"], &[403], "finalize of a pending order")
}

pub async fn csr_garbage(c: &Ctx) -> Verdict {
    let (a, o, _) = ready(c, 1).await?;
    let r = finalize_raw(
        c,
        &a,
        &o,
        json!({"csr": b64::encode(b"\x30\x03\x02\x01\x00 not a CSR")}),
    )
    .await?;
    r.expect_problem(
        &["badCSR", "malformed"],
        &[400],
        "a csr that is not a PKCS#10 request",
    )
}

pub async fn csr_missing(c: &Ctx) -> Verdict {
    let (a, o, _) = ready(c, 1).await?;
    let r = finalize_raw(c, &a, &o, json!({})).await?;
    r.expect_problem(
        &["malformed", "badCSR"],
        &[400],
        "finalize without a csr field",
    )
}

pub async fn csr_other_name(c: &Ctx) -> Verdict {
    let other = c.name();
    refused_csr(c, 1, "a CSR for a name not in the order", |_| {
        csr(&[other], &rcgen::KeyPair::generate().expect("key"))
    })
    .await
}

pub async fn csr_extra_name(c: &Ctx) -> Verdict {
    let extra = c.name();
    refused_csr(c, 1, "a CSR with one name more than the order", |names| {
        let mut n = names.to_vec();
        n.push(extra);
        csr(&n, &rcgen::KeyPair::generate().expect("key"))
    })
    .await
}

pub async fn csr_missing_name(c: &Ctx) -> Verdict {
    refused_csr(c, 2, "a CSR lacking one of the order's names", |names| {
        csr(&names[..1], &rcgen::KeyPair::generate().expect("key"))
    })
    .await
}

pub async fn csr_bad_signature(c: &Ctx) -> Verdict {
    refused_csr(c, 1, "a CSR whose signature does not verify", |names| {
        let mut der = csr(names, &rcgen::KeyPair::generate().expect("key"));
        let n = der.len();
        der[n - 5] ^= 0x5a; // inside the signature BIT STRING at the end
        der
    })
    .await
}

pub async fn csr_account_key(c: &Ctx) -> Verdict {
    c.can_answer("http-01")?;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .expect("key");
    let signer =
        cobble_core::sign::Signer::ec_from_pkcs8(cobble_core::jwk::Curve::P256, pkcs8.as_ref())
            .expect("key");
    let kp = rcgen::KeyPair::try_from(pkcs8.as_ref()).expect("rcgen loads the key");
    let a = c.new_account_with(signer, json!({})).await?;
    let names = vec![c.name()];
    let o = c.ready_order(&a, &names).await?;
    let r = finalize_raw(c, &a, &o, json!({"csr": b64::encode(csr(&names, &kp))})).await?;
    r.expect_problem(
        &["badCSR", "badPublicKey"],
        &[400, 403],
        "a CSR for the account's own key",
    )
}

pub async fn success(c: &Ctx) -> Verdict {
    let (a, o, names) = ready(c, 2).await?;
    let key = rcgen::KeyPair::generate().expect("key");
    let (fin, done) = c.finalize(&a, &o, &csr(&names, &key)).await?;
    fin.expect_status(&[200], "finalize with a good CSR")?;
    ensure!(
        ["processing", "valid"].contains(&fin.body["status"].as_str().unwrap_or_default()),
        &fin,
        "the finalize answer's order status is not processing or valid"
    );
    ensure!(
        done.body["status"] == "valid",
        &done,
        "the order did not become valid"
    );
    ensure!(
        done.body["certificate"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://")),
        &done,
        "a valid order without a certificate URL"
    );
    Ok(())
}

pub async fn again(c: &Ctx) -> Verdict {
    let (a, o, names) = ready(c, 1).await?;
    let key = rcgen::KeyPair::generate().expect("key");
    let (fin, done) = c.finalize(&a, &o, &csr(&names, &key)).await?;
    if done.body["status"] != "valid" {
        return fail_with(&fin, "prerequisite: the first finalize");
    }
    let r = finalize_raw(c, &a, &o, json!({"csr": b64::encode(csr(&names, &key))})).await?;
    r.expect_problem(
        &["orderNotReady"],
        &[403],
        "a second finalize of a valid order",
    )
}

pub async fn csr_names_badcsr(c: &Ctx) -> Verdict {
    let other = c.name();
    let (a, o, _) = ready(c, 1).await?;
    let key = rcgen::KeyPair::generate().expect("key");
    let r = finalize_raw(c, &a, &o, json!({"csr": b64::encode(csr(&[other], &key))})).await?;
    r.expect_problem(
        &["badCSR"],
        &[400, 403],
        "a CSR whose names differ from the order's",
    )
}

pub async fn csr_rsa_1024(c: &Ctx) -> Verdict {
    let (a, o, names) = ready(c, 1).await?;
    let der = crate::rsa_csr::rsa_csr(&names, 1024, false)
        .map_err(|e| Halt::Fail(format!("internal: {e}"), None))?;
    let r = finalize_raw(c, &a, &o, json!({"csr": b64::encode(der)})).await?;
    r.expect_problem(
        &["badCSR", "badPublicKey"],
        &[400, 403],
        "a CSR for an RSA-1024 key",
    )
}

pub async fn csr_sha1(c: &Ctx) -> Verdict {
    let (a, o, names) = ready(c, 1).await?;
    let der = crate::rsa_csr::rsa_csr(&names, 2048, true)
        .map_err(|e| Halt::Fail(format!("internal: {e}"), None))?;
    let r = finalize_raw(c, &a, &o, json!({"csr": b64::encode(der)})).await?;
    r.expect_problem(
        &["badCSR", "malformed"],
        &[400, 403],
        "a CSR signed with sha1WithRSAEncryption",
    )
}

/// A CSR with `cn` as subject commonName and `sans` as subjectAltName (none when empty).
fn csr_cn(cn: Option<&str>, sans: &[String]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut p = rcgen::CertificateParams::new(sans.to_vec()).expect("names");
    p.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    }
    p.serialize_request(&key).expect("CSR").der().to_vec()
}

pub async fn csr_no_names(c: &Ctx) -> Verdict {
    refused_csr(
        c,
        1,
        "a CSR with neither commonName nor subjectAltName",
        |_| csr_cn(None, &[]),
    )
    .await
}

pub async fn csr_cn_other(c: &Ctx) -> Verdict {
    let other = c.name();
    refused_csr(
        c,
        1,
        "a CSR whose SAN is the order's name but whose commonName is another",
        |names| csr_cn(Some(&other), names),
    )
    .await
}

pub async fn csr_cn_only(c: &Ctx) -> Verdict {
    let (a, o, names) = ready(c, 1).await?;
    let r = finalize_raw(
        c,
        &a,
        &o,
        json!({"csr": b64::encode(csr_cn(Some(&names[0]), &[]))}),
    )
    .await?;
    r.expect_status(
        &[200],
        "finalize with the order's name only in the CSR's commonName",
    )?;
    let done = c
        .poll(&a, &o.url, "the order after finalize", |b| {
            b["status"] != "processing" && b["status"] != "ready"
        })
        .await?;
    ensure!(
        done.body["status"] == "valid",
        &done,
        "the order did not become valid"
    );
    let dl = c
        .signed(
            &a,
            done.body["certificate"].as_str().unwrap_or_default(),
            None,
        )
        .await?;
    let leaf = crate::fixtures::pem_certs(&dl.text)
        .into_iter()
        .next()
        .unwrap_or_default();
    let sans = super::cert::san_names(&leaf).unwrap_or_default();
    ensure!(
        sans == names,
        &dl,
        "the certificate's SANs {sans:?} are not the name {:?} from the CSR's commonName",
        names[0]
    );
    Ok(())
}
