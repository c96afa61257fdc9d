//! Durable issuance (RFC 8555 §7.4). Finalize moves the order to `processing` and queues an
//! issuance job in one transaction, claimed at once by this instance, which signs in a task
//! of its own: a client hanging up does not cancel it, and the response waits for it unless
//! `--finalize-async`. If the instance dies before the job is done (kill -9, SIGTERM, a
//! crash), its lease runs out and the issuance worker of any instance claims the job again.
//! The certificate lands only while the job is held, and the schema allows one per order.
//! After [`MAX_ATTEMPTS`] claims the order becomes `invalid` with `ACME_ORDER_FINALIZE_ERROR`,
//! so no order stays `processing` longer than a few leases.

use crate::state::{AppState, Urls};
use cobble_core::account::AccountStatus;
use cobble_core::identifier::Identifier;
use cobble_core::status::OrderStatus;
use cobble_core::{Problem, ResultCode, b64};
use cobble_store::{IssuanceJob, NewCertificate, StoreError};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use time::OffsetDateTime;

/// Claims after which an issuance job is given up and its order made `invalid`.
pub const MAX_ATTEMPTS: i64 = 3;

/// What finalize checked, kept in the job so that any instance can sign.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuanceRequest {
    /// The CSR's SubjectPublicKeyInfo, DER, base64url.
    pub spki_der: String,
    /// SHA-256 of the SPKI, hex.
    pub spki_sha256: String,
    /// The CSR asked for must-staple (RFC 7633).
    pub must_staple: bool,
    /// The profile to sign with.
    pub profile: String,
}

fn ms_to_time(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn time_to_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The lease an issuance job is held under.
pub fn lease_ms(s: &AppState) -> i64 {
    s.cfg.issuance_lease_secs.max(1) as i64 * 1000
}

/// Starts running a job this instance holds, in a task of its own (tracked, so that
/// shutdown stops it and the lease hands it over); the handle tells when it is done, with
/// the order as stored when this job issued its certificate (None otherwise).
/// `known`: the order as the finalize request that queued the job read it and moved it to
/// `processing`, so the job does not read it again; None for a job taken from the queue.
pub fn start(
    s: &AppState,
    worker: String,
    order_id: String,
    req: IssuanceRequest,
    known: Option<cobble_store::Order>,
) -> tokio::task::JoinHandle<Option<cobble_store::Order>> {
    let task = tokio::spawn(run(s.clone(), worker, order_id, req, known));
    let mut running = s.issuing.lock().unwrap_or_else(|e| e.into_inner());
    running.retain(|h| !h.is_finished());
    running.push(task.abort_handle());
    task
}

/// Signs and stores the certificate of `order_id` if `worker` still holds its job; a CA
/// failure makes the order `invalid` with `ACME_CA_ERROR`. The order as stored once it is
/// `valid` with this job's certificate.
async fn run(
    s: AppState,
    worker: String,
    order_id: String,
    req: IssuanceRequest,
    known: Option<cobble_store::Order>,
) -> Option<cobble_store::Order> {
    if s.cfg.issuance_pause_ms > 0 {
        // Test hook: a window in which the instance can be killed mid-issuance.
        tokio::time::sleep(Duration::from_millis(s.cfg.issuance_pause_ms)).await;
    }
    if let Some(d) = s.faults.stuck_for(&order_id) {
        // Fault knob stuck-processing: the order stays `processing` this long.
        tokio::time::sleep(d).await;
    }
    let started = std::time::Instant::now();
    let (stage, why) = match sign_and_store(&s, &worker, &order_id, &req, known).await {
        Ok(issued) => return issued,
        Err(e) => e,
    };
    s.metrics.issuance("failed", started.elapsed());
    // The cause stays in the log; the client learns which stage failed.
    tracing::error!(order = %order_id, stage, error = %why, "issuance failed");
    let p = Problem::coded(
        ResultCode::AcmeCaError,
        format!(
            "the CA could not issue the certificate: {stage} failed on the server; it has been logged"
        ),
    );
    fail(&s, &worker, &order_id, &p).await;
    None
}

async fn fail(s: &AppState, worker: &str, order_id: &str, p: &Problem) {
    let recorded = async {
        let mut tx = s.store.begin_hot().await?;
        let held = tx
            .fail_issuance(
                order_id,
                worker,
                &serde_json::to_string(p).expect("problems serialize"),
                s.clock.now_ms(),
            )
            .await?;
        tx.commit().await?;
        Ok::<_, StoreError>(held)
    };
    match recorded.await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(order = %order_id, "issuance job taken over; failure not recorded")
        }
        Err(e) => {
            tracing::error!(order = %order_id, error = %e, "could not record the failed issuance; the job will be retried")
        }
    }
}

async fn sign_and_store(
    s: &AppState,
    worker: &str,
    order_id: &str,
    req: &IssuanceRequest,
    known: Option<cobble_store::Order>,
) -> Result<Option<cobble_store::Order>, (&'static str, String)> {
    let started = std::time::Instant::now();
    let store_err = |e: StoreError| ("storing the certificate", e.to_string());
    let read = match known {
        Some(o) => Ok(Some(o)),
        None => s.store.order(order_id).await,
    };
    let order = match read {
        Ok(Some(o)) => o,
        Ok(None) => return Err(("loading the order", format!("order {order_id} is gone"))),
        Err(e) if e.is_unavailable() => return Err(store_err(e)),
        Err(e) => {
            tracing::error!(order = %order_id, error = %e, "the order of an issuance job cannot be read");
            let p = Problem::coded(
                ResultCode::AcmeOrderNotRead,
                "the order could not be read on the server; it has been logged: finalize a new order",
            );
            fail(s, worker, order_id, &p).await;
            return Ok(None);
        }
    };
    if order.stored_status != OrderStatus::Processing {
        // Done already (a slow holder finished after its lease ran out): drop the job.
        tracing::info!(order = %order_id, status = order.stored_status.as_str(), "issuance job for an order no longer processing");
        return Ok(None);
    }
    let profile = s.profile(Some(&req.profile)).cloned().ok_or((
        "loading the profile",
        format!("profile {:?} is gone", req.profile),
    ))?;
    let spki = b64::decode(&req.spki_der).map_err(|_| ("reading the job", "spki".to_owned()))?;
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
    let must_staple = req.must_staple;
    let (issued, ari) = tokio::task::spawn_blocking(move || {
        let issued = ca.issue(&cobble_ca::LeafRequest {
            spki_der: &spki,
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
    .await
    .map_err(|e| ("the signing task", e.to_string()))?
    .map_err(|e| ("signing", e.to_string()))?;
    let cert = NewCertificate {
        serial: issued.serial_hex.clone(),
        pem: issued.pem.clone(),
        spki_sha256: req.spki_sha256.clone(),
        ari_id: ari,
        not_before_ms: time_to_ms(issued.not_before),
        not_after_ms: time_to_ms(issued.not_after),
    };
    let mut tx = s.store.begin_hot().await.map_err(store_err)?;
    // The operator may have revoked or closed the account (or its external account) since
    // finalize: read its standing here, where a cascade cannot miss this certificate.
    let standing = tx
        .issuance_standing(order_id)
        .await
        .map_err(store_err)?
        .ok_or((
            "reading the account's standing",
            "the order is gone".to_owned(),
        ))?;
    if let Some(p) = standing_refusal(&order.account_id, &standing, s.clock.now_ms()) {
        drop(tx);
        tracing::info!(order = %order_id, code = ?p.code, "account closed before issuance; the signature is discarded");
        fail(s, worker, order_id, &p).await;
        return Ok(None);
    }
    if let Some(refusal) = crate::ra::limits::check_and_record(
        s,
        &mut tx,
        &order.account_id,
        &order.identifiers,
        order.replaces.is_some(),
    )
    .await
    .map_err(store_err)?
    {
        drop(tx);
        tracing::info!(order = %order_id, "rate limit reached at issuance; the signature is discarded");
        fail(s, worker, order_id, &refusal.problem).await;
        return Ok(None);
    }
    if tx.debit_credit(order_id).await.map_err(store_err)? == cobble_store::Debit::OutOfCredit {
        drop(tx);
        tracing::info!(order = %order_id, "out of credit at issuance; the signature is discarded");
        let p = Problem::coded(
            ResultCode::OutOfCredit,
            "the external account's last credit went to another certificate meanwhile; ask the operator for more and finalize a new order",
        );
        fail(s, worker, order_id, &p).await;
        return Ok(None);
    }
    match tx
        .finish_issuance(order_id, worker, &cert, s.clock.now_ms())
        .await
        .map_err(store_err)?
    {
        Some(cert_id) => {
            tx.commit().await.map_err(store_err)?;
            tracing::info!(audit = "issuance", order = %order_id, serial = %cert.serial, "certificate issued");
            s.metrics.issuance("issued", started.elapsed());
            // As finish_issuance stored it.
            let mut order = order;
            order.stored_status = OrderStatus::Valid;
            order.certificate_id = Some(cert_id);
            Ok(Some(order))
        }
        None => {
            tracing::warn!(order = %order_id, "issuance job taken over by another worker; this signature is discarded");
            Ok(None)
        }
    }
}

/// Why a certificate may no longer be issued to an account in `standing`, if it may not.
fn standing_refusal(
    account_id: &str,
    standing: &cobble_store::IssuanceStanding,
    now_ms: i64,
) -> Option<Problem> {
    if standing.account_status != AccountStatus::Valid {
        return Some(crate::auth::inactive(account_id, standing.account_status));
    }
    let ea = standing.external.as_ref()?;
    crate::ra::external_status_refusal(&ea.kid, ea.status_at(now_ms))
}

/// The issuance worker: claims jobs whose holder died (lease run out) and runs them; one
/// per instance, polling like the validation workers.
pub fn spawn_worker(s: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let worker = format!("{}-issuer", s.instance_id);
        let poll = Duration::from_millis(s.cfg.validation_poll_ms.max(10));
        loop {
            let claimed = async {
                let mut tx = s.store.begin_hot().await?;
                let job = tx
                    .claim_issuance_job(&worker, s.clock.now_ms(), lease_ms(&s))
                    .await?;
                tx.commit().await?;
                Ok::<_, StoreError>(job)
            };
            match claimed.await {
                Ok(Some(job)) => take_over(&s, &worker, job).await,
                Ok(None) => tokio::time::sleep(poll).await,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming an issuance job failed");
                    tokio::time::sleep(poll).await;
                }
            }
        }
    })
}

async fn take_over(s: &AppState, worker: &str, job: IssuanceJob) {
    tracing::info!(order = %job.order_id, attempt = job.attempts, "taking over an issuance job");
    if job.attempts > MAX_ATTEMPTS {
        let p = Problem::coded(
            ResultCode::AcmeOrderFinalizeError,
            format!(
                "the certificate could not be issued after {MAX_ATTEMPTS} attempts; finalize a new order"
            ),
        );
        fail(s, worker, &job.order_id, &p).await;
        return;
    }
    match serde_json::from_str::<IssuanceRequest>(&job.request) {
        Ok(req) => {
            start(s, worker.to_owned(), job.order_id, req, None);
        }
        Err(e) => {
            tracing::error!(order = %job.order_id, error = %e, "unreadable issuance job");
            let p = Problem::coded(
                ResultCode::AcmeRequestNotFound,
                "the certificate request of this order could not be read on the server; finalize a new order",
            );
            fail(s, worker, &job.order_id, &p).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::standing_refusal;
    use cobble_core::ResultCode;
    use cobble_core::account::AccountStatus;
    use cobble_core::operator::ExternalAccountStatus;
    use cobble_store::{ExternalStanding, IssuanceStanding};

    fn standing(
        account: AccountStatus,
        ea: Option<(ExternalAccountStatus, Option<i64>)>,
    ) -> IssuanceStanding {
        IssuanceStanding {
            account_status: account,
            external: ea.map(|(status, expires_ms)| ExternalStanding {
                kid: "k1".into(),
                status,
                expires_ms,
            }),
        }
    }

    #[test]
    fn a_closed_account_or_external_account_gets_no_certificate() {
        let code = |s: IssuanceStanding| standing_refusal("a1", &s, 1_000).map(|p| p.code);
        assert_eq!(code(standing(AccountStatus::Valid, None)), None);
        assert_eq!(
            code(standing(
                AccountStatus::Valid,
                Some((ExternalAccountStatus::Valid, Some(2_000)))
            )),
            None
        );
        assert_eq!(
            code(standing(AccountStatus::Revoked, None)),
            Some(Some(ResultCode::RevokedAccount))
        );
        assert_eq!(
            code(standing(
                AccountStatus::Deactivated,
                Some((ExternalAccountStatus::Valid, None))
            )),
            Some(Some(ResultCode::DeactivatedAccount))
        );
        for (ea, want) in [
            (
                ExternalAccountStatus::Revoked,
                ResultCode::RevokedExternalAccount,
            ),
            (
                ExternalAccountStatus::Deactivated,
                ResultCode::DeactivatedExternalAccount,
            ),
            (
                ExternalAccountStatus::Suspended,
                ResultCode::SuspendedExternalAccount,
            ),
            (
                ExternalAccountStatus::Pending,
                ResultCode::PendingExternalAccount,
            ),
        ] {
            assert_eq!(
                code(standing(AccountStatus::Valid, Some((ea, None)))),
                Some(Some(want))
            );
        }
        // An end date passed between finalize and issuance.
        assert_eq!(
            code(standing(
                AccountStatus::Valid,
                Some((ExternalAccountStatus::Valid, Some(1_000)))
            )),
            Some(Some(ResultCode::ExpiredExternalAccount))
        );
    }
}
