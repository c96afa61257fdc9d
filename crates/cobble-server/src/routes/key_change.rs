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
use cobble_core::jwk::PublicKey;
use cobble_core::jws::{Jws, KeyRef};
use cobble_store::{KeyChanged, StoreError};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyChangePayload {
    account: String,
    old_key: serde_json::Value,
}

/// POST /acme/key-change.
pub async fn key_change(State(s): State<AppState>, req: Request) -> AcmeResult {
    let r = s.authenticate(req, KeyMode::Kid).await?;
    let account = r.account();
    let inner = Jws::parse(&r.jws.payload, &s.key_policy).map_err(|p| {
        Problem::new(p.kind, format!("inner JWS: {}", p.detail)).with_status(p.status)
    })?;
    if inner.protected.nonce.is_some() {
        return Err(
            Problem::malformed("inner JWS must not carry a \"nonce\" (RFC 8555 §7.3.5)").into(),
        );
    }
    let KeyRef::Jwk(new_key) = &inner.protected.key else {
        return Err(Problem::malformed(
            "inner JWS must carry the new key as \"jwk\" (RFC 8555 §7.3.5)",
        )
        .into());
    };
    inner.verify(new_key).map_err(|_| {
        Problem::malformed("inner JWS signature does not verify with the new key it carries")
    })?;
    if inner.protected.url != r.jws.protected.url {
        return Err(Problem::malformed(format!(
            "inner JWS \"url\" {:?} differs from the outer \"url\" {:?}",
            inner.protected.url, r.jws.protected.url
        ))
        .into());
    }
    let payload: KeyChangePayload = inner
        .payload_json()
        .map_err(|p| Problem::malformed(format!("inner JWS payload: {}", p.detail)))?;
    let kid = Urls(&r.base).account(&account.id);
    if payload.account != kid {
        return Err(Problem::malformed(format!(
            "inner payload \"account\" {:?} is not the account signing the request ({kid})",
            payload.account
        ))
        .into());
    }
    let old = PublicKey::from_stored_jwk(&payload.old_key)
        .map_err(|p| Problem::malformed(format!("inner payload \"oldKey\": {}", p.detail)))?;
    if old.thumbprint() != account.key_thumbprint {
        return Err(Problem::malformed(
            "inner payload \"oldKey\" is not the account's current key",
        )
        .into());
    }
    let new_thumb = new_key.thumbprint();
    if new_thumb == account.key_thumbprint {
        return Err(Problem::malformed("the new key is the account's current key").into());
    }
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
