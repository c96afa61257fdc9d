//! What relying parties fetch: the CRL (RFC 5280 §5), the OCSP responder (RFC 6960, GET
//! and POST), and ACME Renewal Information (RFC 9773).

use crate::error::{AcmeResult, internal, store_problem};
use crate::state::{AppState, Urls};
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use cobble_ca::crl::{RevocationReason, RevokedEntry};
use cobble_ca::ocsp::{CertStatus, OcspResponseStatus};
use cobble_core::Problem;
use cobble_core::clock::rfc3339;
use serde_json::json;
use time::{Duration, OffsetDateTime};

fn ms_to_time(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// The current CRL. Each instance caches the one it made, with the revocation generation
/// it was made at; a revocation anywhere bumps the generation in the store, so every
/// instance remakes its CRL at its next request (one cheap read each time). CRL numbers are
/// allocated in the store, so a later CRL always has a higher number, whichever instance
/// made it. Signing runs off the async reactor.
pub async fn current_crl(s: &AppState) -> Result<Vec<u8>, Problem> {
    let now = s.clock.now_ms();
    let lifetime = s.cfg.crl_lifetime_secs as i64 * 1000;
    let generation = s
        .store
        .revocation_generation()
        .await
        .map_err(store_problem)?;
    let mut cache = s.crl.lock().await;
    if let Some((made_at, made, der)) = cache.as_ref()
        && *made_at == generation
        && now - made < lifetime / 2
    {
        return Ok(der.clone());
    }
    let revoked = s
        .store
        .revoked_certificates(now)
        .await
        .map_err(store_problem)?;
    let entries: Vec<RevokedEntry> = revoked
        .iter()
        .map(|(serial, at, reason)| RevokedEntry {
            serial: unhex(serial),
            revoked_at: ms_to_time(*at),
            reason: RevocationReason::from_code(*reason as u8)
                .filter(|r| *r != RevocationReason::Unspecified),
        })
        .collect();
    let number = async {
        let mut tx = s.store.begin().await?;
        let n = tx.next_crl_number("0").await?;
        tx.commit().await?;
        Ok::<_, cobble_store::StoreError>(n)
    }
    .await
    .map_err(store_problem)?;
    let idp = Urls(&s.account_base()).path("/crl");
    let ca = s.ca.clone();
    let der = tokio::task::spawn_blocking(move || {
        cobble_ca::crl::build_crl(
            ca.issuer_cert_der(),
            ca.issuer_key(),
            &entries,
            number as u64,
            ms_to_time(now) - Duration::minutes(1),
            ms_to_time(now + lifetime),
            Some(&idp),
        )
    })
    .await
    .map_err(|e| internal("signing the CRL", e))?
    .map_err(|e| internal("signing the CRL", e))?;
    *cache = Some((generation, now, der.clone()));
    Ok(der)
}

/// GET /crl: the issuer's CRL, DER.
pub async fn crl(State(s): State<AppState>) -> AcmeResult<Response> {
    let der = current_crl(&s).await?;
    Ok(([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response())
}

async fn ocsp_answer(s: &AppState, request_der: &[u8]) -> Vec<u8> {
    let (ids, nonce) = match cobble_ca::ocsp::parse_request_with_nonce(request_der) {
        Ok(r) if !r.cert_ids.is_empty() => (r.cert_ids, r.nonce),
        _ => return cobble_ca::ocsp::error_response(OcspResponseStatus::MalformedRequest),
    };
    let mut answers = Vec::with_capacity(ids.len());
    for id in ids {
        let status = if !cobble_ca::ocsp::cert_id_matches_issuer(&id, s.ca.issuer_cert_der()) {
            CertStatus::Unknown
        } else {
            let serial: String = id.serial.iter().map(|b| format!("{b:02x}")).collect();
            match s.store.certificate_by_serial(&serial).await {
                Ok(Some(c)) => match c.revoked_ms {
                    Some(at) => CertStatus::Revoked {
                        at: ms_to_time(at),
                        reason: c
                            .revoked_reason
                            .and_then(|r| RevocationReason::from_code(r as u8)),
                    },
                    None => CertStatus::Good,
                },
                Ok(None) => CertStatus::Unknown,
                Err(_) => return cobble_ca::ocsp::error_response(OcspResponseStatus::TryLater),
            }
        };
        answers.push((id, status));
    }
    // Every answer reads the certificate's state now, so it is never older than the last
    // revocation; the signature is made off the async reactor.
    let now = ms_to_time(s.clock.now_ms());
    let (ca, lifetime) = (s.ca.clone(), s.cfg.crl_lifetime_secs as i64);
    tokio::task::spawn_blocking(move || {
        cobble_ca::ocsp::build_response(
            ca.issuer_cert_der(),
            ca.issuer_key(),
            &answers,
            now,
            now,
            now + Duration::seconds(lifetime),
            nonce.as_deref(),
        )
    })
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or_else(|| cobble_ca::ocsp::error_response(OcspResponseStatus::InternalError))
}

fn ocsp_response(der: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/ocsp-response")], der).into_response()
}

/// POST /ocsp (RFC 6960 Appendix A.1).
pub async fn ocsp_post(State(s): State<AppState>, body: Bytes) -> Response {
    ocsp_response(ocsp_answer(&s, &body).await)
}

/// GET /ocsp/{base64 request} (RFC 6960 Appendix A.1).
pub async fn ocsp_get(State(s): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().strip_prefix("/ocsp/").unwrap_or("");
    match cobble_ca::ocsp::parse_get_path(path) {
        Ok(der) => ocsp_response(ocsp_answer(&s, &der).await),
        Err(_) => ocsp_response(cobble_ca::ocsp::error_response(
            OcspResponseStatus::MalformedRequest,
        )),
    }
}

/// GET /acme/renewal-info/{certID} (RFC 9773 §4.2): the suggested renewal window, in the
/// past for a revoked certificate so that clients renew at once.
pub async fn renewal_info(
    State(s): State<AppState>,
    Path(cert_id): Path<String>,
) -> AcmeResult<Response> {
    cobble_ca::ari::parse_ari_cert_id(&cert_id)?;
    let cert = s
        .store
        .certificate_by_ari_id(&cert_id)
        .await?
        .ok_or_else(|| Problem::not_found(&format!("certificate {cert_id}")))?;
    if let Some(answer) = s.faults.renewal_info(&cert.serial) {
        // Set through the management listener's /set-renewal-info/ (Pebble's ARI override).
        let mut resp = axum::Json(answer).into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("21600"));
        return Ok(resp);
    }
    let now = s.clock.now_ms();
    let (start, end) = match cert.revoked_ms {
        Some(_) => (now - 2 * 86_400_000, now - 86_400_000),
        None => {
            let life = cert.not_after_ms - cert.not_before_ms;
            (
                cert.not_before_ms + life * 2 / 3,
                cert.not_before_ms + life * 5 / 6,
            )
        }
    };
    let mut body = json!({"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}});
    if cert.revoked_ms.is_some() {
        body["explanationURL"] = Urls(&s.account_base())
            .path("/renewal-info-explained")
            .into();
    }
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("21600"));
    Ok(resp)
}

/// GET /renewal-info-explained: what a window in the past means (RFC 9773 `explanationURL`).
pub async fn renewal_explained() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "This certificate has been revoked, so its suggested renewal window lies in the past:\n\
         replace it now. Revocation reasons and times are in the CRL (/crl) and from the OCSP\n\
         responder (/ocsp).\n",
    )
        .into_response()
}
