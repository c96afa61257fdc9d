//! Validation (RFC 8555 §7.5.1): every instance claims jobs from the store's queue, up to a
//! budget of validations in flight, validates each within one overall deadline, and records
//! the outcome in one transaction. An instance that dies mid-validation loses its lease and
//! another, in any instance, takes the job.

use crate::state::{AppState, Urls};
use crate::validate::ChallengeValidator;
use cobble_core::Problem;
use cobble_core::challenge::key_authorization;
use cobble_core::status::ChallengeStatus;
use cobble_store::{ValidationJob, ValidationOutcome};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// This process's validations: at most `budget` run at once (slow targets take budget, not
/// the whole queue), started by the dispatcher from the store's queue or handed over by the
/// challenge request that queued them.
#[derive(Debug)]
pub struct Validations {
    /// One permit per validation in flight.
    slots: Arc<Semaphore>,
    /// Wakes the dispatcher when a job is queued in this process.
    wake: Notify,
    /// Claims made so far: each holds its lease under a name of its own, so a late task can
    /// never record the outcome of a claim that is not its own.
    claims: AtomicU64,
}

impl Validations {
    /// Room for `budget` validations at once.
    pub fn new(budget: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(budget.max(1))),
            wake: Notify::new(),
            claims: AtomicU64::new(0),
        }
    }

    /// A fresh holder name for one claim.
    fn claim_name(&self, instance_id: &str) -> String {
        let n = self.claims.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{instance_id}-{n}")
    }

    /// For a challenge about to be queued to run now: a slot and a holder name when this
    /// process has room to validate it at once, so the job is inserted already claimed and
    /// handed over ([`Handoff::start`]) without a claim transaction or a wake-up of the
    /// dispatcher. None when the budget is spent: the job then waits in the queue.
    pub fn handoff(&self, instance_id: &str) -> Option<Handoff> {
        let slot = self.slots.clone().try_acquire_owned().ok()?;
        Some(Handoff {
            slot,
            worker_id: self.claim_name(instance_id),
        })
    }

    /// Tells the dispatcher a job was queued.
    pub fn notify(&self) {
        self.wake.notify_one();
    }
}

/// A slot taken for a validation that is to be inserted claimed (see
/// [`Validations::handoff`]); dropped unused, it frees the slot.
#[derive(Debug)]
pub struct Handoff {
    slot: OwnedSemaphorePermit,
    /// The lease holder's name to insert the job under.
    pub worker_id: String,
}

/// What the challenge request that queued a validation had read already: its authorization
/// and its account's key thumbprint, so a handed-over validation reads neither again. The
/// key is the one of the request, as Boulder's RA hands the VA the key it authenticated.
#[derive(Debug)]
pub struct Known {
    /// The challenge's authorization, as read by the request.
    pub authz: cobble_store::Authz,
    /// The thumbprint of the account key the request was signed with.
    pub key_thumbprint: String,
}

impl Handoff {
    /// Runs the validation of the job just committed under [`Self::worker_id`].
    pub fn start(self, state: &AppState, challenge_id: String, known: Known) {
        let state = state.clone();
        let job = ValidationJob {
            challenge_id,
            attempts: 1,
        };
        tokio::spawn(async move {
            process(
                &state,
                state.validator.as_ref(),
                &self.worker_id,
                job,
                Some(known),
            )
            .await;
            drop(self.slot);
        });
    }
}

/// Starts the dispatcher: it claims due jobs from the store's queue (queued with a delay, by
/// another instance, or left by a worker that died) while this process has validation
/// budget, and runs each in a task of its own. Returns its task (aborted at shutdown).
pub fn spawn(state: AppState) -> Vec<tokio::task::JoinHandle<()>> {
    vec![tokio::spawn(dispatch(state))]
}

/// The overall deadline of one validation: every hop, both address families and the CAA
/// climb together. It stays well inside the job's lease, so no second worker repeats a
/// validation that is merely slow.
pub fn deadline(cfg: &crate::config::ServerConfig) -> Duration {
    let lease = cfg.validation_lease_secs.max(1);
    Duration::from_secs(
        cfg.validation_deadline_secs
            .clamp(1, (lease * 3 / 4).max(1)),
    )
}

async fn dispatch(state: AppState) {
    let poll = Duration::from_millis(state.cfg.validation_poll_ms.max(10));
    let lease_ms = state.cfg.validation_lease_secs as i64 * 1000;
    let v = &state.validations;
    loop {
        let Ok(slot) = v.slots.clone().acquire_owned().await else {
            return;
        };
        let worker_id = v.claim_name(&state.instance_id);
        let claimed = async {
            let mut tx = state.store.begin_hot().await?;
            let job = tx
                .claim_validation_job(&worker_id, state.clock.now_ms(), lease_ms)
                .await?;
            tx.commit().await?;
            Ok::<_, cobble_store::StoreError>(job)
        };
        match claimed.await {
            Ok(Some(job)) => {
                let state = state.clone();
                tokio::spawn(async move {
                    process(&state, state.validator.as_ref(), &worker_id, job, None).await;
                    drop(slot);
                });
            }
            Ok(None) => {
                drop(slot);
                let _ = tokio::time::timeout(poll, v.wake.notified()).await;
            }
            Err(e) => {
                drop(slot);
                tracing::warn!(error = %e, "claiming a validation job failed");
                tokio::time::sleep(poll).await;
            }
        }
    }
}

fn problem_json(p: &Problem) -> String {
    serde_json::to_string(p).expect("problems serialize")
}

async fn process(
    state: &AppState,
    validator: &dyn ChallengeValidator,
    worker_id: &str,
    job: ValidationJob,
    known: Option<Known>,
) {
    let span =
        tracing::info_span!("validation", challenge = %job.challenge_id, attempt = job.attempts);
    tracing::Instrument::instrument(run_job(state, validator, worker_id, job, known), span).await
}

async fn run_job(
    state: &AppState,
    validator: &dyn ChallengeValidator,
    worker_id: &str,
    job: ValidationJob,
    known: Option<Known>,
) {
    let outcome = match decide(state, validator, &job, known).await {
        Ok(outcome) => outcome,
        Err(e) => {
            // The store failed: leave the job; its lease runs out and it is retried.
            tracing::warn!(error = %e, "validation could not run; it will be retried");
            return;
        }
    };
    let finished =
        state
            .store
            .finish_validation(worker_id, &job.challenge_id, &outcome, state.clock.now_ms());
    match finished.await {
        // A failure was logged with its problem already; a success is routine.
        Ok(true) => tracing::debug!(status = outcome.status.as_str(), "validation finished"),
        Ok(false) => tracing::warn!("validation lease lost to another worker; outcome discarded"),
        Err(e) => tracing::warn!(error = %e, "recording the validation failed; it will be retried"),
    }
}

async fn decide(
    state: &AppState,
    validator: &dyn ChallengeValidator,
    job: &ValidationJob,
    known: Option<Known>,
) -> Result<ValidationOutcome, cobble_store::StoreError> {
    let now = state.clock.now_ms();
    let valid_until = now + state.cfg.valid_authz_lifetime_secs as i64 * 1000;
    let fail = |p: Problem| ValidationOutcome {
        status: ChallengeStatus::Invalid,
        valid_authz_expires_ms: valid_until,
        error: Some(problem_json(&p)),
        record: None,
    };
    // A job taken from the queue (another instance's, or one left by a restart) reads what
    // the request that queued it knew.
    let (authz, thumbprint) = match known {
        Some(k) => (k.authz, k.key_thumbprint),
        None => {
            let Some(authz) = state
                .store
                .authz_of_challenge(&job.challenge_id, None)
                .await?
            else {
                return Ok(fail(Problem::internal(
                    "the challenge or its authorization disappeared",
                )));
            };
            let Some(account) = state.store.account(&authz.account_id).await? else {
                return Ok(fail(Problem::internal("the account disappeared")));
            };
            (authz, account.key_thumbprint)
        }
    };
    let Some(ch) = authz.challenges.iter().find(|c| c.id == job.challenge_id) else {
        return Ok(fail(Problem::internal("the challenge disappeared")));
    };
    let ka = key_authorization(&ch.token, &thumbprint);
    let account_uri = Urls(&state.account_base()).account(&authz.account_id);
    let checks = async {
        let record = validator
            .validate(ch.kind, &authz.identifier, &ch.token, &ka)
            .await?;
        validator
            .check_caa(&authz.identifier, authz.wildcard, &account_uri, ch.kind)
            .await?;
        Ok(record)
    };
    let limit = deadline(&state.cfg);
    let started = std::time::Instant::now();
    let result = match tokio::time::timeout(limit, checks).await {
        Ok(r) => r,
        Err(_) => Err(Problem::new(
            cobble_core::ProblemType::Connection,
            format!(
                "{}: the validation did not finish within {} s (every step together)",
                authz.identifier.value(),
                limit.as_secs()
            ),
        )),
    };
    state.metrics.validation(
        ch.kind.as_str(),
        if result.is_ok() { "valid" } else { "invalid" },
        started.elapsed(),
    );
    Ok(match result {
        Ok(record) => ValidationOutcome {
            status: ChallengeStatus::Valid,
            valid_authz_expires_ms: valid_until,
            error: None,
            record: Some(record.to_string()),
        },
        Err(mut p) => {
            // The challenge's error is a top-level problem: RFC 8555 §6.7.1 keeps
            // `identifier` for subproblems, and the authorization already names it.
            p.identifier = None;
            tracing::info!(problem = %p, "validation failed");
            fail(p)
        }
    })
}
