//! Authorizations (RFC 8555 §7.5, §7.5.2), pre-authorization (§7.4.1) and challenges (§7.5.1).

use crate::auth::KeyMode;
use crate::error::AcmeResult;
use crate::routes::order::{challenge_types, checked_identifiers};
use crate::routes::{json_response, objects};
use crate::state::{AppState, Urls};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use cobble_core::Problem;
use cobble_core::nonce::OpenedNonce;
use cobble_core::status::{AuthzStatus, ChallengeStatus};
use cobble_store::Authz;
use serde::Deserialize;

async fn owned_authz(
    s: &AppState,
    account_id: &str,
    id: &str,
    redeem: Option<&OpenedNonce>,
) -> AcmeResult<Authz> {
    let a = match redeem {
        None => s.store.authz(id).await?,
        Some(n) => s.store.authz_redeeming(id, n).await?,
    }
    .ok_or_else(|| Problem::not_found(&format!("authorization {id}")))?;
    if a.account_id != account_id {
        return Err(Problem::unauthorized(format!(
            "authorization {id} belongs to another account"
        ))
        .into());
    }
    Ok(a)
}

fn retry_after(mut r: Response, poll: bool) -> Response {
    if poll {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

#[derive(Debug, Deserialize)]
struct AuthzUpdate {
    status: Option<String>,
}

/// POST /acme/authz/{id}: POST-as-GET reads; `{"status": "deactivated"}` deactivates (§7.5.2).
pub async fn authz(State(s): State<AppState>, Path(id): Path<String>, req: Request) -> AcmeResult {
    let r = s.authenticate(req, KeyMode::Kid).await?;
    // A POST-as-GET redeems its nonce with the read; an update in its own transaction.
    let redeem = r.jws.is_post_as_get().then_some(&r.nonce);
    let mut a = owned_authz(&s, &r.account().id, &id, redeem).await?;
    let url = Urls(&r.base).authz(&id);
    if !r.jws.is_post_as_get() {
        let upd: AuthzUpdate = r.jws.payload_json()?;
        match upd.status.as_deref() {
            Some("deactivated") => {
                let now = s.clock.now_ms();
                let mut tx = s.begin(&r).await?;
                if !tx.deactivate_authz(&id, now).await? {
                    return Err(Problem::malformed(format!(
                        "authorization {id} is {}; only pending or valid authorizations can be deactivated",
                        a.status.at(a.expires_ms, now).as_str()
                    ))
                    .into());
                }
                tx.commit().await?;
                a.status = AuthzStatus::Deactivated;
                return Ok(json_response(
                    StatusCode::OK,
                    &objects::authz(&r.base, &a, now),
                    Some(&url),
                ));
            }
            Some(other) => {
                return Err(Problem::malformed(format!(
                    "authorization status {other:?} cannot be requested; only \"deactivated\""
                ))
                .into());
            }
            None => {}
        }
    }
    if redeem.is_none() {
        s.store.redeem_nonce(&r.nonce).await?;
    }
    let resp = json_response(
        StatusCode::OK,
        &objects::authz(&r.base, &a, s.clock.now_ms()),
        Some(&url),
    );
    Ok(retry_after(resp, objects::in_flight(&a)))
}

#[derive(Debug, Deserialize)]
struct NewAuthzRequest {
    identifier: NewAuthzIdentifier,
}

#[derive(Debug, Deserialize)]
struct NewAuthzIdentifier {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

/// POST /acme/new-authz (§7.4.1): an authorization before any order; a later order for the
/// name reuses it once valid.
pub async fn new_authz(State(s): State<AppState>, req: Request) -> AcmeResult {
    if !s.cfg.pre_authorization {
        return Err(Problem::not_found(
            "newAuthz (pre-authorization is switched off on this server)",
        )
        .into());
    }
    let r = s.authenticate(req, KeyMode::Kid).await?;
    let body: NewAuthzRequest = r.jws.payload_json()?;
    if body.identifier.value.starts_with("*.") {
        return Err(Problem::combine(vec![
            Problem::malformed(
                "newAuthz cannot pre-authorize a wildcard name (RFC 8555 §7.4.1); order it instead",
            )
            .for_identifier(&body.identifier.kind, &body.identifier.value),
        ])
        .into());
    }
    let ids = checked_identifiers(&s, &[(body.identifier.kind, body.identifier.value)])?;
    let standing = crate::ra::may_act(&s, &r.base, r.account()).await?;
    crate::ra::check_names(&s, &standing, &ids).await?;
    crate::ra::limits::check_pending(&s, &r.base, &r.account().id, 1).await?;
    let id = &ids[0];
    let now = s.clock.now_ms();
    let mut tx = s.begin(&r).await?;
    let authz_id = tx
        .create_preauthorization(
            &r.account().id,
            id,
            &challenge_types(id, false),
            now + s.cfg.pending_authz_lifetime_secs as i64 * 1000,
            now,
        )
        .await?;
    tx.commit().await?;
    let a = s
        .store
        .authz(&authz_id)
        .await?
        .ok_or_else(|| Problem::internal("the new authorization vanished"))?;
    Ok(json_response(
        StatusCode::CREATED,
        &objects::authz(&r.base, &a, now),
        Some(&Urls(&r.base).authz(&authz_id)),
    ))
}

/// Random delay before a validation runs (Pebble's VA sleep), in ms.
fn validation_delay_ms(s: &AppState) -> i64 {
    let max = s.cfg.va_sleep_max_secs as i64 * 1000;
    if max <= 0 {
        return 0;
    }
    s.faults.below(max as u64 + 1) as i64
}

/// POST /acme/chall/{id}: POST-as-GET reads; a JSON object (normally `{}`) asks the server
/// to validate (§7.5.1).
pub async fn challenge(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> AcmeResult {
    let r = s.authenticate(req, KeyMode::Kid).await?;
    // The challenge's authorization in one read; a POST-as-GET redeems its nonce with it.
    let redeem = r.jws.is_post_as_get().then_some(&r.nonce);
    let a = s
        .store
        .authz_of_challenge(&id, redeem)
        .await?
        .ok_or_else(|| Problem::not_found(&format!("challenge {id}")))?;
    let authz_id = a.id.clone();
    if a.account_id != r.account().id {
        return Err(Problem::unauthorized(format!(
            "authorization {authz_id} belongs to another account"
        ))
        .into());
    }
    let now = s.clock.now_ms();
    let mut ch = a
        .challenges
        .iter()
        .find(|c| c.id == id)
        .cloned()
        .ok_or_else(|| Problem::not_found(&format!("challenge {id}")))?;
    if redeem.is_none() {
        let _: serde_json::Map<String, serde_json::Value> = r.jws.payload_json()?;
        let authz_status = a.status.at(a.expires_ms, now);
        if authz_status == AuthzStatus::Deactivated {
            return Err(Problem::coded(
                cobble_core::ResultCode::AcmeDeactivated,
                format!(
                    "authorization {authz_id} was deactivated by the client; its challenges can no longer be answered: create a new order"
                ),
            )
            .into());
        }
        if ch.status == ChallengeStatus::Pending && authz_status == AuthzStatus::Pending {
            crate::ra::limits::check_failed_validations(
                &s,
                &r.base,
                &r.account().id,
                &a.identifier.value(),
            )
            .await?;
        }
        if ch.status == ChallengeStatus::Pending && authz_status != AuthzStatus::Pending {
            return Err(Problem::malformed(format!(
                "authorization {authz_id} is {}; its challenges can no longer be answered",
                authz_status.as_str()
            ))
            .into());
        }
        // A job due now goes straight to a validation slot of this process when one is
        // free, claimed as it is queued; otherwise (a delay, no room) the dispatcher
        // claims it from the queue.
        let delay = validation_delay_ms(&s);
        let handoff = if delay == 0 {
            s.validations.handoff(&s.instance_id)
        } else {
            None
        };
        let claim = handoff.as_ref().map(|h| cobble_store::Claim {
            worker: &h.worker_id,
            lease_until_ms: now + s.cfg.validation_lease_secs as i64 * 1000,
        });
        let started = s
            .store
            .start_challenge_redeeming(&r.nonce, &id, now + delay, now, claim)
            .await?;
        if started {
            ch.status = ChallengeStatus::Processing;
            match handoff {
                Some(h) => h.start(
                    &s,
                    id.clone(),
                    crate::worker::Known {
                        authz: a,
                        key_thumbprint: r.account().key_thumbprint.clone(),
                    },
                ),
                None => s.validations.notify(),
            }
        }
    }
    let u = Urls(&r.base);
    let mut resp = json_response(StatusCode::OK, &objects::challenge(&r.base, &ch), None);
    if let Ok(v) = HeaderValue::from_str(&format!("<{}>;rel=\"up\"", u.authz(&authz_id))) {
        resp.headers_mut().append(header::LINK, v);
    }
    Ok(retry_after(resp, ch.status == ChallengeStatus::Processing))
}
