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
        }
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
}
