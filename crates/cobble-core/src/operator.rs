//! The operator's vocabulary (a commercial CA's ACME service, as Certigna's and Buypass's
//! documents describe it): external accounts, their domain lists and profile kinds,
//! organizations and their documents, and the approval state of ACME accounts. Each enum
//! has one wire/database name per value, parsed back by `parse`.

use crate::identifier::Identifier;

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v),+ }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            /// The wire and database name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
            /// Parses a wire or database name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$v),)+ _ => None }
            }
            /// The accepted names, for error messages.
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// An external account's status (the operator's record of a customer).
    ExternalAccountStatus {
        /// Waiting for the operator (documents, checks).
        Pending = "pending",
        /// In use.
        Valid = "valid",
        /// Stopped for now; the operator may reactivate it.
        Suspended = "suspended",
        /// Past its end date.
        Expired = "expired",
        /// Withdrawn by the operator; final.
        Revoked = "revoked",
        /// Closed; final.
        Deactivated = "deactivated",
    }
);

named_enum!(
    /// Which names an external account's certificates may carry (Certigna's profile kinds).
    ProfileKind {
        /// Wildcard and non-wildcard names.
        Any = "any",
        /// Wildcard names only (`*.example.com`).
        Wildcard = "wildcard",
        /// Non-wildcard names only.
        NonWildcard = "non-wildcard",
    }
);

named_enum!(
    /// An organization's status, as the operator sets it.
    OrganizationStatus {
        /// Checked and in good standing.
        Valid = "valid",
        /// Waiting for the operator's checks.
        Pending = "pending",
        /// Stopped by the operator.
        Suspended = "suspended",
    }
);

named_enum!(
    /// The documents an organization keeps on record.
    DocumentKind {
        /// The signed registration (subscription) form.
        RegistrationForm = "registration-form",
        /// Proof of the organization's existence (e.g. a company register extract).
        OrganizationProof = "organization-proof",
        /// The mandate naming the certificate manager.
        ManagerMandate = "manager-mandate",
    }
);

named_enum!(
    /// Whether the operator lets an ACME account order (`--operator-approval`).
    Approval {
        /// May order.
        Approved = "approved",
        /// Waiting for the operator's approval.
        Pending = "pending",
        /// Stopped by the operator; may be reactivated.
        Suspended = "suspended",
    }
);

/// One entry of an external account's domain list: an exact name (`www.example.com`), a
/// whole subtree (`*.example.com`: every name under example.com, wildcards included), or
/// an IP address; `authorized` false keeps the entry on record but refuses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainEntry {
    /// The name as the operator wrote it, lowercased.
    pub name: String,
    /// Whether certificates may carry it.
    pub authorized: bool,
}

impl DomainEntry {
    /// Checks an operator-written entry and normalizes it (lowercase, no trailing dot).
    pub fn parse(name: &str, authorized: bool) -> Result<Self, String> {
        let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
        let base = n.strip_prefix("*.").unwrap_or(&n);
        let ok = n.parse::<std::net::IpAddr>().is_ok()
            || (!base.is_empty()
                && base.len() <= 253
                && base.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                }));
        if !ok {
            return Err(format!(
                "{name:?} is not a domain name, a *.subtree or an IP address"
            ));
        }
        Ok(DomainEntry {
            name: n,
            authorized,
        })
    }

    /// How specifically this entry covers `id`: `None` when it does not; more labels
    /// matched ranks higher, and an exact entry outranks a subtree of the same name.
    pub fn covers(&self, id: &Identifier) -> Option<usize> {
        let value = id.value().to_ascii_lowercase();
        if value == self.name {
            return Some(self.name.len() * 2 + 1);
        }
        let sub = self.name.strip_prefix("*.")?;
        let v = value.strip_prefix("*.").unwrap_or(&value);
        (v == sub || v.ends_with(&format!(".{sub}"))).then_some(sub.len() * 2)
    }
}

/// The most specific entry of `list` that covers `id`.
pub fn best_entry<'a>(list: &'a [DomainEntry], id: &Identifier) -> Option<&'a DomainEntry> {
    list.iter()
        .filter_map(|e| e.covers(id).map(|rank| (rank, e)))
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, e)| e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(v: &str) -> Identifier {
        Identifier::from_wire("dns", v).unwrap()
    }

    #[test]
    fn names_round_trip() {
        for s in ExternalAccountStatus::ALL {
            assert_eq!(ExternalAccountStatus::parse(s.as_str()), Some(*s));
        }
        for s in DocumentKind::ALL {
            assert_eq!(DocumentKind::parse(s.as_str()), Some(*s));
        }
        assert_eq!(ProfileKind::parse("bogus"), None);
        assert!(Approval::names().contains("suspended"));
    }

    #[test]
    fn entries_cover_exact_names_and_subtrees() {
        let exact = DomainEntry::parse("Example.com.", true).unwrap();
        assert_eq!(exact.name, "example.com");
        assert!(exact.covers(&dns("example.com")).is_some());
        assert!(exact.covers(&dns("www.example.com")).is_none());
        assert!(exact.covers(&dns("*.example.com")).is_none());
        let tree = DomainEntry::parse("*.example.com", true).unwrap();
        assert!(tree.covers(&dns("example.com")).is_some());
        assert!(tree.covers(&dns("a.b.example.com")).is_some());
        assert!(tree.covers(&dns("*.example.com")).is_some());
        assert!(tree.covers(&dns("notexample.com")).is_none());
        let deeper = DomainEntry::parse("*.b.example.com", false).unwrap();
        let list = [tree.clone(), deeper.clone(), exact.clone()];
        assert_eq!(best_entry(&list, &dns("x.b.example.com")), Some(&deeper));
        assert_eq!(best_entry(&list, &dns("example.com")), Some(&exact));
        assert_eq!(best_entry(&list, &dns("example.org")), None);
        let ip = DomainEntry::parse("192.0.2.7", true).unwrap();
        assert!(
            ip.covers(&Identifier::from_wire("ip", "192.0.2.7").unwrap())
                .is_some()
        );
        assert!(DomainEntry::parse("bad name", true).is_err());
        assert!(DomainEntry::parse("*.", true).is_err());
    }
}
