//! RFC 8555 §7.4.2 and §9.1: certificate download.

use crate::client::{Halt, Verdict, fail_with};
use crate::ctx::Ctx;
use crate::ensure;
use crate::fixtures::pem_certs;
use x509_parser::prelude::*;

/// The SAN DNS names of a DER certificate.
pub fn san_names(der: &[u8]) -> Option<Vec<String>> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut out = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                out.push(d.to_string());
            }
        }
    }
    Some(out)
}

pub async fn media_type(c: &Ctx) -> Verdict {
    let i = c.issue(1).await?;
    ensure!(
        i.download.media_type() == "application/pem-certificate-chain",
        &i.download,
        "the certificate's media type is {:?}, not application/pem-certificate-chain",
        i.download.media_type()
    );
    Ok(())
}

pub async fn leaf_names(c: &Ctx) -> Verdict {
    let i = c.issue(2).await?;
    let Some(mut got) = san_names(&i.leaf_der) else {
        return fail_with(&i.download, "the first certificate does not parse");
    };
    got.sort();
    let mut want = i.names.clone();
    want.sort();
    ensure!(
        got == want,
        &i.download,
        "the leaf's SANs {got:?} are not the order's names {want:?}"
    );
    Ok(())
}

pub async fn chain_order(c: &Ctx) -> Verdict {
    let i = c.issue(1).await?;
    let ders = pem_certs(&i.download.text);
    let certs: Vec<_> = ders
        .iter()
        .filter_map(|d| X509Certificate::from_der(d).ok().map(|x| x.1))
        .collect();
    ensure!(
        certs.len() == ders.len() && !certs.is_empty(),
        &i.download,
        "a PEM block does not parse as a certificate"
    );
    for w in certs.windows(2) {
        ensure!(
            w[0].issuer() == w[1].subject(),
            &i.download,
            "certificate {:?} is not followed by its issuer (next is {:?})",
            w[0].subject().to_string(),
            w[1].subject().to_string()
        );
        ensure!(
            w[0].verify_signature(Some(w[1].public_key())).is_ok(),
            &i.download,
            "the signature of {:?} does not verify with the next certificate's key",
            w[0].subject().to_string()
        );
    }
    Ok(())
}

pub async fn links(c: &Ctx) -> Verdict {
    let i = c.issue(1).await?;
    let mut targets = i.download.links("up");
    targets.extend(i.download.links("alternate"));
    if targets.is_empty() {
        return Err(Halt::NotApplicable(
            "the certificate answer has no rel=up or rel=alternate link".into(),
        ));
    }
    for t in targets {
        let r = c.signed(&i.account, &t, None).await?;
        r.expect_status(&[200], &format!("POST-as-GET of the linked {t}"))?;
        ensure!(
            [
                "application/pem-certificate-chain",
                "application/pkix-cert",
                "application/pkcs7-mime"
            ]
            .contains(&r.media_type().as_str()),
            &r,
            "the linked resource is {:?}, not a certificate",
            r.media_type()
        );
    }
    Ok(())
}

pub async fn alternate_same_leaf(c: &Ctx) -> Verdict {
    let i = c.issue(1).await?;
    let alts = i.download.links("alternate");
    if alts.is_empty() {
        return Err(Halt::NotApplicable(
            "the server offers no alternate chains".into(),
        ));
    }
    for t in alts {
        let r = c.signed(&i.account, &t, None).await?;
        r.expect_status(&[200], "POST-as-GET of an alternate chain")?;
        let first = pem_certs(&r.text).into_iter().next();
        ensure!(
            first.as_deref() == Some(&i.leaf_der[..]),
            &r,
            "the alternate chain does not start with the same leaf"
        );
    }
    Ok(())
}

pub async fn other_account(c: &Ctx) -> Verdict {
    let i = c.issue(1).await?;
    let b = c.account().await?;
    let r = c.signed(&b, &i.cert_url, None).await?;
    if r.status == 200 {
        return Err(Halt::NotApplicable(
            "the server serves certificates to any account (certificates are public)".into(),
        ));
    }
    r.expect_problem(
        &["unauthorized", "malformed"],
        &[401, 403, 404],
        "another account fetching the certificate",
    )
}

pub async fn chain_to_root(c: &Ctx) -> Verdict {
    let Some(roots_url) = c.opts.roots_url.clone() else {
        return Err(Halt::Skip(
            "needs --roots-url (the PEM root, e.g. the management /roots/0 of Pebble or Cobble)"
                .into(),
        ));
    };
    let root = c.get(&roots_url).await?;
    root.expect_status(&[200], "GET of --roots-url")?;
    let Some(root_der) = pem_certs(&root.text).into_iter().next() else {
        return fail_with(&root, "--roots-url holds no PEM certificate");
    };
    let Ok((_, root_cert)) = X509Certificate::from_der(&root_der) else {
        return fail_with(&root, "the root does not parse");
    };
    let i = c.issue(1).await?;
    let ders = pem_certs(&i.download.text);
    let Some(last) = ders.last() else {
        return fail_with(&i.download, "no PEM certificate in the download");
    };
    let certs: Vec<_> = ders
        .iter()
        .filter_map(|d| X509Certificate::from_der(d).ok().map(|x| x.1))
        .collect();
    for w in certs.windows(2) {
        ensure!(
            w[0].verify_signature(Some(w[1].public_key())).is_ok(),
            &i.download,
            "the signature of {:?} does not verify with the next certificate's key",
            w[0].subject().to_string()
        );
    }
    if *last == root_der {
        return Ok(()); // the chain ends with the root itself
    }
    let Ok((_, last_cert)) = X509Certificate::from_der(last) else {
        return fail_with(&i.download, "the last certificate does not parse");
    };
    ensure!(
        last_cert.issuer() == root_cert.subject()
            && last_cert
                .verify_signature(Some(root_cert.public_key()))
                .is_ok(),
        &i.download,
        "the chain's last certificate {:?} is not signed by the root {:?} from {roots_url}",
        last_cert.subject().to_string(),
        root_cert.subject().to_string()
    );
    Ok(())
}
