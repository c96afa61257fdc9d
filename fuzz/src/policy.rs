//! Policy targets: identifiers (RFC 8555 §7.1.3-§7.1.4, RFC 8738) and contacts (§7.3).

use crate::Input;
use cobble_core::contact;
use cobble_core::identifier::Identifier;
use cobble_core::policy::{IdentifierPolicy, punycode_decode};

/// RFC 1035/5890 preferred name syntax, lowercase, with an optional `*.` leftmost label.
fn assert_lowercase_ldh(name: &str) {
    let base = name.strip_prefix("*.").unwrap_or(name);
    assert!(
        !base.is_empty() && name.len() <= 253,
        "accepted name of bad length: {name:?}"
    );
    for label in base.split('.') {
        assert!(
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-'),
            "accepted a name that is not lowercase LDH: {name:?}"
        );
    }
}

/// Target `identifier`: one flags byte picks the policy, then up to 16 lines of
/// `type<TAB>value` (type `dns` when no tab) go through `Identifier::from_wire`,
/// `IdentifierPolicy::check` and `check_all`. An accepted dns name is always lowercase LDH,
/// and `check_all` accepts exactly when every identifier passes `check`.
pub fn identifier(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let policy = IdentifierPolicy {
        max_identifiers: 1 + (flags as usize >> 5),
        blocked_domains: if flags & 8 != 0 {
            vec!["blocked.example.com".into(), "Evil.TEST.".into()]
        } else {
            Vec::new()
        },
        allowed_domains: if flags & 16 != 0 {
            vec!["example.com".into(), "test".into()]
        } else {
            Vec::new()
        },
        allow_reserved: flags & 1 != 0,
        allow_ip: flags & 2 != 0,
        allow_wildcard: flags & 4 != 0,
        ..IdentifierPolicy::default()
    };
    let mut ids = Vec::new();
    for _ in 0..16 {
        if input.is_empty() {
            break;
        }
        let line = String::from_utf8_lossy(input.until(b'\n')).into_owned();
        let (kind, value) = line.split_once('\t').unwrap_or(("dns", &line));
        for label in value.split('.') {
            if let Some(p) = label.strip_prefix("xn--") {
                let _ = punycode_decode(p);
            }
        }
        let Ok(id) = Identifier::from_wire(kind, value) else {
            continue;
        };
        if policy.check(&id).is_ok() {
            if let Identifier::Dns(name) = &id {
                assert_lowercase_ldh(name);
                assert!(
                    policy.allow_wildcard || !id.is_wildcard(),
                    "accepted a wildcard against policy: {name:?}"
                );
            } else {
                assert!(policy.allow_ip, "accepted an IP against policy");
            }
            let _ = id.authz_identifier();
        }
        ids.push(id);
    }
    let all_ok = policy.check_all(&ids).is_ok();
    let each_ok = !ids.is_empty()
        && ids.len() <= policy.max_identifiers
        && ids.iter().all(|i| policy.check(i).is_ok());
    assert_eq!(all_ok, each_ok, "check_all disagrees with check: {ids:?}");
}

/// Target `contact`: up to 16 lines as an account's contact list through
/// `contact::validate`. Accepted contacts are single `mailto:` addresses without header
/// fields, at most 10 of them, and the list is accepted exactly when each one is.
pub fn contact(data: &[u8]) {
    let contacts: Vec<String> = data
        .split(|b| *b == b'\n')
        .take(16)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let ok = contact::validate(&contacts).is_ok();
    let each = contacts.len() <= contact::MAX_CONTACTS
        && contacts
            .iter()
            .all(|c| contact::validate(std::slice::from_ref(c)).is_ok());
    assert_eq!(ok, each, "list and per-contact validation disagree");
    if ok {
        for c in &contacts {
            let addr = c
                .strip_prefix("mailto:")
                .expect("accepted contact is mailto:");
            assert!(c.len() <= 320 && addr.is_ascii(), "{c:?}");
            assert_eq!(addr.matches('@').count(), 1, "{c:?}");
            assert!(!addr.contains('?') && !addr.contains(','), "{c:?}");
            let domain = addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
            assert!(domain.contains('.'), "{c:?}");
        }
    }
}
