//! Certificate profiles of a newOrder (draft-ietf-acme-profiles): which configured profile
//! an order gets, and whether that profile takes the order's identifiers.

use cobble_ca::Profile;
use cobble_core::identifier::Identifier;
use cobble_core::{Problem, ProblemType, ResultCode};

/// The profile an order asking for `requested` gets among `profiles` (none asked: the
/// first, the default; none configured: `None`), refusing a name not offered with
/// `invalidProfile`, and the identifiers the profile does not allow with one subproblem
/// each: a wildcard name with `INVALID_PROFILE_FOR_WILDCARD`, an IP address with
/// `rejectedIdentifier` (RFC 8555 §6.7.1).
pub fn profile_check<'p>(
    profiles: &'p [Profile],
    requested: Option<&str>,
    ids: &[Identifier],
) -> Result<Option<&'p Profile>, Problem> {
    let profile = match requested {
        None => profiles.first(),
        Some(name) => Some(profiles.iter().find(|p| p.name == name).ok_or_else(|| {
            let known: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
            Problem::new(
                ProblemType::InvalidProfile,
                format!(
                    "profile {name:?} is not offered; choose one of {}",
                    known.join(", ")
                ),
            )
        })?),
    };
    if let Some(p) = profile {
        let refused: Vec<Problem> = ids
            .iter()
            .filter_map(|id| match id {
                Identifier::Dns(_) if id.is_wildcard() && !p.allow_wildcard => Some(
                    Problem::coded(
                        ResultCode::InvalidProfileForWildcard,
                        format!(
                            "profile {} does not allow wildcard names such as {}",
                            p.name,
                            id.value()
                        ),
                    )
                    .for_identifier("dns", &id.value()),
                ),
                Identifier::Ip(_) if !p.allow_ip => Some(
                    Problem::new(
                        ProblemType::RejectedIdentifier,
                        format!(
                            "profile {} does not allow IP addresses such as {}",
                            p.name,
                            id.value()
                        ),
                    )
                    .for_identifier("ip", &id.value()),
                ),
                _ => None,
            })
            .collect();
        if !refused.is_empty() {
            return Err(Problem::combine(refused));
        }
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> Vec<Profile> {
        let mut v = Profile::defaults();
        let mut strict = v[0].clone();
        strict.name = "strict".into();
        strict.allow_wildcard = false;
        strict.allow_ip = false;
        v.push(strict);
        v
    }

    fn ids(list: &[(&str, &str)]) -> Vec<Identifier> {
        list.iter()
            .map(|(k, v)| Identifier::from_wire(k, v).unwrap())
            .collect()
    }

    /// One row per case: profiles configured, profile asked for, identifiers, then the
    /// profile chosen or the problem's type and its subproblems' (identifier, code).
    #[test]
    fn profile_table() {
        type Sub = (&'static str, Option<ResultCode>);
        type Want = Result<Option<&'static str>, (ProblemType, &'static [Sub])>;
        const WILD: Option<ResultCode> = Some(ResultCode::InvalidProfileForWildcard);
        type Row = (
            bool,
            Option<&'static str>,
            &'static [(&'static str, &'static str)],
            Want,
        );
        let rows: &[Row] = &[
            // No profile asked for: the first configured.
            (true, None, &[("dns", "example.com")], Ok(Some("classic"))),
            (
                true,
                Some("shortlived"),
                &[("dns", "*.example.com")],
                Ok(Some("shortlived")),
            ),
            // No profiles configured: none, unless one is asked for.
            (false, None, &[("ip", "192.0.2.1")], Ok(None)),
            (
                false,
                Some("classic"),
                &[],
                Err((ProblemType::InvalidProfile, &[])),
            ),
            (
                true,
                Some("Classic"),
                &[],
                Err((ProblemType::InvalidProfile, &[])),
            ),
            // certigna: DNS names only (wildcards allowed).
            (
                true,
                Some("certigna"),
                &[("dns", "*.example.com")],
                Ok(Some("certigna")),
            ),
            (
                true,
                Some("certigna"),
                &[("dns", "example.com"), ("ip", "2001:db8::1")],
                Err((ProblemType::RejectedIdentifier, &[("2001:db8::1", None)])),
            ),
            // strict: one subproblem per refused identifier, all `rejectedIdentifier`.
            (
                true,
                Some("strict"),
                &[("dns", "*.example.com"), ("dns", "*.example.org")],
                Err((
                    ProblemType::RejectedIdentifier,
                    &[("*.example.com", WILD), ("*.example.org", WILD)],
                )),
            ),
            (
                true,
                Some("strict"),
                &[
                    ("dns", "*.example.com"),
                    ("dns", "a.example"),
                    ("ip", "192.0.2.1"),
                ],
                Err((
                    ProblemType::RejectedIdentifier,
                    &[("*.example.com", WILD), ("192.0.2.1", None)],
                )),
            ),
        ];
        let all = profiles();
        for (i, (configured, requested, list, want)) in rows.iter().enumerate() {
            let configured: &[Profile] = if *configured { &all } else { &[] };
            let got = profile_check(configured, *requested, &ids(list));
            match (got, want) {
                (Ok(p), Ok(name)) => {
                    assert_eq!(p.map(|p| p.name.as_str()), *name, "row {i}");
                }
                (Err(p), Err((kind, subs))) => {
                    assert_eq!(p.kind, *kind, "row {i}: {p:?}");
                    assert!((400..500).contains(&p.status), "row {i}: {p:?}");
                    let got: Vec<_> = p
                        .subproblems
                        .iter()
                        .map(|s| (s.identifier.as_ref().unwrap().value.as_str(), s.code))
                        .collect();
                    assert_eq!(got, *subs, "row {i}");
                }
                (got, want) => panic!("row {i}: got {got:?}, want {want:?}"),
            }
        }
    }
}
