//! Accounts (RFC 8555 §7.3): newAccount, the account resource (read, update,
//! deactivate) and the account's orders list.

use crate::auth::{KeyMode, inactive_account};
use crate::error::{AcmeError, AcmeResult};
use crate::routes::directory::terms_url;
use crate::routes::json_response;
use crate::state::{AppState, Urls};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use cobble_core::account::AccountStatus;
use cobble_core::operator::{Approval, ExternalAccountStatus};
use cobble_core::{Problem, ProblemType, clock, contact};
use cobble_store::{Account, AccountCreated, AccountUpdate, NewAccount};
use serde::Deserialize;
use serde_json::json;

/// The newAccount payload (RFC 8555 §7.3).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAccountRequest {
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    terms_of_service_agreed: Option<bool>,
    #[serde(default)]
    only_return_existing: bool,
    #[serde(default)]
    external_account_binding: Option<serde_json::Value>,
}

/// The account update payload (RFC 8555 §7.3.2, §7.3.6).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateRequest {
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    terms_of_service_agreed: Option<bool>,
}

/// The account object (RFC 8555 §7.1.2), plus `createdAt`, `initialIp` and `key` as Boulder sends.
pub fn account_object(base: &str, a: &Account) -> serde_json::Value {
    json!({
        "status": a.status.as_str(),
        "contact": a.contact,
        "termsOfServiceAgreed": a.tos_agreed,
        "orders": Urls(base).account_orders(&a.id),
        "createdAt": clock::rfc3339(a.created_ms),
        "initialIp": a.initial_ip,
        "key": serde_json::from_str::<serde_json::Value>(&a.jwk).unwrap_or_default(),
    })
}

/// POST /acme/new-acct (RFC 8555 §7.3, §7.3.1).
pub async fn new_account(State(s): State<AppState>, req: Request) -> AcmeResult {
    let r = s.authenticate(req, KeyMode::Jwk).await?;
    let body: NewAccountRequest = r.jws.payload_json()?;
    let thumb = r.key.thumbprint();

    if let Some(existing) = s.store.account_by_thumbprint(&thumb).await? {
        if existing.status != AccountStatus::Valid {
            return Err(inactive_account(&existing).into());
        }
        s.store.redeem_nonce(&r.nonce).await?;
        let url = Urls(&r.base).account(&existing.id);
        return Ok(json_response(
            StatusCode::OK,
            &account_object(&r.base, &existing),
            Some(&url),
        ));
    }
    if body.only_return_existing {
        return Err(Problem::new(
            ProblemType::AccountDoesNotExist,
            "no account exists for this key (onlyReturnExisting was set)",
        )
        .into());
    }
    let contact = body.contact.unwrap_or_default();
    contact::validate(&contact)?;
    let tos_agreed = body.terms_of_service_agreed.unwrap_or(false);
    if let Some(tos) = terms_url(&s, &r.base)
        && !tos_agreed
    {
        let link = format!("<{tos}>;rel=\"terms-of-service\"");
        return Err(AcmeError::from(Problem::new(
            ProblemType::UserActionRequired,
            format!(
                "you must agree to the terms of service at {tos} (set termsOfServiceAgreed: true)"
            ),
        ))
        .with_header(
            header::LINK,
            HeaderValue::from_str(&link).map_err(|_| Problem::internal("bad ToS URL"))?,
        ));
    }
    let now = s.clock.now_ms();
    let external = match &body.external_account_binding {
        Some(binding) => {
            let url = Urls(&r.base).path("/acme/new-acct");
            let ea = crate::ra::eab::verify(&s, binding, &url, &r.key).await?;
            // A pending external account may bind (its orders wait for the operator);
            // one that is suspended, expired, revoked or deactivated may not.
            if ea.status_at(now) != ExternalAccountStatus::Pending
                && let Some(p) = crate::ra::external_refusal(&ea, now)
            {
                return Err(p.into());
            }
            Some(ea)
        }
        None if s.cfg.eab_required => {
            return Err(Problem::new(
                ProblemType::ExternalAccountRequired,
                "this CA requires External Account Binding: register with the key id and HMAC key the operator gave you (e.g. certbot --eab-kid KID --eab-hmac-key KEY)",
            )
            .into());
        }
        None => None,
    };
    let mut tx = s.begin(&r).await?;
    let created = tx
        .create_account(NewAccount {
            key_thumbprint: thumb,
            jwk: r.key.to_jwk().to_string(),
            contact,
            tos_agreed,
            initial_ip: r.peer.clone(),
            now_ms: now,
            external_kid: external.as_ref().map(|e| e.kid.clone()),
            approval: Some(if s.cfg.operator_approval {
                Approval::Pending
            } else {
                Approval::Approved
            }),
            expires_ms: (s.cfg.account_lifetime_days > 0)
                .then(|| now + s.cfg.account_lifetime_days as i64 * 86_400_000),
        })
        .await?;
    if let (AccountCreated::New(_), Some(ea)) = (&created, &external)
        && !tx
            .bind_external_account(&ea.kid, s.cfg.eab_reusable, now)
            .await?
    {
        return Err(Problem::unauthorized(format!(
            "externalAccountBinding: the key of external account {} is already bound to another ACME account; each EAB key binds one account key (ask the operator for a new one)",
            ea.kid
        ))
        .into());
    }
    tx.commit().await?;
    let (status, account) = match created {
        AccountCreated::New(a) => {
            tracing::info!(account = %a.id, "account created");
            (StatusCode::CREATED, a)
        }
        AccountCreated::Existing(a) => (StatusCode::OK, a),
    };
    let url = Urls(&r.base).account(&account.id);
    Ok(json_response(
        status,
        &account_object(&r.base, &account),
        Some(&url),
    ))
}

/// Checks that the `kid` account is the one the URL names (RFC 8555 §7.3.2).
pub fn same_account(a: &Account, id: &str) -> Result<(), Problem> {
    if a.id == id {
        Ok(())
    } else {
        Err(Problem::unauthorized(format!(
            "the request is signed by account {}, not by account {id}",
            a.id
        )))
    }
}

/// POST /acme/acct/{id}: POST-as-GET reads; a payload updates contacts or deactivates.
pub async fn account(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> AcmeResult {
    let r = s.authenticate(req, KeyMode::Kid).await?;
    let acct = r.account();
    same_account(acct, &id)?;
    let url = Urls(&r.base).account(&id);
    let empty_object = r.jws.payload == b"{}";
    if r.jws.is_post_as_get() || empty_object {
        s.store.redeem_nonce(&r.nonce).await?;
        return Ok(json_response(
            StatusCode::OK,
            &account_object(&r.base, acct),
            Some(&url),
        ));
    }
    let body: UpdateRequest = r.jws.payload_json()?;
    let mut update = AccountUpdate::default();
    if let Some(c) = body.contact {
        contact::validate(&c)?;
        update.contact = Some(c);
    }
    if let Some(st) = body.status.as_deref() {
        update.status = Some(acct.status.client_transition(st)?);
    }
    if body.terms_of_service_agreed == Some(true) {
        update.tos_agreed = Some(true);
    }
    let mut tx = s.begin(&r).await?;
    let updated = tx
        .update_account(&id, &update, s.clock.now_ms())
        .await?
        .ok_or_else(|| Problem::unauthorized(format!("account {id} is no longer valid")))?;
    tx.commit().await?;
    if update.status == Some(AccountStatus::Deactivated) {
        tracing::info!(account = %id, "account deactivated by its holder");
    }
    Ok(json_response(
        StatusCode::OK,
        &account_object(&r.base, &updated),
        Some(&url),
    ))
}
