//! The rate limits the RA enforces (issue 12, Buypass's numbers by default): certificates
//! per registered domain, duplicate certificates, failed validations, pending
//! authorizations. A refusal is `rateLimited` (429) with `Retry-After` (when the oldest
//! counted event leaves the window), a detail naming the limit, the key, the count, the
//! limit and the window, and `Link: rel="help"` to the page listing the limits.

use crate::error::{AcmeError, AcmeResult};
use crate::state::{AppState, Urls};
use axum::http::{HeaderValue, header};
use cobble_core::identifier::Identifier;
use cobble_core::ratelimit::{Limit, name_set_key, registered_domain, window_words};
use cobble_core::{Problem, ProblemType};
use cobble_store::{IssuanceKeys, Tx, Window};

/// Whether the limits apply at all.
pub fn on(s: &AppState) -> bool {
    !s.cfg.no_rate_limits
}

/// The keys a certificate for `ids` counts against.
pub fn keys(ids: &[Identifier]) -> IssuanceKeys {
    let names: Vec<String> = ids.iter().map(|i| i.value()).collect();
    let mut domains: Vec<String> = names.iter().map(|n| registered_domain(n)).collect();
    domains.sort();
    domains.dedup();
    IssuanceKeys {
        domains,
        name_set: name_set_key(&names),
    }
}

/// A refusal that is a problem plus the seconds until the client may retry.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The `rateLimited` problem.
    pub problem: Problem,
    /// Seconds until the window frees a slot.
    pub retry_after_secs: i64,
}

impl Refusal {
    /// As a response error, with `Retry-After` and the help link.
    pub fn into_error(self, base: &str) -> AcmeError {
        let mut e = AcmeError::from(self.problem);
        if let Ok(v) = HeaderValue::from_str(&self.retry_after_secs.max(1).to_string()) {
            e = e.with_header(header::RETRY_AFTER, v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("<{}>;rel=\"help\"", help_url(base))) {
            e = e.with_header(header::LINK, v);
        }
        e
    }
}

/// The page that lists the limits in effect.
pub fn help_url(base: &str) -> String {
    Urls(base).path("/rate-limits")
}

fn refuse(what: &str, key: &str, w: Window, limit: &Limit, now: i64) -> Refusal {
    let frees = w
        .oldest_ms
        .map_or(now + limit.window_ms(), |o| o + limit.window_ms());
    let retry = ((frees - now) + 999) / 1000;
    Refusal {
        problem: Problem::new(
            ProblemType::RateLimited,
            format!(
                "rate limit reached: too many {what}: {} of at most {} per {} for {key}; retry after {}",
                w.count,
                limit.count,
                window_words(limit.window_secs),
                cobble_core::clock::rfc3339(frees)
            ),
        ),
        retry_after_secs: retry,
    }
}

fn over(w: Window, limit: &Limit) -> bool {
    limit.enabled && w.count >= limit.count as i64
}

/// The certificate limits for an order of `account_id` for `ids`, counted outside any
/// transaction (newOrder and finalize refuse early with these).
pub async fn check_certificates(
    s: &AppState,
    account_id: &str,
    ids: &[Identifier],
    replaces: bool,
) -> Result<(), Refusal> {
    let l = &s.cfg.rate_limits;
    let now = s.clock.now_ms();
    let k = keys(ids);
    let store_err = |e: cobble_store::StoreError| Refusal {
        problem: crate::error::store_problem(e),
        retry_after_secs: 5,
    };
    if l.duplicate_certificates.enabled {
        let w = s
            .store
            .name_set_window(&k.name_set, now - l.duplicate_certificates.window_ms())
            .await
            .map_err(store_err)?;
        if over(w, &l.duplicate_certificates) {
            return Err(refuse(
                "duplicate certificates (the same set of names)",
                &format!("[{}]", k.name_set),
                w,
                &l.duplicate_certificates,
                now,
            ));
        }
    }
    if l.certificates_per_domain.enabled {
        let exempt = l.renewals_exempt
            && (replaces
                || s.store
                    .is_renewal(account_id, &k.name_set)
                    .await
                    .map_err(store_err)?);
        if !exempt {
            for d in &k.domains {
                let w = s
                    .store
                    .domain_window(d, now - l.certificates_per_domain.window_ms())
                    .await
                    .map_err(store_err)?;
                if over(w, &l.certificates_per_domain) {
                    return Err(refuse(
                        "certificates per registered domain",
                        &format!("registered domain {d}"),
                        w,
                        &l.certificates_per_domain,
                        now,
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The authoritative check, in the transaction that stores the certificate: takes the
/// keys' locks, counts, and records the new events unless a limit is reached.
pub async fn check_and_record(
    s: &AppState,
    tx: &mut Tx,
    account_id: &str,
    ids: &[Identifier],
    renewal: bool,
) -> Result<Option<Refusal>, cobble_store::StoreError> {
    let now = s.clock.now_ms();
    let k = keys(ids);
    if on(s) {
        let l = &s.cfg.rate_limits;
        tx.lock_issuance_keys(&k).await?;
        if l.duplicate_certificates.enabled {
            let w = tx
                .name_set_window(&k.name_set, now - l.duplicate_certificates.window_ms())
                .await?;
            if over(w, &l.duplicate_certificates) {
                return Ok(Some(refuse(
                    "duplicate certificates (the same set of names)",
                    &format!("[{}]", k.name_set),
                    w,
                    &l.duplicate_certificates,
                    now,
                )));
            }
        }
        if l.certificates_per_domain.enabled && !(l.renewals_exempt && renewal) {
            for d in &k.domains {
                let w = tx
                    .domain_window(d, now - l.certificates_per_domain.window_ms())
                    .await?;
                if over(w, &l.certificates_per_domain) {
                    return Ok(Some(refuse(
                        "certificates per registered domain",
                        &format!("registered domain {d}"),
                        w,
                        &l.certificates_per_domain,
                        now,
                    )));
                }
            }
        }
    }
    // Recorded even with limits off, so that turning them on counts what was issued.
    tx.record_issuance(&k, account_id, now).await?;
    Ok(None)
}

/// newOrder and newAuthz: the pending-authorization limit for `new` more.
pub async fn check_pending(
    s: &AppState,
    base: &str,
    account_id: &str,
    new: usize,
) -> AcmeResult<()> {
    let l = &s.cfg.rate_limits.pending_authorizations;
    if !on(s) || !l.enabled {
        return Ok(());
    }
    let now = s.clock.now_ms();
    let n = s.store.pending_authzs(account_id, now).await?;
    if n + new as i64 > l.count as i64 {
        return Err(Refusal {
            problem: Problem::new(
                ProblemType::RateLimited,
                format!(
                    "rate limit reached: too many pending authorizations: account {account_id} has {n} and this request adds {new}, over the limit of {}; complete, deactivate or let some expire first",
                    l.count
                ),
            ),
            retry_after_secs: 60,
        }
        .into_error(base));
    }
    Ok(())
}

/// A challenge POST: the failed-validation limit for the account and the name, checked
/// before any validation traffic is sent.
pub async fn check_failed_validations(
    s: &AppState,
    base: &str,
    account_id: &str,
    name: &str,
) -> AcmeResult<()> {
    let l = &s.cfg.rate_limits.failed_validations;
    if !on(s) || !l.enabled {
        return Ok(());
    }
    let now = s.clock.now_ms();
    let w = s
        .store
        .failed_validations(account_id, name, now - l.window_ms())
        .await?;
    if over(w, l) {
        return Err(refuse(
            "failed validations",
            &format!("{name} (account {account_id})"),
            w,
            l,
            now,
        )
        .into_error(base));
    }
    Ok(())
}
