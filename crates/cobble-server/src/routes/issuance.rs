//! Finalize (RFC 8555 §7.4) and certificate download (§7.4.2). The order moves to
//! `processing` and its issuance job is queued in the request's transaction, with the nonce
//! redeemed; [`crate::issuer`] signs and stores.

use crate::auth::KeyMode;
use crate::error::{AcmeError, AcmeResult, store_problem};
use crate::routes::{json_response, objects};
use crate::state::{AppState, Urls};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cobble_core::status::{ChallengeStatus, OrderStatus};
use cobble_core::{Problem, ProblemType, ResultCode, b64};
use cobble_store::Order;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct FinalizeRequest {
    csr: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 8659 §3 / Boulder: CAA is checked again at finalize for authorizations validated
/// longer ago than the re-check window.
async fn recheck_caa(
    s: &AppState,
    order: &Order,
    account_uri: &str,
    now: i64,
) -> Result<(), Problem> {
    let window = s.cfg.caa_recheck_secs as i64 * 1000;
    for (authz_id, _, _) in &order.authzs {
        let Some(a) = s.store.authz(authz_id).await.map_err(store_problem)? else {
            continue;
        };
        let Some(ch) = a
            .challenges
            .iter()
            .find(|c| c.status == ChallengeStatus::Valid)
        else {
            continue;
        };
        if ch.validated_ms.is_some_and(|v| now - v > window) {
            s.validator
                .check_caa(&a.identifier, a.wildcard, account_uri, ch.kind)
                .await?;
        }
    }
    Ok(())
}

/// POST /acme/order/{id}/finalize.
pub async fn finalize(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> AcmeResult {
    let r = s.authenticate(req, KeyMode::Kid).await?;
    let body: FinalizeRequest = r.jws.payload_json()?;
    let account = r.account().clone();
    let mut order = crate::routes::order::owned_order(&s, &account.id, &id, None).await?;
    let now = s.clock.now_ms();
    let status = order.status_at(now);
    if status != OrderStatus::Ready {
        return Err(Problem::new(
            ProblemType::OrderNotReady,
            format!(
                "order {id} is {}, not ready: finalize needs every authorization valid",
                status.as_str()
            ),
        )
        .into());
    }
    let standing = crate::ra::may_act(&s, &r.base, &account).await?;
    crate::ra::check_names(&s, &standing, &order.identifiers).await?;
    if crate::ra::limits::on(&s) {
        crate::ra::limits::check_certificates(
            &s,
            &account.id,
            &order.identifiers,
            order.replaces.is_some(),
        )
        .await
        .map_err(|l| l.into_error(&r.base))?;
    }
    let csr = b64::decode(body.csr.trim_end_matches('=')).map_err(|_| {
        Problem::new(
            ProblemType::BadCsr,
            "\"csr\" is not base64url DER (RFC 8555 §7.4)",
        )
    })?;
    let profile = s
        .profile(order.profile.as_deref())
        .cloned()
        .ok_or_else(|| {
            Problem::new(
                ProblemType::InvalidProfile,
                "the order's profile is no longer configured",
            )
        })?;
    let checked =
        cobble_ca::csr::check_csr(&csr, &order.identifiers, &r.key, &profile, &|_| false)?;
    let spki_hash = hex(&checked.spki_sha256);
    if s.store.is_key_blocked(&spki_hash).await? {
        return Err(Problem::new(
            ProblemType::BadCsr,
            "the CSR's key is blocked: a certificate for it was revoked for keyCompromise",
        )
        .into());
    }
    let account_uri = Urls(&r.base).account(&account.id);
    if let Err(p) = recheck_caa(&s, &order, &account_uri, now).await {
        return Err(p.into());
    }
    let request = crate::issuer::IssuanceRequest {
        spki_der: b64::encode(&checked.spki_der),
        spki_sha256: spki_hash,
        must_staple: checked.must_staple,
        profile: profile.name.clone(),
    };
    let worker = format!("{}-finalize", s.instance_id);
    if !s
        .store
        .finalize_redeeming(
            &r.nonce,
            &id,
            &serde_json::to_string(&request).expect("serializes"),
            &worker,
            now,
            crate::issuer::lease_ms(&s),
        )
        .await?
    {
        return Err(Problem::new(
            ProblemType::OrderNotReady,
            format!(
                "order {id} is no longer ready: it is being finalized already, or one of its authorizations was deactivated or expired meanwhile"
            ),
        )
        .into());
    }
    tracing::debug!(order = %id, key = %checked.key_description, "finalizing");
    // finalize_redeeming moved the order to `processing`; nothing else of it changed.
    order.stored_status = OrderStatus::Processing;
    let job = crate::issuer::start(&s, worker, id.clone(), request, Some(order));
    let mut issued = None;
    if !s.cfg.finalize_async && s.faults.stuck_for(&id).is_none() {
        // The task goes on if this request is dropped (the client hung up).
        issued = job.await.ok().flatten();
    }
    // The order the job stored, or (still processing, failed, taken over) as stored now.
    let order = match issued {
        Some(o) => o,
        None => s
            .store
            .order(&id)
            .await?
            .ok_or_else(|| Problem::internal("the order vanished"))?,
    };
    let now = s.clock.now_ms();
    let mut resp = json_response(
        StatusCode::OK,
        &objects::order(&r.base, &order, now),
        Some(&Urls(&r.base).order(&id)),
    );
    if order.status_at(now) == OrderStatus::Processing {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Ok(resp)
}

/// POST-as-GET /acme/cert/{id} and /acme/cert/{id}/{alt}: the PEM chain (leaf first, no
/// root), and the other chains as `rel="alternate"` (RFC 8555 §7.4.2).
pub async fn certificate(
    State(s): State<AppState>,
    Path(params): Path<Vec<String>>,
    req: Request,
) -> AcmeResult {
    let r = s.authenticate(req, KeyMode::Kid).await?;
    if !r.jws.is_post_as_get() {
        return Err(Problem::malformed(
            "a certificate is downloaded with POST-as-GET (empty payload)",
        )
        .into());
    }
    let id = params.first().cloned().unwrap_or_default();
    let alt: usize = match params.get(1) {
        None => 0,
        Some(a) => a
            .parse()
            .map_err(|_| Problem::not_found(&format!("certificate chain {a}")))?,
    };
    let cert = s
        .store
        .certificate_redeeming(&id, &r.nonce)
        .await?
        .ok_or_else(|| Problem::not_found(&format!("certificate {id}")))?;
    if cert.account_id != r.account().id {
        return Err(Problem::unauthorized(format!(
            "certificate {id} was issued to another account"
        ))
        .into());
    }
    let chain =
        s.ca.chain_pem(alt)
            .ok_or_else(|| Problem::not_found(&format!("certificate chain {alt}")))?;
    let u = Urls(&r.base);
    let mut resp: Response = (
        [(header::CONTENT_TYPE, "application/pem-certificate-chain")],
        format!("{}{}", cert.pem, chain),
    )
        .into_response();
    // No `rel="up"`: the PEM chain is already complete (as Pebble), and clients that
    // follow every link with POST-as-GET (acmez) must not land on the DER AIA resource.
    let h = resp.headers_mut();
    for other in (0..s.ca.root_count()).filter(|n| *n != alt) {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "<{}>;rel=\"alternate\"",
            u.certificate(&id, other)
        )) {
            h.append(header::LINK, v);
        }
    }
    Ok(resp)
}

/// GET /acme/issuer: the leaf-signing CA certificate, DER (the AIA caIssuers URL).
pub async fn issuer(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/pkix-cert")],
        s.ca.issuer_cert_der().to_vec(),
    )
        .into_response()
}

/// Maps a CA error in a request path to a problem.
pub fn ca_problem(e: cobble_ca::CaError) -> AcmeError {
    Problem::coded(ResultCode::AcmeCaError, e.to_string()).into()
}
