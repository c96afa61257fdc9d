//! ACME identifiers (RFC 8555 §7.1.3 `dns`, RFC 8738 `ip`), parsed once at the edge.

use crate::problem::{Problem, ProblemType};
use serde_json::{Value, json};
use std::net::IpAddr;

/// An identifier an order, authorization or certificate is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identifier {
    /// A DNS name, lowercase, without trailing dot; may start with `*.` (a wildcard).
    Dns(String),
    /// An IPv4 or IPv6 address (RFC 8738).
    Ip(IpAddr),
}

impl Identifier {
    /// Parses the wire form `{"type": ..., "value": ...}` for shape only (policy is separate).
    pub fn from_wire(kind: &str, value: &str) -> Result<Self, Problem> {
        match kind {
            "dns" => Ok(Identifier::Dns(value.to_owned())),
            "ip" => {
                // RFC 8738 §3: textual form; reject zone ids and non-canonical forms by round trip.
                let ip: IpAddr = value.parse().map_err(|_| {
                    Problem::malformed(format!("{value:?} is not an IP address"))
                        .for_identifier(kind, value)
                })?;
                Ok(Identifier::Ip(ip))
            }
            other => Err(Problem::new(
                ProblemType::UnsupportedIdentifier,
                format!("identifier type {other:?} is not supported; use \"dns\" or \"ip\""),
            )
            .for_identifier(other, value)),
        }
    }

    /// `dns` or `ip`.
    pub fn kind(&self) -> &'static str {
        match self {
            Identifier::Dns(_) => "dns",
            Identifier::Ip(_) => "ip",
        }
    }

    /// The value as sent on the wire.
    pub fn value(&self) -> String {
        match self {
            Identifier::Dns(d) => d.clone(),
            Identifier::Ip(ip) => ip.to_string(),
        }
    }

    /// The wire form.
    pub fn to_json(&self) -> Value {
        json!({"type": self.kind(), "value": self.value()})
    }

    /// True for `*.` names.
    pub fn is_wildcard(&self) -> bool {
        matches!(self, Identifier::Dns(d) if d.starts_with("*."))
    }

    /// The name validation is done for: a wildcard's base domain (RFC 8555 §7.1.3), else the identifier.
    pub fn authz_identifier(&self) -> Identifier {
        match self {
            Identifier::Dns(d) => Identifier::Dns(d.strip_prefix("*.").unwrap_or(d).to_owned()),
            ip => ip.clone(),
        }
    }
}

impl std::fmt::Display for Identifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind(), self.value())
    }
}
