//! Account contact policy (RFC 8555 §7.3): `mailto:` URLs only, one address each, no
//! header fields, a bounded count. Like Boulder, Cobble checks the address's syntax.

use crate::problem::{Problem, ProblemType};

/// At most this many contacts per account.
pub const MAX_CONTACTS: usize = 10;
/// Longest accepted contact URL.
const MAX_LEN: usize = 320;

/// Checks every contact URL; the first failure is the problem (`unsupportedContact` for
/// another scheme, `invalidContact` for a bad address).
pub fn validate(contacts: &[String]) -> Result<(), Problem> {
    if contacts.len() > MAX_CONTACTS {
        return Err(Problem::new(
            ProblemType::InvalidContact,
            format!(
                "too many contacts: {} given, at most {MAX_CONTACTS}",
                contacts.len()
            ),
        ));
    }
    contacts.iter().try_for_each(|c| validate_one(c))
}

fn invalid(contact: &str, why: &str) -> Problem {
    Problem::new(
        ProblemType::InvalidContact,
        format!("contact {contact:?} {why}"),
    )
}

fn validate_one(contact: &str) -> Result<(), Problem> {
    let Some(addr) = contact.strip_prefix("mailto:") else {
        let scheme = contact.split_once(':').map_or("none", |(s, _)| s);
        return Err(Problem::new(
            ProblemType::UnsupportedContact,
            format!("contact {contact:?} uses scheme {scheme:?}; only mailto: is supported"),
        ));
    };
    if contact.len() > MAX_LEN {
        return Err(invalid(
            contact,
            &format!("is longer than {MAX_LEN} characters"),
        ));
    }
    if addr.contains('?') {
        return Err(invalid(
            contact,
            "has header fields (?...), which are not allowed",
        ));
    }
    if addr.contains(',') || addr.contains("%2C") || addr.contains("%2c") {
        return Err(invalid(
            contact,
            "has more than one address; use one contact per address",
        ));
    }
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return Err(invalid(contact, "is not an email address (no @)"));
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=^_`{|}~.".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    if !local_ok {
        return Err(invalid(contact, "has an invalid local part"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().any(|c| c.is_ascii_alphabetic()));
    if !domain_ok {
        return Err(invalid(
            contact,
            &format!("has an invalid domain {domain:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_table() {
        // (contact, None = ok, or the problem type) — RFC 8555 §7.3.
        let cases: &[(&str, Option<&str>)] = &[
            ("mailto:a@example.com", None),
            ("mailto:first.last+tag@sub.example.org", None),
            ("tel:+12025550100", Some("unsupportedContact")),
            ("https://example.com", Some("unsupportedContact")),
            ("a@example.com", Some("unsupportedContact")),
            ("mailto:a@example.com?subject=x", Some("invalidContact")),
            ("mailto:a@example.com,b@example.com", Some("invalidContact")),
            (
                "mailto:a@example.com%2Cb@example.com",
                Some("invalidContact"),
            ),
            ("mailto:example.com", Some("invalidContact")),
            ("mailto:@example.com", Some("invalidContact")),
            ("mailto:a@localhost", Some("invalidContact")),
            ("mailto:a@-bad.example.com", Some("invalidContact")),
            ("mailto:a@1.2.3.4", Some("invalidContact")),
            ("mailto:a b@example.com", Some("invalidContact")),
            ("mailto:a..b@example.com", Some("invalidContact")),
        ];
        for (c, want) in cases {
            let got = validate(&[c.to_string()]);
            match want {
                None => assert!(got.is_ok(), "{c}: {got:?}"),
                Some(t) => assert_eq!(got.unwrap_err().kind.name(), *t, "{c}"),
            }
        }
        let many: Vec<String> = (0..11)
            .map(|i| format!("mailto:a{i}@example.com"))
            .collect();
        assert_eq!(validate(&many).unwrap_err().kind.name(), "invalidContact");
        assert!(validate(&many[..10]).is_ok());
    }
}
