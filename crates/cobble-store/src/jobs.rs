//! The validation job queue (RFC 8555 §7.5.1): a challenge response queues a job; workers in
//! any instance claim it with a lease (SKIP LOCKED on PostgreSQL), and the outcome, the
//! challenge, the authorization and the job row change in one transaction.

use crate::{Db, Engine, Store, StoreError, Tx, direct, on_tx, read_pool};
use cobble_core::nonce::OpenedNonce;
use cobble_core::status::{AuthzStatus, ChallengeStatus};
use sqlx::Row;

/// A claimed validation job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationJob {
    /// The challenge to validate.
    pub challenge_id: String,
    /// How many times it has been claimed (this claim included).
    pub attempts: i64,
}

/// A validation job claimed as it is queued: by `worker` until `lease_until_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// The holder's name (as [`Tx::claim_validation_job`] takes it).
    pub worker: &'a str,
    /// When the lease runs out and another worker may take the job.
    pub lease_until_ms: i64,
}

/// A finished validation.
#[derive(Debug, Clone)]
pub struct ValidationOutcome {
    /// `valid` or `invalid`.
    pub status: ChallengeStatus,
    /// New expiry of the authorization when it becomes valid (valid ones live longer than pending).
    pub valid_authz_expires_ms: i64,
    /// Problem JSON for invalid.
    pub error: Option<String>,
    /// Validation record JSON.
    pub record: Option<String>,
}

impl Store {
    /// How many validation jobs are queued or running.
    pub async fn validation_jobs_pending(&self) -> Result<i64, StoreError> {
        read_pool!(&self.db, p => Ok(sqlx::query_scalar("SELECT COUNT(*) FROM validation_jobs").fetch_one(p).await?))
    }

    /// A challenge request's whole change, as one transaction: `nonce` redeemed
    /// ([`StoreError::NonceReused`] when it was used) and [`Tx::start_challenge_claimed`].
    /// On PostgreSQL that is one statement, the redemption, the challenge's move and the
    /// job's insert as CTEs of it (one round trip instead of four); elsewhere a hot
    /// transaction.
    pub async fn start_challenge_redeeming(
        &self,
        nonce: &OpenedNonce,
        challenge_id: &str,
        run_after_ms: i64,
        now_ms: i64,
        claim: Option<Claim<'_>>,
    ) -> Result<bool, StoreError> {
        let Db::Pg(_, conns) = &self.db else {
            let mut tx = self.begin_hot_redeeming(nonce).await?;
            let started = tx
                .start_challenge_claimed(challenge_id, run_after_ms, now_ms, claim)
                .await?;
            tx.commit().await?;
            return Ok(started);
        };
        // The challenge moves only when the nonce was new; as START and QUEUE below.
        const SQL: &str = "WITH n AS (INSERT INTO used_nonces (nonce, expires_ms) VALUES ($7, $8) ON CONFLICT DO NOTHING RETURNING 1), \
             s AS (UPDATE challenges SET status = 'processing' WHERE id = $1 AND status = 'pending' AND EXISTS (SELECT 1 FROM n) \
                 AND EXISTS (SELECT 1 FROM authzs a WHERE a.id = challenges.authz_id AND a.status = 'pending' AND a.expires_ms >= $2) RETURNING id), \
             q AS (INSERT INTO validation_jobs (challenge_id, run_after_ms, attempts, created_ms, claimed_by, lease_until_ms) \
                 SELECT id, $3, $4, $2, $5, $6 FROM s RETURNING 1) \
             SELECT (SELECT COUNT(*) FROM n) AS redeemed, (SELECT COUNT(*) FROM q) AS started";
        conns
            .with(async |c| {
                let row = sqlx::query(SQL)
                    .bind(challenge_id)
                    .bind(now_ms)
                    .bind(run_after_ms)
                    .bind(i64::from(claim.is_some()))
                    .bind(claim.map(|c| c.worker))
                    .bind(claim.map(|c| c.lease_until_ms))
                    .bind(&nonce.value)
                    .bind(nonce.expires_ms)
                    .fetch_one(c)
                    .await?;
                crate::nonce::redeemed(&row)?;
                Ok(row.try_get::<i64, _>("started")? == 1)
            })
            .await
    }

    /// Records a validation's outcome as one transaction ([`Tx::finish_validation`]): false,
    /// storing nothing, when `worker` no longer holds the job. On PostgreSQL that is one
    /// statement (the job's release and the challenge's and authorization's changes as CTEs
    /// of it: one round trip instead of five); elsewhere a hot transaction.
    pub async fn finish_validation(
        &self,
        worker: &str,
        challenge_id: &str,
        outcome: &ValidationOutcome,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let Db::Pg(_, conns) = &self.db else {
            let mut tx = self.begin_hot().await?;
            let held = tx
                .finish_validation(worker, challenge_id, outcome, now_ms)
                .await?;
            tx.commit().await?;
            return Ok(held);
        };
        // As RELEASE, CHALLENGE and AUTHZ of Tx::finish_validation, each on the one before.
        const SQL: &str = "WITH released AS (DELETE FROM validation_jobs WHERE challenge_id = $1 AND claimed_by = $2 RETURNING challenge_id), \
             ch AS (UPDATE challenges SET status = $3, error = $4, validation_record = $5, validated_ms = $6 \
                 WHERE id IN (SELECT challenge_id FROM released) RETURNING authz_id), \
             az AS (UPDATE authzs SET status = $7, updated_ms = $8, expires_ms = CASE WHEN $7 = 'valid' THEN $9 ELSE expires_ms END \
                 WHERE status = 'pending' AND id IN (SELECT authz_id FROM ch) RETURNING 1) \
             SELECT (SELECT COUNT(*) FROM released) AS released, (SELECT COUNT(*) FROM az) AS authz";
        let validated = (outcome.status == ChallengeStatus::Valid).then_some(now_ms);
        let authz_status = AuthzStatus::Pending.after_challenge(outcome.status);
        conns
            .with(async |c| {
                let row = sqlx::query(SQL)
                    .bind(challenge_id)
                    .bind(worker)
                    .bind(outcome.status.as_str())
                    .bind(&outcome.error)
                    .bind(&outcome.record)
                    .bind(validated)
                    .bind(authz_status.as_str())
                    .bind(now_ms)
                    .bind(outcome.valid_authz_expires_ms)
                    .fetch_one(c)
                    .await?;
                Ok(row.try_get::<i64, _>("released")? == 1)
            })
            .await
    }
}

impl Tx {
    /// Starts validating a pending challenge of a pending, unexpired
    /// authorization: the challenge becomes `processing` and a job is queued to run at
    /// `run_after_ms`. Returns false (changing nothing but the nonce) when the challenge
    /// or its authorization is not in a state to start (RFC 8555 §7.5.1).
    pub async fn start_challenge(
        &mut self,
        challenge_id: &str,
        run_after_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.start_challenge_claimed(challenge_id, run_after_ms, now_ms, None)
            .await
    }

    /// [`Self::start_challenge`], the job optionally claimed at once by `claim`'s worker (a
    /// worker of the inserting instance, to which the job is handed in process): no claim
    /// transaction follows, and should that worker die the lease runs out and any instance
    /// takes the job, as with one claimed from the queue.
    pub async fn start_challenge_claimed(
        &mut self,
        challenge_id: &str,
        run_after_ms: i64,
        now_ms: i64,
        claim: Option<Claim<'_>>,
    ) -> Result<bool, StoreError> {
        // Correlated on the challenge's own authorization: an `IN (SELECT ...)` over every
        // pending authorization made SQLite scan the table (tests/plans.rs).
        const START: &str = "UPDATE challenges SET status = 'processing' WHERE id = $1 AND status = 'pending' AND EXISTS \
             (SELECT 1 FROM authzs a WHERE a.id = challenges.authz_id AND a.status = 'pending' AND a.expires_ms >= $2)";
        const QUEUE: &str = "INSERT INTO validation_jobs (challenge_id, run_after_ms, attempts, created_ms, claimed_by, lease_until_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)";
        let attempts = i64::from(claim.is_some());
        let (holder, lease) = match &claim {
            Some(c) => (Some(c.worker), Some(c.lease_until_ms)),
            None => (None, None),
        };
        if let Some(c) = self.direct() {
            let n = direct::exec(c, START, &[&challenge_id, &now_ms])?;
            if n == 1 {
                direct::exec(
                    c,
                    QUEUE,
                    &[
                        &challenge_id,
                        &run_after_ms,
                        &attempts,
                        &now_ms,
                        &holder,
                        &lease,
                    ],
                )?;
            }
            return Ok(n == 1);
        }
        on_tx!(self, tx => {
            let n = sqlx::query(START)
            .bind(challenge_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                sqlx::query(QUEUE)
                    .bind(challenge_id)
                    .bind(run_after_ms)
                    .bind(attempts)
                    .bind(now_ms)
                    .bind(holder)
                    .bind(lease)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(n == 1)
        })
    }

    /// Claims the next due validation job for `worker` until `now_ms + lease_ms`. A job whose
    /// lease ran out (its worker died) is claimed again: no validation is lost.
    pub async fn claim_validation_job(
        &mut self,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<ValidationJob>, StoreError> {
        let sql = claim_statement(
            self.engine(),
            "validation_jobs",
            "challenge_id",
            "challenge_id, attempts",
        );
        if let Some(c) = self.direct() {
            return direct::row(c, &sql.0, &[&worker, &(now_ms + lease_ms), &now_ms], |r| {
                Ok(ValidationJob {
                    challenge_id: r.get("challenge_id")?,
                    attempts: r.get("attempts")?,
                })
            });
        }
        on_tx!(self, tx => {
            let row = sqlx::query(sql)
                .bind(worker)
                .bind(now_ms + lease_ms)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?;
            let job = match row {
                Some(r) => Some(ValidationJob { challenge_id: r.try_get("challenge_id")?, attempts: r.try_get("attempts")? }),
                None => None,
            };
            Ok(job)
        })
    }

    /// Records a validation's outcome if `worker` still holds the job: the challenge, its
    /// authorization (RFC 8555 §7.1.6) and the job row change in one transaction. Returns
    /// false when the lease was lost to another worker (the outcome is then discarded).
    pub async fn finish_validation(
        &mut self,
        worker: &str,
        challenge_id: &str,
        outcome: &ValidationOutcome,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const RELEASE: &str =
            "DELETE FROM validation_jobs WHERE challenge_id = $1 AND claimed_by = $2";
        const CHALLENGE: &str = "UPDATE challenges SET status = $2, error = $3, validation_record = $4, validated_ms = $5 WHERE id = $1";
        const AUTHZ: &str = "UPDATE authzs SET status = $2, updated_ms = $3, expires_ms = CASE WHEN $2 = 'valid' THEN $4 ELSE expires_ms END \
             WHERE status = 'pending' AND id = (SELECT authz_id FROM challenges WHERE id = $1)";
        let validated = (outcome.status == ChallengeStatus::Valid).then_some(now_ms);
        let authz_status = AuthzStatus::Pending.after_challenge(outcome.status);
        if let Some(c) = self.direct() {
            if direct::exec(c, RELEASE, &[&challenge_id, &worker])? == 0 {
                return Ok(false);
            }
            direct::exec(
                c,
                CHALLENGE,
                &[
                    &challenge_id,
                    &outcome.status.as_str(),
                    &outcome.error,
                    &outcome.record,
                    &validated,
                ],
            )?;
            direct::exec(
                c,
                AUTHZ,
                &[
                    &challenge_id,
                    &authz_status.as_str(),
                    &now_ms,
                    &outcome.valid_authz_expires_ms,
                ],
            )?;
            return Ok(true);
        }
        on_tx!(self, tx => {
            let n = sqlx::query(RELEASE)
                .bind(challenge_id)
                .bind(worker)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            sqlx::query(CHALLENGE)
                .bind(challenge_id)
                .bind(outcome.status.as_str())
                .bind(&outcome.error)
                .bind(&outcome.record)
                .bind(validated)
                .execute(&mut *tx)
                .await?;
            sqlx::query(AUTHZ)
            .bind(challenge_id)
            .bind(authz_status.as_str())
            .bind(now_ms)
            .bind(outcome.valid_authz_expires_ms)
            .execute(&mut *tx)
            .await?;
            Ok(true)
        })
    }
}

/// The statement that claims the next due job of a leased queue (`$1` worker, `$2` lease
/// end, `$3` now): one whose lease ran out or was never taken, oldest due first. On
/// PostgreSQL `SKIP LOCKED` lets workers of every instance claim side by side; SQLite has
/// one writer, so a plain conditional `UPDATE ... RETURNING` is enough.
pub(crate) fn claim_statement(
    engine: Engine,
    table: &str,
    key: &str,
    returning: &str,
) -> sqlx::AssertSqlSafe<String> {
    let lock = match engine {
        Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        Engine::Sqlite => "",
    };
    sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET claimed_by = $1, lease_until_ms = $2, attempts = attempts + 1 \
         WHERE {key} = (SELECT {key} FROM {table} WHERE run_after_ms <= $3 \
         AND (lease_until_ms IS NULL OR lease_until_ms < $3) ORDER BY run_after_ms LIMIT 1{lock}) \
         RETURNING {returning}"
    ))
}
