//! Finalize (RFC 8555 §7.4) and certificate download (§7.4.2). The order moves to
//! `processing` with the nonce redeemed, the CA signs off the reactor, and the certificate
//! and the order's `valid` state land in one transaction.

use crate::auth::KeyMode;
use crate::error::{AcmeError, AcmeResult, store_problem};
use crate::routes::{json_response, objects};
use crate::state::{AppState, Urls};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cobble_core::identifier::Identifier;
use cobble_core::status::{ChallengeStatus, OrderStatus};
use cobble_core::{Problem, ProblemType, ResultCode, b64};
use cobble_store::{NewCertificate, Order};
use serde::Deserialize;
use time::OffsetDateTime;

#[derive(Debug, Deserialize)]
struct FinalizeRequest {
    csr: String,
}

fn ms_to_time(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn time_to_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
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
    let order = crate::routes::order::owned_order(&s, &account.id, &id).await?;
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
    let mut tx = s.begin(&r).await?;
    if !tx.begin_finalize(&id, now).await? {
        return Err(Problem::new(
            ProblemType::OrderNotReady,
            format!("order {id} is already being finalized"),
        )
        .into());
    }
    tx.commit().await?;
    tracing::info!(order = %id, key = %checked.key_description, "finalizing");
    let job = issue(s.clone(), order.clone(), checked, profile, spki_hash);
    if s.cfg.finalize_async {
        tokio::spawn(job);
    } else {
        job.await;
    }
    let order = s
        .store
        .order(&id)
        .await?
        .ok_or_else(|| Problem::internal("the order vanished"))?;
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

/// Signs and stores; on failure the order becomes `invalid` with an `ACME_CA_ERROR` problem.
async fn issue(
    s: AppState,
    order: Order,
    checked: cobble_ca::csr::CheckedCsr,
    profile: cobble_ca::Profile,
    spki_hash: String,
) {
    let base = s.account_base();
    let now = s.clock.now_ms();
    let ca = s.ca.clone();
    let names: Vec<Identifier> = order.identifiers.clone();
    let urls = cobble_ca::IssuanceUrls {
        ocsp: Some(Urls(&base).path("/ocsp")),
        ca_issuers: Some(Urls(&base).path("/acme/issuer")),
        crl: Some(Urls(&base).path("/crl")),
    };
    let (nb, na) = (
        order.not_before_ms.map(ms_to_time),
        order.not_after_ms.map(ms_to_time),
    );
    let must_staple = checked.must_staple;
    let signed = tokio::task::spawn_blocking(move || {
        let issued = ca.issue(&cobble_ca::LeafRequest {
            spki_der: &checked.spki_der,
            names: &names,
            profile: &profile,
            now: ms_to_time(now),
            not_before: nb,
            not_after: na,
            urls,
            must_staple,
        })?;
        let ari = cobble_ca::ari::ari_cert_id(&issued.der)?;
        Ok::<_, cobble_ca::CaError>((issued, ari))
    })
    .await;
    let result = match signed {
        Ok(Ok((issued, ari))) => {
            let cert = NewCertificate {
                serial: issued.serial_hex.clone(),
                pem: issued.pem.clone(),
                spki_sha256: spki_hash,
                ari_id: ari,
                not_before_ms: time_to_ms(issued.not_before),
                not_after_ms: time_to_ms(issued.not_after),
            };
            let stored = async {
                let mut tx = s.store.begin().await?;
                tx.finish_issuance(&order.id, &cert, s.clock.now_ms())
                    .await?;
                tx.commit().await
            };
            stored
                .await
                .map_err(|e| ("storing the certificate", e.to_string()))
        }
        Ok(Err(e)) => Err(("signing", e.to_string())),
        Err(e) => Err(("the signing task", e.to_string())),
    };
    if let Err((stage, why)) = result {
        // The cause stays in the log; the client learns which stage failed.
        tracing::error!(order = %order.id, stage, error = %why, "issuance failed");
        let p = Problem::coded(
            ResultCode::AcmeCaError,
            format!(
                "the CA could not issue the certificate: {stage} failed on the server; it has been logged"
            ),
        );
        let recorded = async {
            let mut tx = s.store.begin().await?;
            tx.fail_order(
                &order.id,
                &serde_json::to_string(&p).expect("serializes"),
                s.clock.now_ms(),
            )
            .await?;
            tx.commit().await
        };
        if let Err(e) = recorded.await {
            tracing::error!(order = %order.id, error = %e, "could not record the failed issuance");
        }
    }
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
        .certificate(&id)
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
    s.store.redeem_nonce(&r.nonce).await?;
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
