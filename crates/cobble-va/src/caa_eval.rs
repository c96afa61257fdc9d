//! CAA record-set evaluation (RFC 8659 §4, RFC 8657 §3-4) as a pure function
//! over parsed records, so every RFC case is one row of a table test.

/// One CAA resource record as found in DNS (RFC 8659 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaaRecord {
    /// The Issuer Critical flag (bit 0 of the flags octet, value 128).
    pub critical: bool,
    /// The property tag, as published (compared case-insensitively).
    pub tag: String,
    /// The property value, as published.
    pub value: String,
}

impl CaaRecord {
    /// A record from its parts.
    pub fn new(critical: bool, tag: &str, value: &str) -> Self {
        Self {
            critical,
            tag: tag.to_owned(),
            value: value.to_owned(),
        }
    }
}

impl std::fmt::Display for CaaRecord {
    /// Zone-file form, e.g. `0 issue "cobble.test"`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let flags = if self.critical { 128 } else { 0 };
        write!(f, "{flags} {} {:?}", self.tag, self.value)
    }
}

/// What the issuance is for: the facts CAA parameters are compared with.
#[derive(Debug, Clone, Copy)]
pub struct CaaQuery<'a> {
    /// Issuer domain names this CA answers to (RFC 8659 §4.2), compared case-insensitively.
    pub identities: &'a [String],
    /// Whether the certificate is for a wildcard name (selects `issuewild`, RFC 8659 §4.3).
    pub wildcard: bool,
    /// The ACME account URI (RFC 8657 §3 `accounturi`).
    pub account_uri: &'a str,
    /// The validation method used, e.g. `dns-01` (RFC 8657 §4 `validationmethods`).
    pub method: &'a str,
}

/// The outcome of evaluating a relevant CAA RRset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaaDecision {
    /// Issuance is allowed; `by` is the authorising record, `None` when no
    /// `issue`/`issuewild` property applies (RFC 8659 §4.2-4.3).
    Permit {
        /// The record that authorised this CA, if any.
        by: Option<CaaRecord>,
    },
    /// Issuance is forbidden; `reason` is for a person, `records` the ones that decided.
    Forbid {
        /// Why, in words.
        reason: String,
        /// The records that forbade issuance.
        records: Vec<CaaRecord>,
    },
}

/// Tags this CA understands (RFC 8659 §4.2-4.4, RFC 9495 `issuemail`, RFC 9601 `issuevmc`):
/// a critical record with any other tag forbids issuance (RFC 8659 §4.1).
pub const KNOWN_TAGS: &[&str] = &["issue", "issuewild", "iodef", "issuemail", "issuevmc"];

/// Evaluates the relevant RRset `records` (RFC 8659 §3: the first non-empty CAA
/// RRset found climbing from the name) for the issuance described by `q`.
pub fn evaluate_caa(records: &[CaaRecord], q: &CaaQuery<'_>) -> CaaDecision {
    // RFC 8659 §4.1: an unknown property with the critical flag forbids issuance.
    let unknown_critical: Vec<CaaRecord> = records
        .iter()
        .filter(|r| r.critical && !KNOWN_TAGS.iter().any(|t| r.tag.eq_ignore_ascii_case(t)))
        .cloned()
        .collect();
    if !unknown_critical.is_empty() {
        return CaaDecision::Forbid {
            reason: "it has a critical property this CA does not understand".to_owned(),
            records: unknown_critical,
        };
    }
    let with_tag = |tag: &str| -> Vec<&CaaRecord> {
        records
            .iter()
            .filter(|r| r.tag.eq_ignore_ascii_case(tag))
            .collect()
    };
    // RFC 8659 §4.3: issuewild governs wildcards when present, else issue does.
    let mut relevant = Vec::new();
    if q.wildcard {
        relevant = with_tag("issuewild");
    }
    if relevant.is_empty() {
        relevant = with_tag("issue");
    }
    if relevant.is_empty() {
        return CaaDecision::Permit { by: None };
    }
    let mut why = Vec::new();
    for r in &relevant {
        match authorizes(r, q) {
            Ok(()) => {
                return CaaDecision::Permit {
                    by: Some((*r).clone()),
                };
            }
            Err(reason) => {
                if !why.contains(&reason) {
                    why.push(reason);
                }
            }
        }
    }
    CaaDecision::Forbid {
        reason: format!(
            "no {} property authorizes {} ({})",
            relevant[0].tag.to_ascii_lowercase(),
            q.identities.join(" or "),
            why.join("; ")
        ),
        records: relevant.into_iter().cloned().collect(),
    }
}

/// `Ok` when `r` names one of our identities and its parameters allow this
/// issuance; else why not, in words.
fn authorizes(r: &CaaRecord, q: &CaaQuery<'_>) -> Result<(), String> {
    // RFC 8659 §4.2: a malformed value authorises no one.
    let value = IssueValue::parse(&r.value).ok_or("malformed value")?;
    // `issue ";"`: no CA may issue.
    let domain = value.domain.ok_or("no CA may issue")?;
    if !q.identities.iter().any(|i| {
        i.trim_end_matches('.')
            .eq_ignore_ascii_case(domain.trim_end_matches('.'))
    }) {
        return Err(format!("only {domain} may issue"));
    }
    for (key, val) in &value.params {
        // Parameter tags are case-insensitive; unknown parameters are ignored (RFC 8659 §4.2).
        if key.eq_ignore_ascii_case("accounturi") && *val != q.account_uri {
            return Err(format!("accounturi is not {}", q.account_uri)); // RFC 8657 §3
        }
        if key.eq_ignore_ascii_case("validationmethods")
            && !val
                .split(',')
                .any(|m| m.trim().eq_ignore_ascii_case(q.method))
        {
            return Err(format!("validationmethods does not include {}", q.method)); // RFC 8657 §4
        }
    }
    Ok(())
}

/// An `issue`/`issuewild` value (RFC 8659 §4.2): `[domain] [";" [key=value *(";" key=value)]]`.
#[derive(Debug, PartialEq, Eq)]
struct IssueValue<'a> {
    domain: Option<&'a str>,
    params: Vec<(&'a str, &'a str)>,
}

impl<'a> IssueValue<'a> {
    fn parse(s: &'a str) -> Option<Self> {
        let (domain, rest) = match s.split_once(';') {
            Some((d, r)) => (d.trim(), Some(r)),
            None => (s.trim(), None),
        };
        let domain = if domain.is_empty() {
            None
        } else if is_domain(domain) {
            Some(domain)
        } else {
            return None;
        };
        let mut params = Vec::new();
        for p in rest.into_iter().flat_map(|r| r.split(';')) {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let (k, v) = p.split_once('=')?;
            let (k, v) = (k.trim(), v.trim());
            let key_ok = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            let value_ok = v.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b';');
            if !key_ok || !value_ok {
                return None;
            }
            params.push((k, v));
        }
        Some(Self { domain, params })
    }
}

fn is_domain(s: &str) -> bool {
    s.trim_end_matches('.').split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCT: &str = "https://localhost:14000/my-account/1";

    fn rec(critical: bool, tag: &str, value: &str) -> CaaRecord {
        CaaRecord::new(critical, tag, value)
    }

    /// (what, RFC section, records, wildcard, method, permitted)
    type Row<'a> = (&'a str, &'a str, Vec<CaaRecord>, bool, &'a str, bool);

    /// One row per RFC case.
    #[test]
    fn caa_table() {
        let acct_ok = format!("cobble.test; accounturi={ACCT}");
        let rows: Vec<Row<'_>> = vec![
            ("empty set", "8659 §4", vec![], false, "http-01", true),
            (
                "issue for us",
                "8659 §4.2",
                vec![rec(false, "issue", "cobble.test")],
                false,
                "http-01",
                true,
            ),
            (
                "issue for us, case and trailing dot",
                "8659 §4.2",
                vec![rec(false, "ISSUE", "Cobble.Test.")],
                false,
                "http-01",
                true,
            ),
            (
                "issue for another CA",
                "8659 §4.2",
                vec![rec(false, "issue", "other-ca.test")],
                false,
                "http-01",
                false,
            ),
            (
                "one of several issue records",
                "8659 §4.2",
                vec![
                    rec(false, "issue", "other-ca.test"),
                    rec(false, "issue", "cobble.test"),
                ],
                false,
                "http-01",
                true,
            ),
            (
                "issue \";\" forbids all",
                "8659 §4.2",
                vec![rec(false, "issue", ";")],
                false,
                "http-01",
                false,
            ),
            (
                "empty issue value forbids all",
                "8659 §4.2",
                vec![rec(false, "issue", "")],
                false,
                "http-01",
                false,
            ),
            (
                "malformed issue value",
                "8659 §4.2",
                vec![rec(false, "issue", "cobble.test; =x")],
                false,
                "http-01",
                false,
            ),
            (
                "only iodef: no issue property",
                "8659 §4.4",
                vec![rec(false, "iodef", "mailto:x@example.test")],
                false,
                "http-01",
                true,
            ),
            (
                "issuewild ignored for non-wildcard",
                "8659 §4.3",
                vec![
                    rec(false, "issuewild", ";"),
                    rec(false, "issue", "cobble.test"),
                ],
                false,
                "http-01",
                true,
            ),
            (
                "issuewild for us on wildcard",
                "8659 §4.3",
                vec![
                    rec(false, "issuewild", "cobble.test"),
                    rec(false, "issue", ";"),
                ],
                true,
                "dns-01",
                true,
            ),
            (
                "issuewild forbids wildcard",
                "8659 §4.3",
                vec![
                    rec(false, "issuewild", ";"),
                    rec(false, "issue", "cobble.test"),
                ],
                true,
                "dns-01",
                false,
            ),
            (
                "wildcard falls back to issue (allowed)",
                "8659 §4.3",
                vec![rec(false, "issue", "cobble.test")],
                true,
                "dns-01",
                true,
            ),
            (
                "wildcard falls back to issue (forbidden)",
                "8659 §4.3",
                vec![rec(false, "issue", "other-ca.test")],
                true,
                "dns-01",
                false,
            ),
            (
                "critical unknown tag forbids",
                "8659 §4.1",
                vec![rec(true, "tbs", "x"), rec(false, "issue", "cobble.test")],
                false,
                "http-01",
                false,
            ),
            (
                "non-critical unknown tag ignored",
                "8659 §4.1",
                vec![rec(false, "tbs", "x"), rec(false, "issue", "cobble.test")],
                false,
                "http-01",
                true,
            ),
            (
                "critical known tag is fine",
                "8659 §4.1",
                vec![rec(true, "issue", "cobble.test")],
                false,
                "http-01",
                true,
            ),
            (
                "accounturi match",
                "8657 §3",
                vec![rec(false, "issue", &acct_ok)],
                false,
                "http-01",
                true,
            ),
            (
                "accounturi mismatch",
                "8657 §3",
                vec![rec(
                    false,
                    "issue",
                    "cobble.test; accounturi=https://localhost:14000/my-account/2",
                )],
                false,
                "http-01",
                false,
            ),
            (
                "validationmethods match",
                "8657 §4",
                vec![rec(
                    false,
                    "issue",
                    "cobble.test; validationmethods=dns-01,http-01",
                )],
                false,
                "http-01",
                true,
            ),
            (
                "validationmethods mismatch",
                "8657 §4",
                vec![rec(false, "issue", "cobble.test; validationmethods=dns-01")],
                false,
                "tls-alpn-01",
                false,
            ),
            (
                "both parameters satisfied",
                "8657 §3-4",
                vec![rec(
                    false,
                    "issue",
                    &format!("cobble.test; accounturi={ACCT}; validationmethods=tls-alpn-01"),
                )],
                false,
                "tls-alpn-01",
                true,
            ),
            (
                "unknown parameter ignored",
                "8659 §4.2",
                vec![rec(false, "issue", "cobble.test; policy=ev")],
                false,
                "http-01",
                true,
            ),
            (
                "parameters for another CA don't help",
                "8657 §3",
                vec![rec(
                    false,
                    "issue",
                    &format!("other-ca.test; accounturi={ACCT}"),
                )],
                false,
                "http-01",
                false,
            ),
        ];
        let identities = vec!["cobble.test".to_owned()];
        for (what, section, records, wildcard, method, permitted) in rows {
            let q = CaaQuery {
                identities: &identities,
                wildcard,
                account_uri: ACCT,
                method,
            };
            let got = evaluate_caa(&records, &q);
            assert_eq!(
                matches!(got, CaaDecision::Permit { .. }),
                permitted,
                "RFC {section}: {what}: {got:?}"
            );
            if let CaaDecision::Forbid { records, .. } = got {
                assert!(!records.is_empty(), "{what}: a forbid names its records");
            }
        }
    }

    #[test]
    fn issue_value_parses() {
        let v = IssueValue::parse(" ca.test ; a=b;c = d ; ").unwrap();
        assert_eq!(v.domain, Some("ca.test"));
        assert_eq!(v.params, vec![("a", "b"), ("c", "d")]);
        assert_eq!(IssueValue::parse(";").unwrap().domain, None);
        assert!(IssueValue::parse("bad domain").is_none());
        assert!(IssueValue::parse("ca.test; novalue").is_none());
        assert_eq!(
            rec(true, "issue", "ca.test").to_string(),
            "128 issue \"ca.test\""
        );
    }
}
