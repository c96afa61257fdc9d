//! The rate limits the RA enforces (issue 12, Buypass's numbers by default): certificates
//! per registered domain, duplicate certificates, failed validations, pending
//! authorizations. A refusal is `rateLimited` (429) with `Retry-After` (when enough
//! counted events have left the window for the count to drop below the limit), a detail naming the limit, the key, the count, the
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

/// Where the limits are counted: the store's pool (early checks), or the transaction that
/// stores the certificate (the authoritative one).
enum Source<'t> {
    Store,
    Tx(&'t mut Tx),
}

impl Source<'_> {
    async fn name_set_window(
        &mut self,
        s: &AppState,
        set: &str,
        since: i64,
        limit: u32,
    ) -> Result<Window, cobble_store::StoreError> {
        match self {
            Source::Store => s.store.name_set_window(set, since, limit).await,
            Source::Tx(tx) => tx.name_set_window(set, since, limit).await,
        }
    }

    async fn domain_window(
        &mut self,
        s: &AppState,
        domain: &str,
        since: i64,
        limit: u32,
    ) -> Result<Window, cobble_store::StoreError> {
        match self {
            Source::Store => s.store.domain_window(domain, since, limit).await,
            Source::Tx(tx) => tx.domain_window(domain, since, limit).await,
        }
    }

    async fn is_renewal(
        &mut self,
        s: &AppState,
        account_id: &str,
        set: &str,
    ) -> Result<bool, cobble_store::StoreError> {
        match self {
            Source::Store => s.store.is_renewal(account_id, set).await,
            Source::Tx(tx) => tx.is_renewal(account_id, set).await,
        }
    }
}

async fn overrides(
    s: &AppState,
    from: &mut Source<'_>,
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
        Source::Store => {
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
        Source::Tx(tx) => {
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

/// When a window at or over its limit frees a slot: when enough events have left it for
/// the count to drop below the limit, i.e. when the limit-th newest event (the
/// (count - limit + 1)-th oldest) leaves. At exactly the limit that is the oldest event;
/// past it (renewals are counted but not refused, an override may be lowered below the
/// count) it is a later one.
fn frees_at(w: Window, limit: &Limit, now: i64) -> i64 {
    w.limiting_ms
        .or(w.oldest_ms)
        .map_or(now + limit.window_ms(), |t| t + limit.window_ms())
}

fn refuse(what: &str, key: &str, w: Window, a: &Applied<'_>, now: i64) -> Refusal {
    let limit = &a.limit;
    let frees = frees_at(w, limit, now);
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
    let k = keys(ids);
    match count_certificates(s, &mut Source::Store, account_id, &k, replaces).await {
        Ok(None) => Ok(()),
        Ok(Some(refusal)) => Err(refusal),
        Err(e) => Err(Refusal {
            problem: crate::error::store_problem(e),
            retry_after_secs: 5,
        }),
    }
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
    if !on(s) {
        // Nothing is counted or recorded: with the limits off (Pebble-style test set-ups,
        // the benchmark) issuance pays nothing for them.
        return Ok(None);
    }
    let k = keys(ids);
    tx.lock_issuance_keys(&k).await?;
    let refusal =
        count_certificates(s, &mut Source::Tx(&mut *tx), account_id, &k, replaces).await?;
    if refusal.is_none() {
        tx.record_issuance(&k, account_id, s.clock.now_ms()).await?;
    }
    Ok(refusal)
}

/// The duplicate-certificate and per-domain limits for a certificate of `account_id` with
/// keys `k`, counted from `src`: the refusal, if one applies.
async fn count_certificates(
    s: &AppState,
    src: &mut Source<'_>,
    account_id: &str,
    k: &IssuanceKeys,
    replaces: bool,
) -> Result<Option<Refusal>, cobble_store::StoreError> {
    let now = s.clock.now_ms();
    let o = overrides(s, src, account_id, &k.domains).await?;
    let dup = applied(
        s,
        LimitName::DuplicateCertificates,
        &o.list,
        &o.who(account_id, &k.domains),
    );
    if dup.limit.enabled {
        let w = src
            .name_set_window(s, &k.name_set, now - dup.limit.window_ms(), dup.limit.count)
            .await?;
        if over(w, &dup.limit) {
            let key = format!("[{}]", k.name_set);
            return Ok(Some(refuse(DUPLICATES, &key, w, &dup, now)));
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
                    let r = replaces || src.is_renewal(s, account_id, &k.name_set).await?;
                    renewal = Some(r);
                    r
                }
            };
            if r {
                return Ok(None);
            }
        }
        let w = src
            .domain_window(s, d, now - a.limit.window_ms(), a.limit.count)
            .await?;
        if over(w, &a.limit) {
            let key = format!("registered domain {d}");
            return Ok(Some(refuse(PER_DOMAIN, &key, w, &a, now)));
        }
    }
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
    let o = overrides(s, &mut Source::Store, account_id, &[]).await?;
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
    let o = overrides(s, &mut Source::Store, account_id, &domains).await?;
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
        .failed_validations(account_id, name, now - a.limit.window_ms(), a.limit.count)
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

/// Whose usage a report shows.
#[derive(Debug, Clone, Copy)]
pub enum UsageOf<'a> {
    /// An ACME account: its pending authorizations, failed validations, and the registered
    /// domains and name sets it was issued certificates for in the window.
    Account(&'a str),
    /// A registered domain (a longer name is reduced to it): its certificates and the name
    /// sets issued under it.
    Domain(&'a str),
}

/// One limit's usage as the admin API reports it.
fn usage_entry(
    name: LimitName,
    key: &str,
    w: Window,
    a: &Applied<'_>,
    extra: Option<(&str, i64)>,
) -> serde_json::Value {
    let l = &a.limit;
    let windowed = name != LimitName::PendingAuthorizations;
    // Below the limit: when the oldest event leaves; at or over it: when the count drops
    // below it (see `frees_at`).
    let frees = (windowed && w.count > 0)
        .then(|| {
            let at = if w.count >= l.count as i64 {
                w.limiting_ms.or(w.oldest_ms)
            } else {
                w.oldest_ms
            };
            at.map(|t| t + l.window_ms())
        })
        .flatten();
    let mut v = serde_json::json!({
        "limit": name.as_str(),
        "key": key,
        "count": w.count,
        "max": l.count,
        "remaining": (l.count as i64 - w.count).max(0),
        "window_secs": if windowed { Some(l.window_secs) } else { None },
        "enabled": l.enabled,
        "limited": over(w, l),
        "oldest": w.oldest_ms.filter(|_| windowed).map(cobble_core::clock::rfc3339),
        "frees_at": frees.map(cobble_core::clock::rfc3339),
        "override": a.by.map(override_json),
    });
    if let Some((field, n)) = extra {
        v[field] = n.into();
    }
    v
}

/// An override as the admin API shows it (snake_case fields, the subject normalized).
pub fn override_json(o: &Override) -> serde_json::Value {
    let (scope, subject) = match o.subject() {
        Ok(x) => (x.0.as_str(), x.1),
        Err(_) => ("invalid", String::new()),
    };
    serde_json::json!({
        "scope": scope,
        "subject": subject,
        "limit": o.limit.as_str(),
        "count": o.count,
        "window_secs": o.window_secs,
        "enabled": o.enabled,
        "comment": o.comment,
    })
}

/// The longest window any counting limit may use now (the configured ones and every
/// override's): what a usage report looks back over, and what pruning keeps.
pub fn longest_window_ms(s: &AppState, stored: &[Override]) -> i64 {
    let l = &s.cfg.rate_limits;
    [
        l.certificates_per_domain.window_secs,
        l.duplicate_certificates.window_secs,
        l.failed_validations.window_secs,
    ]
    .into_iter()
    .chain(
        stored
            .iter()
            .chain(l.overrides.iter())
            .filter_map(|o| o.window_secs),
    )
    .max()
    .unwrap_or(0) as i64
        * 1000
}

/// Usage against every counting limit for `of`, with the limit in effect (overrides
/// applied) and when each window frees a slot: the admin API's `GET /admin/limits`.
pub async fn usage(
    s: &AppState,
    of: UsageOf<'_>,
) -> Result<serde_json::Value, cobble_store::StoreError> {
    let now = s.clock.now_ms();
    let all_stored: Vec<Override> = s
        .store
        .limit_overrides()
        .await?
        .into_iter()
        .map(|o| o.rule)
        .collect();
    let since = now - longest_window_ms(s, &all_stored);
    let mut out = Vec::new();
    match of {
        UsageOf::Account(id) => {
            let mine = s.store.account_issuance(id, since).await?;
            let failed = s.store.failed_validations_by_name(id, since).await?;
            let mut domains: Vec<String> = mine
                .iter()
                .filter(|u| u.kind == "domain")
                .map(|u| u.key.clone())
                .chain(failed.iter().map(|(n, _)| registered_domain(n)))
                .collect();
            domains.sort();
            domains.dedup();
            let o = overrides(s, &mut Source::Store, id, &domains).await?;
            let pending = applied(
                s,
                LimitName::PendingAuthorizations,
                &o.list,
                &o.who(id, &[]),
            );
            let n = s.store.pending_authzs(id, now).await?;
            out.push(usage_entry(
                LimitName::PendingAuthorizations,
                &format!("account {id}"),
                Window {
                    count: n,
                    ..Window::default()
                },
                &pending,
                None,
            ));
            for u in &mine {
                if u.kind == "domain" {
                    let one = std::slice::from_ref(&u.key);
                    let a = applied(
                        s,
                        LimitName::CertificatesPerDomain,
                        &o.list,
                        &o.who(id, one),
                    );
                    let w = s
                        .store
                        .domain_window(&u.key, now - a.limit.window_ms(), a.limit.count)
                        .await?;
                    out.push(usage_entry(
                        LimitName::CertificatesPerDomain,
                        &u.key,
                        w,
                        &a,
                        Some(("account_count", u.window.count)),
                    ));
                } else {
                    let names: Vec<String> = u.key.split(',').map(str::to_owned).collect();
                    let mut doms: Vec<String> =
                        names.iter().map(|n| registered_domain(n)).collect();
                    doms.sort();
                    doms.dedup();
                    let a = applied(
                        s,
                        LimitName::DuplicateCertificates,
                        &o.list,
                        &o.who(id, &doms),
                    );
                    let w = s
                        .store
                        .name_set_window(&u.key, now - a.limit.window_ms(), a.limit.count)
                        .await?;
                    out.push(usage_entry(
                        LimitName::DuplicateCertificates,
                        &format!("[{}]", u.key),
                        w,
                        &a,
                        Some(("account_count", u.window.count)),
                    ));
                }
            }
            for (name, _) in &failed {
                let doms = [registered_domain(name)];
                let a = applied(s, LimitName::FailedValidations, &o.list, &o.who(id, &doms));
                let w = s
                    .store
                    .failed_validations(id, name, now - a.limit.window_ms(), a.limit.count)
                    .await?;
                out.push(usage_entry(LimitName::FailedValidations, name, w, &a, None));
            }
            Ok(serde_json::json!({
                "account": id,
                "external_account": o.kid,
                "rate_limits": on(s),
                "limits": out,
            }))
        }
        UsageOf::Domain(name) => {
            let d = registered_domain(name);
            let domains = [d.clone()];
            let stored = s.store.limit_overrides_for(None, &domains).await?;
            let mut list: Vec<Override> = stored.into_iter().map(|o| o.rule).collect();
            list.extend(s.cfg.rate_limits.overrides.iter().cloned());
            let who = Subjects {
                account: None,
                external_account: None,
                domains: &domains,
            };
            let a = applied(s, LimitName::CertificatesPerDomain, &list, &who);
            let w = s
                .store
                .domain_window(&d, now - a.limit.window_ms(), a.limit.count)
                .await?;
            out.push(usage_entry(
                LimitName::CertificatesPerDomain,
                &d,
                w,
                &a,
                None,
            ));
            let dup = applied(s, LimitName::DuplicateCertificates, &list, &who);
            for u in s.store.domain_name_sets(&d, since).await? {
                let w = s
                    .store
                    .name_set_window(&u.key, now - dup.limit.window_ms(), dup.limit.count)
                    .await?;
                if w.count > 0 {
                    out.push(usage_entry(
                        LimitName::DuplicateCertificates,
                        &format!("[{}]", u.key),
                        w,
                        &dup,
                        None,
                    ));
                }
            }
            Ok(serde_json::json!({
                "domain": d,
                "rate_limits": on(s),
                "limits": out,
            }))
        }
    }
}
