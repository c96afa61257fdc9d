//! The rate limits the RA enforces (issue 12, Buypass's numbers by default): certificates
//! per registered domain, duplicate certificates, failed validations, pending
//! authorizations. A refusal is `rateLimited` (429) with `Retry-After` (when the oldest
//! counted event leaves the window), a detail naming the limit, the key, the count, the
//! limit and the window, and `Link: rel="help"` to the page listing the limits.

use crate::error::{AcmeError, AcmeResult};
use crate::state::{AppState, Urls};
use axum::http::{HeaderValue, header};
use cobble_core::identifier::Identifier;
use cobble_core::ratelimit::{
    Limit, LimitName, Override, Subjects, effective, name_set_key, registered_domain, window_words,
};
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

/// The overrides that may apply to one account's request, and its external account.
struct Overrides {
    /// The stored ones first (they win for the same subject and limit), then the
    /// configuration's.
    list: Vec<Override>,
    /// The account's external account, when an external-account override may need it.
    kid: Option<String>,
}

/// Where the overrides are read: the store's pool, or the request's transaction.
enum From<'t> {
    Store,
    Tx(&'t mut Tx),
}

async fn overrides(
    s: &AppState,
    from: From<'_>,
    account_id: &str,
    domains: &[String],
) -> Result<Overrides, cobble_store::StoreError> {
    let config_needs_kid = s
        .cfg
        .rate_limits
        .overrides
        .iter()
        .any(|o| o.external_account.is_some());
    let (stored, kid) = match from {
        From::Store => {
            let stored = s
                .store
                .limit_overrides_for(Some(account_id), domains)
                .await?;
            let kid = if config_needs_kid {
                s.store.external_kid_of(account_id).await?
            } else {
                None
            };
            (stored, kid)
        }
        From::Tx(tx) => {
            let stored = tx.limit_overrides_for(Some(account_id), domains).await?;
            let kid = if config_needs_kid {
                tx.external_kid_of(account_id).await?
            } else {
                None
            };
            (stored, kid)
        }
    };
    // A stored external-account override was found through the account's binding, so
    // its subject is the account's external account.
    let kid = kid.or_else(|| stored.iter().find_map(|o| o.rule.external_account.clone()));
    let mut list: Vec<Override> = stored.into_iter().map(|o| o.rule).collect();
    list.extend(s.cfg.rate_limits.overrides.iter().cloned());
    Ok(Overrides { list, kid })
}

impl Overrides {
    fn who<'a>(&'a self, account_id: &'a str, domains: &'a [String]) -> Subjects<'a> {
        Subjects {
            account: Some(account_id),
            external_account: self.kid.as_deref(),
            domains,
        }
    }
}

/// How a refusal names the override that set the limit.
fn override_words(o: Option<&Override>) -> String {
    match o.and_then(|o| o.subject().ok()) {
        Some((scope, subject)) => format!(" (an override for {} {subject})", scope.as_str()),
        None => String::new(),
    }
}

/// A limit as it applies to one request: its value and the override that set it.
struct Applied<'o> {
    limit: Limit,
    by: Option<&'o Override>,
}

fn applied<'o>(
    s: &AppState,
    name: LimitName,
    overrides: &'o [Override],
    who: &Subjects<'_>,
) -> Applied<'o> {
    let (limit, by) = effective(&s.cfg.rate_limits, name, overrides, who);
    Applied { limit, by }
}

fn refuse(what: &str, key: &str, w: Window, a: &Applied<'_>, now: i64) -> Refusal {
    let limit = &a.limit;
    let frees = w
        .oldest_ms
        .map_or(now + limit.window_ms(), |o| o + limit.window_ms());
    let retry = ((frees - now) + 999) / 1000;
    Refusal {
        problem: Problem::new(
            ProblemType::RateLimited,
            format!(
                "rate limit reached: too many {what}: {} of at most {} per {}{} for {key}; retry after {}",
                w.count,
                limit.count,
                window_words(limit.window_secs),
                override_words(a.by),
                cobble_core::clock::rfc3339(frees)
            ),
        ),
        retry_after_secs: retry,
    }
}

fn over(w: Window, limit: &Limit) -> bool {
    limit.enabled && w.count >= limit.count as i64
}

const DUPLICATES: &str = "duplicate certificates (the same set of names)";
const PER_DOMAIN: &str = "certificates per registered domain";

/// The certificate limits for an order of `account_id` for `ids`, counted outside any
/// transaction (newOrder and finalize refuse early with these).
pub async fn check_certificates(
    s: &AppState,
    account_id: &str,
    ids: &[Identifier],
    replaces: bool,
) -> Result<(), Refusal> {
    let now = s.clock.now_ms();
    let k = keys(ids);
    let store_err = |e: cobble_store::StoreError| Refusal {
        problem: crate::error::store_problem(e),
        retry_after_secs: 5,
    };
    let o = overrides(s, From::Store, account_id, &k.domains)
        .await
        .map_err(store_err)?;
    let dup = applied(
        s,
        LimitName::DuplicateCertificates,
        &o.list,
        &o.who(account_id, &k.domains),
    );
    if dup.limit.enabled {
        let w = s
            .store
            .name_set_window(&k.name_set, now - dup.limit.window_ms())
            .await
            .map_err(store_err)?;
        if over(w, &dup.limit) {
            return Err(refuse(
                DUPLICATES,
                &format!("[{}]", k.name_set),
                w,
                &dup,
                now,
            ));
        }
    }
    let mut renewal = None;
    for d in &k.domains {
        let one = std::slice::from_ref(d);
        let a = applied(
            s,
            LimitName::CertificatesPerDomain,
            &o.list,
            &o.who(account_id, one),
        );
        if !a.limit.enabled {
            continue;
        }
        if s.cfg.rate_limits.renewals_exempt {
            let r = match renewal {
                Some(r) => r,
                None => {
                    let r = replaces
                        || s.store
                            .is_renewal(account_id, &k.name_set)
                            .await
                            .map_err(store_err)?;
                    renewal = Some(r);
                    r
                }
            };
            if r {
                return Ok(());
            }
        }
        let w = s
            .store
            .domain_window(d, now - a.limit.window_ms())
            .await
            .map_err(store_err)?;
        if over(w, &a.limit) {
            return Err(refuse(
                PER_DOMAIN,
                &format!("registered domain {d}"),
                w,
                &a,
                now,
            ));
        }
    }
    Ok(())
}

/// The authoritative check, in the transaction that stores the certificate: takes the
/// keys' locks, counts, and records the new events unless a limit is reached. `replaces`:
/// the order names a certificate it replaces (ARI), which makes it a renewal.
pub async fn check_and_record(
    s: &AppState,
    tx: &mut Tx,
    account_id: &str,
    ids: &[Identifier],
    replaces: bool,
) -> Result<Option<Refusal>, cobble_store::StoreError> {
    let now = s.clock.now_ms();
    let k = keys(ids);
    if on(s) {
        tx.lock_issuance_keys(&k).await?;
        let o = overrides(s, From::Tx(tx), account_id, &k.domains).await?;
        let dup = applied(
            s,
            LimitName::DuplicateCertificates,
            &o.list,
            &o.who(account_id, &k.domains),
        );
        if dup.limit.enabled {
            let w = tx
                .name_set_window(&k.name_set, now - dup.limit.window_ms())
                .await?;
            if over(w, &dup.limit) {
                return Ok(Some(refuse(
                    DUPLICATES,
                    &format!("[{}]", k.name_set),
                    w,
                    &dup,
                    now,
                )));
            }
        }
        let mut renewal = None;
        for d in &k.domains {
            let one = std::slice::from_ref(d);
            let a = applied(
                s,
                LimitName::CertificatesPerDomain,
                &o.list,
                &o.who(account_id, one),
            );
            if !a.limit.enabled {
                continue;
            }
            if s.cfg.rate_limits.renewals_exempt {
                let r = match renewal {
                    Some(r) => r,
                    None => {
                        let r = replaces || tx.is_renewal(account_id, &k.name_set).await?;
                        renewal = Some(r);
                        r
                    }
                };
                if r {
                    break;
                }
            }
            let w = tx.domain_window(d, now - a.limit.window_ms()).await?;
            if over(w, &a.limit) {
                return Ok(Some(refuse(
                    PER_DOMAIN,
                    &format!("registered domain {d}"),
                    w,
                    &a,
                    now,
                )));
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
    if !on(s) {
        return Ok(());
    }
    let o = overrides(s, From::Store, account_id, &[]).await?;
    let a = applied(
        s,
        LimitName::PendingAuthorizations,
        &o.list,
        &o.who(account_id, &[]),
    );
    let l = &a.limit;
    if !l.enabled {
        return Ok(());
    }
    let now = s.clock.now_ms();
    let n = s.store.pending_authzs(account_id, now).await?;
    if n + new as i64 > l.count as i64 {
        return Err(Refusal {
            problem: Problem::new(
                ProblemType::RateLimited,
                format!(
                    "rate limit reached: too many pending authorizations: account {account_id} has {n} and this request adds {new}, over the limit of {}{}; complete, deactivate or let some expire first",
                    l.count,
                    override_words(a.by)
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
    if !on(s) {
        return Ok(());
    }
    let domains = [registered_domain(name)];
    let o = overrides(s, From::Store, account_id, &domains).await?;
    let a = applied(
        s,
        LimitName::FailedValidations,
        &o.list,
        &o.who(account_id, &domains),
    );
    if !a.limit.enabled {
        return Ok(());
    }
    let now = s.clock.now_ms();
    let w = s
        .store
        .failed_validations(account_id, name, now - a.limit.window_ms())
        .await?;
    if over(w, &a.limit) {
        return Err(refuse(
            "failed validations",
            &format!("{name} (account {account_id})"),
            w,
            &a,
            now,
        )
        .into_error(base));
    }
    Ok(())
}
