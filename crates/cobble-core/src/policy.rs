//! Identifier policy (RFC 8555 §7.1.4, §7.4; RFC 8738): which names and addresses this CA
//! will validate and issue for. One table of reserved suffixes, one function per check,
//! each failure a problem naming the identifier.

use crate::identifier::Identifier;
use crate::netpolicy::AddressPolicy;
use crate::problem::{Problem, ProblemType, ResultCode};
use std::net::IpAddr;

/// Special-use suffixes (RFC 6761, RFC 6762, RFC 7686, RFC 9476, ...) refused unless allowed.
/// `test`, `example`, `invalid` and `localhost` are allowed by default: this is a test CA.
pub const RESERVED_SUFFIXES: &[&str] = &[
    "local", "onion", "arpa", "internal", "alt", "lan", "home", "corp", "intranet", "private",
];

/// Suffixes a test CA accepts by default although they are special-use.
pub const TEST_SUFFIXES: &[&str] = &["test", "example", "invalid", "localhost"];

/// The identifier policy in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierPolicy {
    /// Most identifiers in one order.
    pub max_identifiers: usize,
    /// Names equal to or under one of these are refused.
    pub blocked_domains: Vec<String>,
    /// When not empty, names must be equal to or under one of these.
    pub allowed_domains: Vec<String>,
    /// Accept the reserved suffixes of [`RESERVED_SUFFIXES`] too.
    pub allow_reserved: bool,
    /// Accept `ip` identifiers (RFC 8738).
    pub allow_ip: bool,
    /// Accept wildcard names.
    pub allow_wildcard: bool,
    /// The validation address policy: an `ip` identifier in a class it refuses is refused
    /// at newOrder (RFC 8738), under the same switches as validation itself.
    pub addresses: AddressPolicy,
}

impl Default for IdentifierPolicy {
    fn default() -> Self {
        Self {
            max_identifiers: 100,
            blocked_domains: Vec::new(),
            allowed_domains: Vec::new(),
            allow_reserved: false,
            allow_ip: true,
            allow_wildcard: true,
            addresses: AddressPolicy::default(),
        }
    }
}

/// A name this CA will not certify (Certigna's INVALID_DOMAIN: rejectedIdentifier, 400).
fn rejected(id: &Identifier, why: impl std::fmt::Display) -> Problem {
    Problem::coded(ResultCode::InvalidDomain, format!("{}: {why}", id.value()))
        .for_identifier(id.kind(), &id.value())
}

fn malformed(id: &Identifier, why: impl std::fmt::Display) -> Problem {
    Problem::malformed(format!("{}: {why}", id.value())).for_identifier(id.kind(), &id.value())
}

fn under(name: &str, domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    name == domain || name.ends_with(&format!(".{domain}"))
}

impl IdentifierPolicy {
    /// Checks one identifier; the problem names it.
    pub fn check(&self, id: &Identifier) -> Result<(), Problem> {
        match id {
            Identifier::Ip(ip) => self.check_ip(id, ip),
            Identifier::Dns(name) => self.check_dns(id, name),
        }
    }

    fn check_ip(&self, id: &Identifier, ip: &IpAddr) -> Result<(), Problem> {
        if !self.allow_ip {
            return Err(Problem::new(
                ProblemType::UnsupportedIdentifier,
                "this CA does not issue for IP addresses",
            )
            .for_identifier("ip", &ip.to_string()));
        }
        if let Err(refusal) = self.addresses.check(*ip) {
            return Err(
                Problem::new(ProblemType::RejectedIdentifier, refusal.to_string())
                    .for_identifier(id.kind(), &id.value()),
            );
        }
        Ok(())
    }

    fn check_dns(&self, id: &Identifier, name: &str) -> Result<(), Problem> {
        check_syntax(id, name)?;
        let base = name.strip_prefix("*.").unwrap_or(name);
        if name.starts_with("*.") && !self.allow_wildcard {
            return Err(Problem::coded(
                ResultCode::InvalidProfileForWildcard,
                format!("{name}: this CA does not issue wildcard certificates"),
            )
            .for_identifier("dns", name));
        }
        let tld = base.rsplit('.').next().unwrap_or(base);
        if !self.allow_reserved && RESERVED_SUFFIXES.contains(&tld) {
            return Err(rejected(
                id,
                format!(
                    "the .{tld} suffix is reserved for special use (RFC 6761); it cannot be certified"
                ),
            ));
        }
        if !base.contains('.') && !TEST_SUFFIXES.contains(&base) {
            return Err(rejected(id, "a single-label name cannot be certified"));
        }
        if let Some(s) = psl::suffix(base.as_bytes())
            && s.is_known()
            && s.as_bytes() == base.as_bytes()
        {
            return Err(rejected(
                id,
                "the name is a public suffix (Public Suffix List); certify a name under it",
            ));
        }
        if let Some(b) = self.blocked_domains.iter().find(|b| under(base, b)) {
            return Err(Problem::coded(
                ResultCode::UnauthorizedDomain,
                format!("{name} is under {b}, which this CA's policy forbids"),
            )
            .for_identifier("dns", name));
        }
        if !self.allowed_domains.is_empty() && !self.allowed_domains.iter().any(|a| under(base, a))
        {
            return Err(Problem::coded(
                ResultCode::UnauthorizedDomain,
                format!("{name} is not under any domain this CA's policy allows"),
            )
            .for_identifier("dns", name));
        }
        Ok(())
    }

    /// Checks a whole order's identifiers: count, then each one. Several failures come back
    /// as one problem with `subproblems` (RFC 8555 §6.7.1).
    pub fn check_all(&self, ids: &[Identifier]) -> Result<(), Problem> {
        if ids.is_empty() {
            return Err(Problem::malformed("the order has no identifiers"));
        }
        if ids.len() > self.max_identifiers {
            return Err(Problem::new(
                ProblemType::RejectedIdentifier,
                format!(
                    "the order has {} identifiers; at most {} are allowed",
                    ids.len(),
                    self.max_identifiers
                ),
            ));
        }
        let mut failures: Vec<Problem> = ids.iter().filter_map(|i| self.check(i).err()).collect();
        match failures.len() {
            0 => Ok(()),
            1 => Err(failures.remove(0)),
            n => {
                let kind = if failures.iter().all(|f| f.kind == failures[0].kind) {
                    failures[0].kind
                } else {
                    ProblemType::Compound
                };
                let mut p = Problem::new(
                    kind,
                    format!("{n} identifiers were refused; see subproblems"),
                );
                p.subproblems = failures;
                Err(p)
            }
        }
    }
}

/// RFC 1035/5890 syntax: lowercase LDH labels of 1-63 octets, at most 253 in all, no
/// trailing dot, a wildcard only as the whole leftmost label, A-labels that decode.
fn check_syntax(id: &Identifier, name: &str) -> Result<(), Problem> {
    if name.is_empty() {
        return Err(malformed(id, "empty name"));
    }
    if name.ends_with('.') {
        return Err(malformed(id, "a name must not end with a dot"));
    }
    if name.len() > 253 {
        return Err(malformed(id, "the name is longer than 253 characters"));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(malformed(id, "names must be lowercase"));
    }
    let base = match name.strip_prefix("*.") {
        Some(b) => b,
        None => name,
    };
    if base.contains('*') {
        return Err(malformed(
            id,
            "a wildcard is only allowed as the whole leftmost label (*.example.com)",
        ));
    }
    if base.parse::<IpAddr>().is_ok() {
        return Err(malformed(
            id,
            "an IP address must use the \"ip\" identifier type (RFC 8738)",
        ));
    }
    for label in base.split('.') {
        if label.is_empty() {
            return Err(malformed(id, "the name has an empty label"));
        }
        if label.len() > 63 {
            return Err(malformed(
                id,
                format!("label {label:?} is longer than 63 characters"),
            ));
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(malformed(
                id,
                format!(
                    "label {label:?} has characters other than a-z, 0-9 and '-' (use the IDNA A-label, xn--...)"
                ),
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(malformed(
                id,
                format!("label {label:?} starts or ends with a hyphen"),
            ));
        }
        if label.len() >= 4 && &label[2..4] == "--" {
            match label.strip_prefix("xn--") {
                Some(puny) => {
                    if punycode_decode(puny).is_none() {
                        return Err(malformed(
                            id,
                            format!("label {label:?} is not a valid IDNA A-label"),
                        ));
                    }
                }
                None => {
                    return Err(malformed(
                        id,
                        format!(
                            "label {label:?} has hyphens in the 3rd and 4th positions, reserved for IDNA"
                        ),
                    ));
                }
            }
        }
    }
    let tld = base.rsplit('.').next().unwrap_or(base);
    if tld.chars().all(|c| c.is_ascii_digit()) {
        return Err(malformed(id, "the top-level label is all digits"));
    }
    Ok(())
}

/// RFC 3492 punycode decoding; `None` when the input is not valid punycode or decodes to
/// nothing but ASCII (which would not need an A-label).
pub fn punycode_decode(input: &str) -> Option<String> {
    const BASE: u32 = 36;
    const TMIN: u32 = 1;
    const TMAX: u32 = 26;
    const SKEW: u32 = 38;
    const DAMP: u32 = 700;
    fn adapt(mut delta: u32, numpoints: u32, first: bool) -> u32 {
        delta /= if first { DAMP } else { 2 };
        delta += delta / numpoints;
        let mut k = 0;
        while delta > ((BASE - TMIN) * TMAX) / 2 {
            delta /= BASE - TMIN;
            k += BASE;
        }
        k + (BASE - TMIN + 1) * delta / (delta + SKEW)
    }
    let (basic, rest) = match input.rfind('-') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => ("", input),
    };
    if !basic.is_ascii() {
        return None;
    }
    let mut out: Vec<char> = basic.chars().collect();
    let (mut n, mut i, mut bias) = (128u32, 0u32, 72u32);
    let mut it = rest.bytes().peekable();
    while it.peek().is_some() {
        let old_i = i;
        let mut w = 1u32;
        let mut k = BASE;
        loop {
            let c = it.next()?;
            let digit = match c {
                b'a'..=b'z' => c - b'a',
                b'0'..=b'9' => c - b'0' + 26,
                _ => return None,
            } as u32;
            i = i.checked_add(digit.checked_mul(w)?)?;
            let t = if k <= bias {
                TMIN
            } else if k >= bias + TMAX {
                TMAX
            } else {
                k - bias
            };
            if digit < t {
                break;
            }
            w = w.checked_mul(BASE - t)?;
            k += BASE;
        }
        let len = out.len() as u32 + 1;
        bias = adapt(i - old_i, len, old_i == 0);
        n = n.checked_add(i / len)?;
        i %= len;
        out.insert(i as usize, char::from_u32(n)?);
        i += 1;
    }
    if out.iter().all(|c| c.is_ascii()) {
        return None;
    }
    Some(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punycode_examples() {
        // RFC 3492 §7.1 (lowercased) and common names.
        assert_eq!(punycode_decode("bcher-kva").as_deref(), Some("bücher"));
        assert_eq!(
            punycode_decode("ihqwcrb4cv8a8dqg056pqjye").as_deref(),
            Some("他们为什么不说中文")
        );
        assert_eq!(punycode_decode("abc-"), None, "all ASCII");
        assert_eq!(punycode_decode("99999999999"), None, "overflow");
        assert_eq!(punycode_decode("a-!"), None);
    }

    #[test]
    fn identifier_policy_table() {
        let p = IdentifierPolicy {
            blocked_domains: vec!["blocked.example.com".into()],
            ..Default::default()
        };
        let ip = |s: &str| Identifier::Ip(s.parse().unwrap());
        let dns = |s: &str| Identifier::Dns(s.into());
        // (identifier, None = accepted | Some(problem type, detail fragment)) — RFC 8555 §7.1.4, RFC 8738.
        let rows: Vec<(Identifier, Option<(&str, &str)>)> = vec![
            (dns("example.com"), None),
            (dns("a.b.example.co.uk"), None),
            (dns("*.example.com"), None),
            (dns("xn--bcher-kva.example"), None),
            (dns("localhost"), None),
            (dns("host.test"), None),
            (dns("a-b.example.org"), None),
            (ip("127.0.0.1"), None),
            (ip("::1"), None),
            (dns("Example.com"), Some(("malformed", "lowercase"))),
            (dns("example.com."), Some(("malformed", "dot"))),
            (dns("ex_ample.com"), Some(("malformed", "characters"))),
            (dns("-a.example.com"), Some(("malformed", "hyphen"))),
            (dns("a..example.com"), Some(("malformed", "empty label"))),
            (
                dns(&format!("{}.com", "a".repeat(64))),
                Some(("malformed", "63")),
            ),
            (
                dns(&format!("{}.com", "abcdefghi.".repeat(26))),
                Some(("malformed", "253")),
            ),
            (dns("*.*.example.com"), Some(("malformed", "wildcard"))),
            (dns("a*.example.com"), Some(("malformed", "wildcard"))),
            (
                dns("xn--zz-!.example.com"),
                Some(("malformed", "characters")),
            ),
            (dns("xn--abc-.example.com"), Some(("malformed", "hyphen"))),
            (
                dns("xn--99999999999.example.com"),
                Some(("malformed", "A-label")),
            ),
            (dns("ab--cd.example.com"), Some(("malformed", "IDNA"))),
            (dns("1.2.3.4"), Some(("malformed", "\"ip\""))),
            (dns("example.123"), Some(("malformed", "all digits"))),
            (dns("co.uk"), Some(("rejectedIdentifier", "public suffix"))),
            (
                dns("*.co.uk"),
                Some(("rejectedIdentifier", "public suffix")),
            ),
            (dns("com"), Some(("rejectedIdentifier", "single-label"))),
            (
                dns("printer.local"),
                Some(("rejectedIdentifier", "reserved")),
            ),
            (dns("x.onion"), Some(("rejectedIdentifier", "reserved"))),
            (
                dns("blocked.example.com"),
                Some(("rejectedIdentifier", "UNAUTHORIZED_DOMAIN")),
            ),
            (
                dns("www.blocked.example.com"),
                Some(("rejectedIdentifier", "forbids")),
            ),
            (ip("0.0.0.0"), Some(("rejectedIdentifier", "unspecified"))),
            (ip("224.0.0.1"), Some(("rejectedIdentifier", "multicast"))),
            // The validation address policy (crate::netpolicy), RFC 6890 and its IPv6 kin.
            (ip("8.8.8.8"), None),
            (ip("2001:4860:4860::8888"), None),
            (
                ip("10.0.0.5"),
                Some((
                    "rejectedIdentifier",
                    "10.0.0.5 is a private address (RFC 1918)",
                )),
            ),
            (
                ip("169.254.169.254"),
                Some(("rejectedIdentifier", "link-local address (RFC 3927)")),
            ),
            (
                ip("100.64.0.1"),
                Some(("rejectedIdentifier", "carrier-grade NAT")),
            ),
            (
                ip("192.0.2.1"),
                Some(("rejectedIdentifier", "documentation address (RFC 5737)")),
            ),
            (
                ip("fd00::1"),
                Some(("rejectedIdentifier", "unique local address (RFC 4193)")),
            ),
            (
                ip("fe80::1"),
                Some(("rejectedIdentifier", "link-local address (RFC 4291")),
            ),
            (
                ip("::ffff:192.168.1.1"),
                Some(("rejectedIdentifier", "IPv4-mapped 192.168.1.1")),
            ),
            (
                ip("255.255.255.255"),
                Some(("rejectedIdentifier", "broadcast")),
            ),
        ];
        for (id, want) in rows {
            let got = p.check(&id);
            match want {
                None => assert!(got.is_ok(), "{id}: {got:?}"),
                Some((kind, frag)) => {
                    let e = got.expect_err(&id.to_string());
                    assert_eq!(e.kind.name(), kind, "{id}: {e}");
                    assert!(e.detail.contains(frag), "{id}: {e}");
                    assert!(e.identifier.is_some(), "{id}");
                }
            }
        }
    }

    /// `--va-allow-private` and `--va-deny-loopback` apply to `ip` identifiers at newOrder too.
    #[test]
    fn ip_identifiers_follow_the_address_switches() {
        let ip = |s: &str| Identifier::Ip(s.parse().unwrap());
        let policy = |allow_private, deny_loopback| IdentifierPolicy {
            addresses: AddressPolicy {
                allow_private,
                deny_loopback,
            },
            ..Default::default()
        };
        // (identifier, (allow_private, deny_loopback), accepted)
        let rows: &[(&str, (bool, bool), bool)] = &[
            ("127.0.0.1", (false, false), true),
            ("127.0.0.1", (false, true), false),
            ("::1", (true, true), false),
            ("10.0.0.5", (false, false), false),
            ("10.0.0.5", (true, false), true),
            ("100.64.0.1", (true, false), true),
            ("fd00::1", (true, false), true),
            ("169.254.169.254", (true, false), false),
            ("fe80::1", (true, false), false),
            ("192.0.2.1", (true, false), false),
            ("8.8.8.8", (false, true), true),
        ];
        for (addr, (allow_private, deny_loopback), accepted) in rows {
            let got = policy(*allow_private, *deny_loopback).check(&ip(addr));
            assert_eq!(
                got.is_ok(),
                *accepted,
                "{addr} {allow_private} {deny_loopback}: {got:?}"
            );
            if let Err(e) = got {
                assert_eq!(e.kind.name(), "rejectedIdentifier", "{e}");
                assert!(e.detail.contains(addr), "{e}");
                assert_eq!(e.identifier.unwrap().value, *addr);
            }
        }
    }

    #[test]
    fn allow_list_reserved_and_subproblems() {
        let p = IdentifierPolicy {
            allowed_domains: vec!["example.com".into()],
            allow_reserved: true,
            ..Default::default()
        };
        assert!(p.check(&Identifier::Dns("a.example.com".into())).is_ok());
        assert!(
            p.check(&Identifier::Dns("example.org".into()))
                .unwrap_err()
                .detail
                .starts_with("UNAUTHORIZED_DOMAIN")
        );
        let p = IdentifierPolicy {
            allow_reserved: true,
            ..Default::default()
        };
        assert!(p.check(&Identifier::Dns("printer.local".into())).is_ok());
        let e = IdentifierPolicy::default()
            .check_all(&[
                Identifier::Dns("A.com".into()),
                Identifier::Dns("co.uk".into()),
                Identifier::Dns("ok.example.com".into()),
            ])
            .unwrap_err();
        assert_eq!(e.kind.name(), "compound");
        assert_eq!(e.subproblems.len(), 2);
        let many: Vec<_> = (0..101)
            .map(|i| Identifier::Dns(format!("h{i}.example.com")))
            .collect();
        assert!(
            IdentifierPolicy::default()
                .check_all(&many)
                .unwrap_err()
                .detail
                .contains("at most 100")
        );
        assert!(IdentifierPolicy::default().check_all(&[]).is_err());
    }
}
