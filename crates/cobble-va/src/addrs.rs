//! The validation address policy at the connection: every address a hop would connect to
//! is checked against [`AddressPolicy`] before the connection is made, and the connection
//! is pinned to the checked address, so a DNS answer that changes between check and
//! connect cannot slip through. Also the one place bodies are echoed into problems.

use cobble_core::netpolicy::{AddressPolicy, Refusal};
use cobble_core::{Problem, ProblemType};
use std::net::IpAddr;

/// Bytes of a fetched body echoed into a problem detail, at most.
pub const ECHO_LIMIT: usize = 64;

/// The addresses to try, in order: the first allowed IPv6, then the first allowed IPv4
/// (Boulder's order). Refused addresses are skipped; when every resolved address is refused,
/// a `connection` problem naming the first one and its class. `what` says what was being
/// reached ("Fetching http://...", "tls-alpn-01 to name:port").
pub(crate) fn candidates(
    policy: &AddressPolicy,
    resolved: &[IpAddr],
    what: &str,
) -> Result<Vec<IpAddr>, Problem> {
    let mut first_refusal: Option<Refusal> = None;
    let mut allowed = Vec::new();
    for ip in resolved {
        match policy.check(*ip) {
            Ok(_) => allowed.push(*ip),
            Err(r) => {
                tracing::debug!(%ip, refusal = %r, "validation address refused");
                first_refusal.get_or_insert(r);
            }
        }
    }
    let mut out: Vec<IpAddr> = allowed
        .iter()
        .find(|a| a.is_ipv6())
        .copied()
        .into_iter()
        .collect();
    out.extend(allowed.iter().find(|a| a.is_ipv4()));
    match (out.is_empty(), first_refusal) {
        (true, Some(r)) => Err(refused(&r, what)),
        _ => Ok(out),
    }
}

/// The `connection` problem for a refused address: names it and its class, never a body.
pub(crate) fn refused(r: &Refusal, what: &str) -> Problem {
    Problem::new(ProblemType::Connection, format!("{what}: {r}"))
}

/// At most [`ECHO_LIMIT`] bytes of `body`, whitespace-trimmed, each byte that is not printable
/// ASCII shown as `?`, quoted; `...` follows when it was cut.
pub fn echo(body: &[u8]) -> String {
    let trimmed = body.trim_ascii();
    let shown: String = trimmed
        .iter()
        .take(ECHO_LIMIT)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    if trimmed.len() > ECHO_LIMIT {
        format!("{shown:?}...")
    } else {
        format!("{shown:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_is_at_most_64_printable_bytes() {
        let rows: &[(&[u8], &str)] = &[
            (b"  abc\r\n", "\"abc\""),
            (b"a\x00b\xffc\x1b[31m", "\"a?b?c?[31m\""),
            ("é".as_bytes(), "\"??\""),
            (b"", "\"\""),
        ];
        for (body, want) in rows {
            assert_eq!(echo(body), *want);
        }
        let long = [b'x'; 300];
        assert_eq!(echo(&long), format!("{:?}...", "x".repeat(64)));
    }

    #[test]
    fn candidates_skip_refused_addresses_and_name_the_first() {
        let ips = |s: &[&str]| {
            s.iter()
                .map(|a| a.parse().unwrap())
                .collect::<Vec<IpAddr>>()
        };
        let p = AddressPolicy::default();
        // (resolved, Ok(candidates) | Err(detail fragment))
        type Row<'a> = (&'a [&'a str], Result<&'a [&'a str], &'a str>);
        let rows: &[Row] = &[
            (&["::1", "127.0.0.1"], Ok(&["::1", "127.0.0.1"])),
            (
                &["fe80::1", "::1", "10.0.0.1", "127.0.0.2"],
                Ok(&["::1", "127.0.0.2"]),
            ),
            (&["fd00::1", "127.0.0.1"], Ok(&["127.0.0.1"])),
            (
                &["10.0.0.5"],
                Err("x: 10.0.0.5 is a private address (RFC 1918)"),
            ),
            (
                &["fe80::1", "169.254.169.254"],
                Err("x: fe80::1 is a link-local address"),
            ),
            (&[], Ok(&[])),
        ];
        for (resolved, want) in rows {
            let got = candidates(&p, &ips(resolved), "x");
            match want {
                Ok(w) => assert_eq!(got.unwrap(), ips(w), "{resolved:?}"),
                Err(frag) => {
                    let e = got.unwrap_err();
                    assert_eq!(e.kind, ProblemType::Connection);
                    assert!(e.detail.starts_with(frag), "{resolved:?}: {e}");
                }
            }
        }
    }
}
