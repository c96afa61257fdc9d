//! RFC 8555 §7.3: accounts.

use crate::client::{Halt, Verdict, fail_with};
use crate::ctx::Ctx;
use crate::ensure;
use serde_json::json;

const CONTACT_REFUSED: &[&str] = &["invalidContact", "unsupportedContact"];

pub async fn create(c: &Ctx) -> Verdict {
    let key = c.key();
    let url = c.url("newAccount")?;
    let payload = c
        .account_payload(&key, json!({"contact": ["mailto:conformance@example.com"]}))
        .await?;
    let r = c.signed_jwk(&key, &url, Some(&payload)).await?;
    r.expect_status(&[201], "newAccount with a fresh key")?;
    ensure!(r.location().is_some(), &r, "201 without a Location header");
    ensure!(
        r.body["status"] == "valid",
        &r,
        "a new account's status is not \"valid\""
    );
    Ok(())
}

pub async fn fields(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let r = c.signed(&a, &a.kid, None).await?;
    r.expect_status(&[200], "POST-as-GET of the account")?;
    ensure!(
        ["valid", "deactivated", "revoked"]
            .contains(&r.body["status"].as_str().unwrap_or_default()),
        &r,
        "status is not one of valid, deactivated, revoked"
    );
    ensure!(
        r.body["orders"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://")),
        &r,
        "the account has no \"orders\" URL (required by RFC 8555 §7.1.2)"
    );
    if let Some(ct) = r.body.get("contact") {
        ensure!(ct.is_array(), &r, "contact is not an array");
    }
    Ok(())
}

pub async fn existing_key(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let url = c.url("newAccount")?;
    let payload = c.account_payload(&a.key, json!({})).await?;
    let r = c.signed_jwk(&a.key, &url, Some(&payload)).await?;
    r.expect_status(&[200], "newAccount with a key that already has an account")?;
    ensure!(
        r.location().as_deref() == Some(a.kid.as_str()),
        &r,
        "Location is {:?}, not the existing account {}",
        r.location(),
        a.kid
    );
    Ok(())
}

pub async fn only_return_existing_unknown(c: &Ctx) -> Verdict {
    let key = c.key();
    let url = c.url("newAccount")?;
    let r = c
        .signed_jwk(&key, &url, Some(&json!({"onlyReturnExisting": true})))
        .await?;
    r.expect_problem(
        &["accountDoesNotExist"],
        &[400, 403, 404],
        "onlyReturnExisting with an unknown key",
    )
}

pub async fn only_return_existing_known(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let url = c.url("newAccount")?;
    let r = c
        .signed_jwk(&a.key, &url, Some(&json!({"onlyReturnExisting": true})))
        .await?;
    r.expect_status(&[200], "onlyReturnExisting with a known key")?;
    ensure!(
        r.location().as_deref() == Some(a.kid.as_str()),
        &r,
        "Location is not the account URL"
    );
    Ok(())
}

async fn new_account_contact(
    c: &Ctx,
    contact: serde_json::Value,
) -> Result<crate::client::Reply, Halt> {
    let key = c.key();
    let url = c.url("newAccount")?;
    let payload = c.account_payload(&key, json!({"contact": contact})).await?;
    c.signed_jwk(&key, &url, Some(&payload)).await
}

pub async fn contact_unsupported_scheme(c: &Ctx) -> Verdict {
    let r = new_account_contact(c, json!(["gopher://conformance.example.com/"])).await?;
    if r.status == 201 {
        return Err(Halt::NotApplicable(
            "the server accepts gopher: contacts".into(),
        ));
    }
    r.expect_problem(
        CONTACT_REFUSED,
        &[400],
        "a contact with an unsupported scheme",
    )?;
    ensure!(
        r.problem_type() == Some("unsupportedContact"),
        &r,
        "an unsupported scheme should be unsupportedContact"
    );
    Ok(())
}

pub async fn contact_invalid_mailto(c: &Ctx) -> Verdict {
    let r = new_account_contact(c, json!(["mailto:not an address"])).await?;
    r.expect_problem(CONTACT_REFUSED, &[400], "mailto:not an address")
}

pub async fn contact_not_array(c: &Ctx) -> Verdict {
    let r = new_account_contact(c, json!("mailto:conformance@example.com")).await?;
    r.expect_problem(
        &["malformed", "invalidContact"],
        &[400],
        "contact given as a string, not an array",
    )
}

pub async fn terms(c: &Ctx) -> Verdict {
    if c.dir["meta"]["termsOfService"].as_str().is_none() {
        return Err(Halt::NotApplicable(
            "the directory names no terms of service".into(),
        ));
    }
    let key = c.key();
    let url = c.url("newAccount")?;
    let mut payload = c.account_payload(&key, json!({})).await?;
    payload
        .as_object_mut()
        .map(|m| m.remove("termsOfServiceAgreed"));
    let r = c.signed_jwk(&key, &url, Some(&payload)).await?;
    if r.status == 201 {
        return Ok(()); // the server does not require agreement: allowed
    }
    r.expect_problem(
        &["userActionRequired"],
        &[403, 400],
        "newAccount without termsOfServiceAgreed",
    )
}

pub async fn post_as_get(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let r = c.signed(&a, &a.kid, None).await?;
    r.expect_status(&[200], "POST-as-GET of the account")?;
    ensure!(r.body["status"] == "valid", &r, "status is not valid");
    Ok(())
}

pub async fn update_contact(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let contact = json!(["mailto:updated@example.com"]);
    let r = c
        .signed(&a, &a.kid, Some(&json!({"contact": contact})))
        .await?;
    r.expect_status(&[200], "an account update of contact")?;
    ensure!(
        r.body["contact"] == contact,
        &r,
        "the answer does not show the new contact"
    );
    let g = c.signed(&a, &a.kid, None).await?;
    ensure!(
        g.body["contact"] == contact,
        &g,
        "the account does not keep the new contact"
    );
    Ok(())
}

pub async fn update_terms_only(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let r = c
        .signed(&a, &a.kid, Some(&json!({"termsOfServiceAgreed": true})))
        .await?;
    r.expect_status(
        &[200],
        "an account update carrying only termsOfServiceAgreed",
    )?;
    ensure!(
        r.body["status"] == "valid",
        &r,
        "the account is no longer valid"
    );
    Ok(())
}

pub async fn update_ignores_orders(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let before = c.signed(&a, &a.kid, None).await?;
    let r = c
        .signed(
            &a,
            &a.kid,
            Some(&json!({"orders": "https://conformance.invalid/orders"})),
        )
        .await?;
    r.expect_status(
        &[200],
        "an account update carrying the read-only orders field",
    )?;
    ensure!(
        r.body["orders"] == before.body["orders"],
        &r,
        "the update changed the orders URL"
    );
    Ok(())
}

pub async fn other_account(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let b = c.account().await?;
    let r = c
        .post_jws(
            &b.kid,
            &a.key.sign_with_kid(
                &a.kid,
                &b.kid,
                &c.nonce().await?,
                Some(&json!({"contact": ["mailto:x@example.com"]})),
            ),
        )
        .await?;
    r.expect_problem(
        &["unauthorized", "malformed"],
        &[400, 401, 403, 404],
        "updating another account",
    )
}

pub async fn orders_list(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let Some(url) = a.body["orders"].as_str().map(str::to_owned) else {
        return Err(Halt::Skip(
            "the account object has no orders URL (see acct.fields)".into(),
        ));
    };
    let r = c.signed(&a, &url, None).await?;
    r.expect_status(&[200], "POST-as-GET of the orders list")?;
    ensure!(
        r.body["orders"].is_array(),
        &r,
        "the orders list has no \"orders\" array"
    );
    Ok(())
}

pub async fn deactivate(c: &Ctx) -> Verdict {
    let a = c.account().await?;
    let r = c
        .signed(&a, &a.kid, Some(&json!({"status": "deactivated"})))
        .await?;
    r.expect_status(&[200], "deactivating the account")?;
    ensure!(
        r.body["status"] == "deactivated",
        &r,
        "status is not deactivated"
    );
    Ok(())
}

async fn deactivated(c: &Ctx) -> Result<crate::ctx::Account, Halt> {
    let a = c.account().await?;
    let r = c
        .signed(&a, &a.kid, Some(&json!({"status": "deactivated"})))
        .await?;
    if r.status != 200 {
        return fail_with(&r, "prerequisite: deactivating the account");
    }
    Ok(a)
}

pub async fn deactivated_refused(c: &Ctx) -> Verdict {
    let a = deactivated(c).await?;
    let r = c.signed(&a, &a.kid, Some(&json!({"contact": []}))).await?;
    r.expect_problem(
        &["unauthorized"],
        &[401, 403],
        "an update by a deactivated account",
    )
}

pub async fn deactivated_new_order(c: &Ctx) -> Verdict {
    let a = deactivated(c).await?;
    let r = c
        .signed(
            &a,
            &c.url("newOrder")?,
            Some(&json!({"identifiers": [{"type": "dns", "value": c.name()}]})),
        )
        .await?;
    r.expect_problem(
        &["unauthorized"],
        &[401, 403],
        "newOrder by a deactivated account",
    )
}
