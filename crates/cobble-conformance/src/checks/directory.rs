//! RFC 8555 §7.1.1: the directory.

use crate::client::{Halt, Verdict, fail_with};
use crate::ctx::Ctx;
use crate::ensure;

pub async fn get_json(c: &Ctx) -> Verdict {
    let r = c.get(&c.opts.directory).await?;
    r.expect_status(&[200], "GET of the directory")?;
    ensure!(r.body.is_object(), &r, "the directory is not a JSON object");
    ensure!(
        r.media_type() == "application/json",
        &r,
        "the directory's media type is {:?}, not application/json",
        r.media_type()
    );
    Ok(())
}

pub async fn required_urls(c: &Ctx) -> Verdict {
    let r = c.get(&c.opts.directory).await?;
    for name in [
        "newNonce",
        "newAccount",
        "newOrder",
        "revokeCert",
        "keyChange",
    ] {
        let Some(u) = r.body[name].as_str() else {
            return fail_with(&r, format!("the directory has no {name:?} URL"));
        };
        ensure!(
            u.starts_with("https://"),
            &r,
            "{name} is {u:?}, not an https URL (RFC 8555 §6.1)"
        );
    }
    if let Some(v) = r.body.get("newAuthz") {
        ensure!(
            v.as_str().is_some_and(|u| u.starts_with("https://")),
            &r,
            "newAuthz is present but not an https URL"
        );
    }
    Ok(())
}

pub async fn meta_types(c: &Ctx) -> Verdict {
    let r = c.get(&c.opts.directory).await?;
    let Some(meta) = r.body.get("meta") else {
        return Err(Halt::NotApplicable(
            "the directory has no meta object".into(),
        ));
    };
    ensure!(meta.is_object(), &r, "meta is not an object");
    for k in ["termsOfService", "website"] {
        if let Some(v) = meta.get(k) {
            ensure!(v.is_string(), &r, "meta.{k} is not a string");
        }
    }
    if let Some(v) = meta.get("caaIdentities") {
        ensure!(
            v.as_array()
                .is_some_and(|a| a.iter().all(|x| x.is_string())),
            &r,
            "meta.caaIdentities is not an array of strings"
        );
    }
    if let Some(v) = meta.get("externalAccountRequired") {
        ensure!(
            v.is_boolean(),
            &r,
            "meta.externalAccountRequired is not a boolean"
        );
    }
    Ok(())
}

pub async fn post_as_get(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let r = c.signed(&a, &c.opts.directory, None).await?;
    r.expect_status(&[200], "POST-as-GET of the directory")?;
    ensure!(
        r.body["newNonce"] == c.dir["newNonce"],
        &r,
        "the POST-as-GET answer is not the directory"
    );
    Ok(())
}

pub async fn no_auth_needed(c: &Ctx) -> Verdict {
    let r = c.get(&c.opts.directory).await?;
    r.expect_status(&[200], "unauthenticated GET of the directory")?;
    let n = c.get(&c.url("newNonce")?).await?;
    n.expect_status(&[200, 204], "unauthenticated GET of newNonce")?;
    Ok(())
}
