//! Rate limits, Buypass style (shared/reference/buypass-go-ssl-technical-information.txt,
//! "Rate limits"): their numbers are the defaults. The limits are data here; the server
//! counts in the store (the counting limits) or in memory (the request rates).

use serde::{Deserialize, Serialize};

/// A counting limit: at most `count` events per `window_secs`, unless `enabled` is false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limit {
    /// Events allowed in a window.
    pub count: u32,
    /// The window, in seconds.
    pub window_secs: u64,
    /// Whether the limit applies.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl Limit {
    const fn new(count: u32, window_secs: u64) -> Self {
        Limit {
            count,
            window_secs,
            enabled: true,
        }
    }

    /// The window in ms.
    pub fn window_ms(&self) -> i64 {
        self.window_secs as i64 * 1000
    }
}

/// Requests per second per client address, with a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rate {
    /// Sustained requests per second; 0 turns the limit off.
    pub per_second: u32,
    /// Requests allowed at once before the rate applies.
    pub burst: u32,
}

/// Every limit, with Buypass's numbers as defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RateLimits {
    /// Certificates per registered domain (eTLD+1): 20 per week.
    pub certificates_per_domain: Limit,
    /// Certificates for the exact same set of names: 5 per week.
    pub duplicate_certificates: Limit,
    /// Failed validations per account per hostname: 5 per hour.
    pub failed_validations: Limit,
    /// Pending authorizations per account: 300 (the window is unused).
    pub pending_authorizations: Limit,
    /// Renewals (the same names as an earlier certificate of the account, or `replaces`)
    /// do not count against the certificates-per-domain limit.
    pub renewals_exempt: bool,
    /// "new-reg": newAccount.
    pub new_account: Rate,
    /// "new-authz": newOrder and newAuthz.
    pub new_order: Rate,
    /// "new-cert": finalize.
    pub finalize: Rate,
    /// The directory.
    pub directory: Rate,
    /// Keep the request-rate buckets in the shared store (one statement per limited
    /// request) so that every instance on the database draws from the same bucket; off by
    /// default, when each instance keeps its own buckets and N instances admit N times the
    /// rate.
    pub shared_request_rates: bool,
    /// Overrides of the counting limits per account, external account or registered domain
    /// (the admin API adds more, kept in the store; those win over these for the same subject
    /// and limit).
    pub overrides: Vec<Override>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            certificates_per_domain: Limit::new(20, 7 * 86_400),
            duplicate_certificates: Limit::new(5, 7 * 86_400),
            failed_validations: Limit::new(5, 3600),
            pending_authorizations: Limit::new(300, 0),
            renewals_exempt: true,
            new_account: Rate {
                per_second: 20,
                burst: 20,
            },
            new_order: Rate {
                per_second: 20,
                burst: 20,
            },
            finalize: Rate {
                per_second: 20,
                burst: 20,
            },
            directory: Rate {
                per_second: 40,
                burst: 40,
            },
            shared_request_rates: false,
            overrides: Vec::new(),
        }
    }
}

/// The counting limits, by the names the configuration, the admin API and the overrides use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitName {
    /// Certificates per registered domain.
    CertificatesPerDomain,
    /// Certificates for the same set of names.
    DuplicateCertificates,
    /// Failed validations per account and hostname.
    FailedValidations,
    /// Pending authorizations per account.
    PendingAuthorizations,
}

impl LimitName {
    /// Every counting limit, in the order reports list them.
    pub const ALL: [LimitName; 4] = [
        LimitName::CertificatesPerDomain,
        LimitName::DuplicateCertificates,
        LimitName::FailedValidations,
        LimitName::PendingAuthorizations,
    ];

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitName::CertificatesPerDomain => "certificates-per-domain",
            LimitName::DuplicateCertificates => "duplicate-certificates",
            LimitName::FailedValidations => "failed-validations",
            LimitName::PendingAuthorizations => "pending-authorizations",
        }
    }

    /// Parses a kebab-case name.
    pub fn parse(s: &str) -> Option<LimitName> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The limit's base value in `limits`.
    pub fn base(self, limits: &RateLimits) -> Limit {
        match self {
            LimitName::CertificatesPerDomain => limits.certificates_per_domain,
            LimitName::DuplicateCertificates => limits.duplicate_certificates,
            LimitName::FailedValidations => limits.failed_validations,
            LimitName::PendingAuthorizations => limits.pending_authorizations,
        }
    }
}

/// Whom an override is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// One ACME account (its id).
    Account,
    /// Every account bound to one external account (its EAB `kid`).
    ExternalAccount,
    /// One registered domain (eTLD+1).
    Domain,
}

impl Scope {
    /// Every scope, most specific first: an account's override wins over its external
    /// account's, which wins over a registered domain's.
    pub const BY_PRECEDENCE: [Scope; 3] = [Scope::Account, Scope::ExternalAccount, Scope::Domain];

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::ExternalAccount => "external-account",
            Scope::Domain => "domain",
        }
    }

    /// Parses a kebab-case name.
    pub fn parse(s: &str) -> Option<Scope> {
        Self::BY_PRECEDENCE.into_iter().find(|c| c.as_str() == s)
    }
}

/// One override of a counting limit for one subject: a different count or window, or the
/// limit switched off for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Override {
    /// Which limit.
    pub limit: LimitName,
    /// An ACME account id (exactly one of `account`, `external-account`, `domain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// An external account's EAB `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_account: Option<String>,
    /// A registered domain; a longer name is taken as its registered domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Events allowed per window [default: the limit's].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// The window in seconds [default: the limit's].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u64>,
    /// false exempts the subject from the limit.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Why (kept with the override, shown in reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Why an override cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// None or several of account, external-account, domain.
    #[error("an override names exactly one of account, external-account or domain")]
    Subject,
    /// An empty subject.
    #[error("the override's {0} is empty")]
    Empty(&'static str),
    /// A scope that does not key this limit.
    #[error(
        "{limit} is counted per account: override it per account or external account, not per domain"
    )]
    ScopeNotApplicable {
        /// The limit.
        limit: &'static str,
    },
    /// A zero window on a windowed limit.
    #[error("{limit} needs a window of at least one second")]
    ZeroWindow {
        /// The limit.
        limit: &'static str,
    },
}

impl Override {
    /// The override's scope and subject, checked (a domain is reduced to its registered
    /// domain, lowercased).
    pub fn subject(&self) -> Result<(Scope, String), OverrideError> {
        let (scope, subject) = match (&self.account, &self.external_account, &self.domain) {
            (Some(a), None, None) => (Scope::Account, a.trim().to_owned()),
            (None, Some(k), None) => (Scope::ExternalAccount, k.trim().to_owned()),
            (None, None, Some(d)) => (Scope::Domain, registered_domain(d.trim())),
            _ => return Err(OverrideError::Subject),
        };
        if subject.is_empty() {
            return Err(OverrideError::Empty(scope.as_str()));
        }
        if scope == Scope::Domain && self.limit == LimitName::PendingAuthorizations {
            return Err(OverrideError::ScopeNotApplicable {
                limit: self.limit.as_str(),
            });
        }
        if self.window_secs == Some(0) && self.limit != LimitName::PendingAuthorizations {
            return Err(OverrideError::ZeroWindow {
                limit: self.limit.as_str(),
            });
        }
        Ok((scope, subject))
    }

    /// An override for `scope` and `subject`.
    pub fn for_subject(scope: Scope, subject: &str, limit: LimitName) -> Override {
        let mut o = Override {
            limit,
            account: None,
            external_account: None,
            domain: None,
            count: None,
            window_secs: None,
            enabled: true,
            comment: None,
        };
        match scope {
            Scope::Account => o.account = Some(subject.to_owned()),
            Scope::ExternalAccount => o.external_account = Some(subject.to_owned()),
            Scope::Domain => o.domain = Some(subject.to_owned()),
        }
        o
    }

    /// `base` with this override applied.
    pub fn apply(&self, base: &Limit) -> Limit {
        Limit {
            count: self.count.unwrap_or(base.count),
            window_secs: self.window_secs.unwrap_or(base.window_secs),
            enabled: self.enabled,
        }
    }
}

/// Who a counted request is for: the account, its external account, and the registered
/// domain of the key being counted (none for the per-account limits).
#[derive(Debug, Clone, Copy, Default)]
pub struct Subjects<'a> {
    /// The account id.
    pub account: Option<&'a str>,
    /// Its external account's kid.
    pub external_account: Option<&'a str>,
    /// The registered domains the key counts against.
    pub domains: &'a [String],
}

/// The limit in effect for `limit` and `who`, and the override that made it (if any):
/// the most specific override wins (account, then external account, then registered
/// domain; among several registered domains, the most generous). `overrides` lists
/// candidates, earlier entries winning over later ones for the same subject (put the
/// store's before the configuration's).
pub fn effective<'o>(
    limits: &RateLimits,
    limit: LimitName,
    overrides: &'o [Override],
    who: &Subjects<'_>,
) -> (Limit, Option<&'o Override>) {
    let base = limit.base(limits);
    let mut best: Option<(Scope, &'o Override)> = None;
    for o in overrides.iter().filter(|o| o.limit == limit) {
        let Ok((scope, subject)) = o.subject() else {
            continue;
        };
        let matches = match scope {
            Scope::Account => who.account == Some(subject.as_str()),
            Scope::ExternalAccount => who.external_account == Some(subject.as_str()),
            Scope::Domain => who.domains.contains(&subject),
        };
        if !matches {
            continue;
        }
        best = match best {
            None => Some((scope, o)),
            Some((s, _)) if scope < s => Some((scope, o)),
            Some((s, cur))
                if scope == s && scope == Scope::Domain && more_generous(o, cur, &base) =>
            {
                Some((scope, o))
            }
            keep => keep,
        };
    }
    match best {
        Some((_, o)) => (o.apply(&base), Some(o)),
        None => (base, None),
    }
}

fn more_generous(a: &Override, b: &Override, base: &Limit) -> bool {
    let (la, lb) = (a.apply(base), b.apply(base));
    match (la.enabled, lb.enabled) {
        (false, true) => true,
        (true, false) | (false, false) => false,
        (true, true) => la.count > lb.count,
    }
}

/// The registered domain (eTLD+1, Public Suffix List compiled in) a DNS name counts
/// against: `new.blog.example.co.uk` -> `example.co.uk`. A name that is itself a suffix or
/// has no known suffix counts against itself; an IP address too.
pub fn registered_domain(name: &str) -> String {
    let n = name.trim_start_matches("*.").to_ascii_lowercase();
    if n.parse::<std::net::IpAddr>().is_ok() {
        return n;
    }
    match psl::domain(n.as_bytes()) {
        Some(d) => String::from_utf8_lossy(d.as_bytes()).into_owned(),
        None => n,
    }
}

/// The key of a set of names for the duplicate-certificate limit: lowercased, sorted,
/// deduplicated, joined (order and case do not matter).
pub fn name_set_key(names: &[String]) -> String {
    let mut v: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    v.sort();
    v.dedup();
    v.join(",")
}

/// How a window reads in a problem's detail.
pub fn window_words(secs: u64) -> String {
    match secs {
        s if s % (7 * 86_400) == 0 => plural(s / (7 * 86_400), "week"),
        s if s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s % 3600 == 0 => plural(s / 3600, "hour"),
        s if s % 60 == 0 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        unit.to_owned()
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_domains_follow_the_psl() {
        assert_eq!(registered_domain("new.blog.example.co.uk"), "example.co.uk");
        assert_eq!(registered_domain("www.Example.com"), "example.com");
        assert_eq!(registered_domain("*.a.example.com"), "example.com");
        assert_eq!(registered_domain("192.0.2.1"), "192.0.2.1");
        assert_eq!(registered_domain("a.b.test"), "b.test");
    }

    #[test]
    fn name_sets_ignore_case_and_order() {
        assert_eq!(
            name_set_key(&["www.Example.com".into(), "example.com".into()]),
            name_set_key(&["example.com".into(), "WWW.example.com".into()])
        );
        assert_eq!(window_words(604_800), "week");
        assert_eq!(window_words(3600), "hour");
        assert_eq!(window_words(7200), "2 hours");
    }

    fn ov(limit: LimitName, scope: Scope, subject: &str, count: u32) -> Override {
        Override {
            count: Some(count),
            ..Override::for_subject(scope, subject, limit)
        }
    }

    #[test]
    fn the_most_specific_override_wins() {
        let l = RateLimits::default();
        let domains = vec!["example.com".to_owned(), "example.org".to_owned()];
        let who = Subjects {
            account: Some("acct"),
            external_account: Some("kid"),
            domains: &domains,
        };
        let c = LimitName::CertificatesPerDomain;
        assert_eq!(effective(&l, c, &[], &who).0.count, 20);
        let all = [
            ov(c, Scope::Domain, "example.com", 30),
            ov(c, Scope::Domain, "example.org", 40),
            ov(c, Scope::ExternalAccount, "kid", 50),
            ov(c, Scope::Account, "acct", 60),
            ov(c, Scope::Account, "other", 70),
            ov(LimitName::DuplicateCertificates, Scope::Account, "acct", 80),
        ];
        let (lim, by) = effective(&l, c, &all, &who);
        assert_eq!(
            (lim.count, by.unwrap().account.as_deref()),
            (60, Some("acct"))
        );
        assert_eq!(lim.window_secs, 7 * 86_400, "the window is kept");
        assert_eq!(effective(&l, c, &all[..3], &who).0.count, 50);
        assert_eq!(
            effective(&l, c, &all[..2], &who).0.count,
            40,
            "the most generous domain"
        );
        let mut off = ov(c, Scope::Domain, "example.com", 1);
        off.enabled = false;
        let (lim, _) = effective(&l, c, &[all[1].clone(), off], &who);
        assert!(!lim.enabled, "an exemption is the most generous");
        // Earlier entries win for the same subject (the store's before the config's).
        let (lim, _) = effective(
            &l,
            c,
            &[
                ov(c, Scope::Account, "acct", 7),
                ov(c, Scope::Account, "acct", 9),
            ],
            &who,
        );
        assert_eq!(lim.count, 7);
        let nobody = Subjects::default();
        assert_eq!(effective(&l, c, &all, &nobody).0.count, 20);
    }

    #[test]
    fn overrides_are_checked() {
        let mut o = Override::for_subject(
            Scope::Domain,
            "www.Example.co.uk",
            LimitName::CertificatesPerDomain,
        );
        assert_eq!(
            o.subject().unwrap(),
            (Scope::Domain, "example.co.uk".to_owned())
        );
        o.account = Some("a".into());
        assert_eq!(o.subject(), Err(OverrideError::Subject));
        let p = Override::for_subject(
            Scope::Domain,
            "example.com",
            LimitName::PendingAuthorizations,
        );
        assert!(matches!(
            p.subject(),
            Err(OverrideError::ScopeNotApplicable { .. })
        ));
        let mut w = Override::for_subject(Scope::Account, "a", LimitName::FailedValidations);
        w.window_secs = Some(0);
        assert!(matches!(w.subject(), Err(OverrideError::ZeroWindow { .. })));
        assert!(
            Override::for_subject(Scope::Account, " ", LimitName::FailedValidations)
                .subject()
                .is_err()
        );
        let parsed: Override = serde_json::from_str(
            r#"{"limit": "certificates-per-domain", "domain": "example.com", "count": 100}"#,
        )
        .unwrap();
        assert_eq!(parsed.count, Some(100));
        assert!(parsed.enabled);
        for l in LimitName::ALL {
            assert_eq!(LimitName::parse(l.as_str()), Some(l));
        }
        for s in Scope::BY_PRECEDENCE {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
    }
}
