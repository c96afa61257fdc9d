//! Account status and its transitions (RFC 8555 §7.1.6).

use crate::problem::Problem;

/// An account's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    /// In use.
    Valid,
    /// Deactivated by its holder (§7.3.6); final.
    Deactivated,
    /// Revoked by the server or an operator; final.
    Revoked,
}

impl AccountStatus {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Valid => "valid",
            AccountStatus::Deactivated => "deactivated",
            AccountStatus::Revoked => "revoked",
        }
    }

    /// Parses a stored or requested status name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "valid" => AccountStatus::Valid,
            "deactivated" => AccountStatus::Deactivated,
            "revoked" => AccountStatus::Revoked,
            _ => return None,
        })
    }

    /// The status a client may ask for (RFC 8555 §7.3.6: only `deactivated`, and only from `valid`).
    pub fn client_transition(self, requested: &str) -> Result<Self, Problem> {
        match (self, requested) {
            (AccountStatus::Valid, "deactivated") => Ok(AccountStatus::Deactivated),
            (AccountStatus::Valid, "valid") => Ok(AccountStatus::Valid),
            (_, "deactivated" | "valid" | "revoked") => Err(Problem::unauthorized(format!(
                "account is {}; it cannot become {requested}",
                self.as_str()
            ))),
            (_, other) => Err(Problem::malformed(format!(
                "account status {other:?} cannot be requested; only \"deactivated\" can (RFC 8555 §7.3.6)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AccountStatus::*;

    #[test]
    fn transition_table() {
        // (from, requested, Ok(to) or Err(problem type)) — RFC 8555 §7.1.6, §7.3.6.
        let cases = [
            (Valid, "deactivated", Ok(Deactivated)),
            (Valid, "valid", Ok(Valid)),
            (Valid, "revoked", Err("unauthorized")),
            (Valid, "pending", Err("malformed")),
            (Deactivated, "valid", Err("unauthorized")),
            (Deactivated, "deactivated", Err("unauthorized")),
            (Revoked, "deactivated", Err("unauthorized")),
        ];
        for (from, req, want) in cases {
            let got = from.client_transition(req).map_err(|p| p.kind.name());
            assert_eq!(got, want, "{from:?} -> {req}");
        }
        for s in [Valid, Deactivated, Revoked] {
            assert_eq!(super::AccountStatus::parse(s.as_str()), Some(s));
        }
    }
}
