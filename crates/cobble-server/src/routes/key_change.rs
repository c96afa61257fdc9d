//! keyChange (RFC 8555 §7.3.5): roll an account over to a new key. The outer JWS is
//! signed by the old key (`kid`); its payload is an inner JWS signed by the new key
//! (`jwk`) whose payload names the account and the old key.

use crate::auth::KeyMode;
use crate::error::{AcmeError, AcmeResult};
use crate::routes::account::account_object;
use crate::routes::json_response;
use crate::state::{AppState, Urls};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use cobble_core::Problem;
use cobble_core::jwk::{KeyPolicy, PublicKey};
use cobble_core::jws::{Jws, KeyRef};
use cobble_store::{KeyChanged, StoreError};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyChangePayload {
    account: String,
    old_key: serde_json::Value,
}

/// RFC 8555 §7.3.5: checks the inner JWS of a keyChange request, the outer JWS's
/// `payload`, for the outer `url` and the signing account (its URL `account_kid` and key
/// thumbprint): it parses under `policy`, carries no `nonce`, embeds the new key as `jwk`
/// and verifies with it, has the outer `url`, names the account and its current key as
/// `oldKey`, and the new key differs from it. Returns the new key.
pub fn check_inner(
    payload: &[u8],
    outer_url: &str,
    account_kid: &str,
    account_thumbprint: &str,
    policy: &KeyPolicy,
) -> Result<PublicKey, Problem> {
    let inner = Jws::parse(payload, policy).map_err(|p| {
        Problem::new(p.kind, format!("inner JWS: {}", p.detail)).with_status(p.status)
    })?;
    if inner.protected.nonce.is_some() {
        return Err(Problem::malformed(
            "inner JWS must not carry a \"nonce\" (RFC 8555 §7.3.5)",
        ));
    }
    let KeyRef::Jwk(new_key) = &inner.protected.key else {
        return Err(Problem::malformed(
            "inner JWS must carry the new key as \"jwk\" (RFC 8555 §7.3.5)",
        ));
    };
    inner.verify(new_key).map_err(|_| {
        Problem::malformed("inner JWS signature does not verify with the new key it carries")
    })?;
    if inner.protected.url != outer_url {
        return Err(Problem::malformed(format!(
            "inner JWS \"url\" {:?} differs from the outer \"url\" {:?}",
            inner.protected.url, outer_url
        )));
    }
    let payload: KeyChangePayload = inner
        .payload_json()
        .map_err(|p| Problem::malformed(format!("inner JWS payload: {}", p.detail)))?;
    if payload.account != account_kid {
        return Err(Problem::malformed(format!(
            "inner payload \"account\" {:?} is not the account signing the request ({account_kid})",
            payload.account
        )));
    }
    let old = PublicKey::from_stored_jwk(&payload.old_key)
        .map_err(|p| Problem::malformed(format!("inner payload \"oldKey\": {}", p.detail)))?;
    if old.thumbprint() != account_thumbprint {
        return Err(Problem::malformed(
            "inner payload \"oldKey\" is not the account's current key",
        ));
    }
    if new_key.thumbprint() == account_thumbprint {
        return Err(Problem::malformed(
            "the new key is the account's current key",
        ));
    }
    Ok(new_key.clone())
}

/// POST /acme/key-change.
pub async fn key_change(State(s): State<AppState>, req: Request) -> AcmeResult {
    let r = s.authenticate(req, KeyMode::Kid).await?;
    let account = r.account();
    let kid = Urls(&r.base).account(&account.id);
    let new_key = check_inner(
        &r.jws.payload,
        &r.jws.protected.url,
        &kid,
        &account.key_thumbprint,
        &s.key_policy,
    )?;
    let new_thumb = new_key.thumbprint();
    let mut tx = s.begin(&r).await?;
    let changed = match tx
        .change_account_key(
            &account.id,
            &account.key_thumbprint,
            &new_thumb,
            &new_key.to_jwk().to_string(),
            s.clock.now_ms(),
        )
        .await
    {
        Ok(KeyChanged::Changed(a)) => {
            tx.commit().await?;
            KeyChanged::Changed(a)
        }
        Ok(other) => other,
        // Another account took the key between the check and the update: name it.
        Err(StoreError::KeyInUse) => {
            drop(tx);
            match s.store.account_by_thumbprint(&new_thumb).await? {
                Some(holder) => KeyChanged::Conflict(holder.id),
                None => KeyChanged::Stale,
            }
        }
        Err(e) => return Err(e.into()),
    };
    match changed {
        KeyChanged::Changed(a) => {
            tracing::info!(account = %a.id, "account key changed");
            Ok(json_response(
                StatusCode::OK,
                &account_object(&r.base, &a),
                Some(&kid),
            ))
        }
        KeyChanged::Conflict(other) => {
            let loc = Urls(&r.base).account(&other);
            Err(AcmeError::from(
                Problem::malformed(format!("the new key already belongs to account {loc}"))
                    .with_status(409),
            )
            .with_header(
                header::LOCATION,
                HeaderValue::from_str(&loc).map_err(|_| Problem::internal("bad account URL"))?,
            ))
        }
        KeyChanged::Stale => Err(Problem::unauthorized(
            "the account's key changed or the account was deactivated meanwhile; retry",
        )
        .into()),
    }
}
