//! Problems (RFC 7807) with ACME error types (RFC 8555 §6.7) and Certigna result codes.
//!
//! Two tables live here and are read by the server, the docs and the tests alike:
//! [`ProblemType::ALL`] (type -> default HTTP status) and [`ResultCode::ALL`]
//! (Certigna code -> ACME type -> HTTP status).

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// The ACME error types: RFC 8555 §6.7, plus the companions' (RFC 9773 ARI, the profiles draft).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemType {
    AccountDoesNotExist,
    AlreadyReplaced,
    AlreadyRevoked,
    BadCsr,
    BadNonce,
    BadPublicKey,
    BadRevocationReason,
    BadSignatureAlgorithm,
    Caa,
    Compound,
    Connection,
    Dns,
    ExternalAccountRequired,
    IncorrectResponse,
    InvalidContact,
    InvalidProfile,
    Malformed,
    OrderNotReady,
    RateLimited,
    RejectedIdentifier,
    ServerInternal,
    Tls,
    Unauthorized,
    UnsupportedContact,
    UnsupportedIdentifier,
    UserActionRequired,
}

impl ProblemType {
    /// Every type with its URN suffix and default HTTP status: the one table.
    pub const ALL: &'static [(ProblemType, &'static str, u16)] = &[
        (Self::AccountDoesNotExist, "accountDoesNotExist", 400),
        (Self::AlreadyReplaced, "alreadyReplaced", 409),
        (Self::AlreadyRevoked, "alreadyRevoked", 400),
        (Self::BadCsr, "badCSR", 400),
        (Self::BadNonce, "badNonce", 400),
        (Self::BadPublicKey, "badPublicKey", 400),
        (Self::BadRevocationReason, "badRevocationReason", 400),
        (Self::BadSignatureAlgorithm, "badSignatureAlgorithm", 400),
        (Self::Caa, "caa", 403),
        (Self::Compound, "compound", 400),
        (Self::Connection, "connection", 400),
        (Self::Dns, "dns", 400),
        (
            Self::ExternalAccountRequired,
            "externalAccountRequired",
            401,
        ),
        (Self::IncorrectResponse, "incorrectResponse", 403),
        (Self::InvalidContact, "invalidContact", 400),
        (Self::InvalidProfile, "invalidProfile", 400),
        (Self::Malformed, "malformed", 400),
        (Self::OrderNotReady, "orderNotReady", 403),
        (Self::RateLimited, "rateLimited", 429),
        (Self::RejectedIdentifier, "rejectedIdentifier", 400),
        (Self::ServerInternal, "serverInternal", 500),
        (Self::Tls, "tls", 400),
        (Self::Unauthorized, "unauthorized", 403),
        (Self::UnsupportedContact, "unsupportedContact", 400),
        (Self::UnsupportedIdentifier, "unsupportedIdentifier", 400),
        (Self::UserActionRequired, "userActionRequired", 403),
    ];

    fn row(self) -> &'static (ProblemType, &'static str, u16) {
        Self::ALL
            .iter()
            .find(|r| r.0 == self)
            .expect("every ProblemType has a row in ProblemType::ALL")
    }

    /// The short name, e.g. `badNonce`.
    pub fn name(self) -> &'static str {
        self.row().1
    }

    /// The full URN, e.g. `urn:ietf:params:acme:error:badNonce`.
    pub fn urn(self) -> String {
        format!("urn:ietf:params:acme:error:{}", self.name())
    }

    /// The HTTP status this type is sent with unless a situation calls for another.
    pub fn status(self) -> u16 {
        self.row().2
    }
}

/// Certigna's result codes (reference/certigna-acme-service.txt, "Result code"), each
/// mapped to the ACME type and HTTP status Cobble sends it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum ResultCode {
    DeactivatedAccount,
    DeactivatedExternalAccount,
    DomainNotFound,
    ExpiredAccount,
    ExpiredExternalAccount,
    ExternalAccountNotFound,
    InvalidDnsCaa,
    InvalidDomain,
    InvalidDomainForWildcardProfile,
    InvalidProfileForWildcard,
    NoDocumentFormFound,
    NoValidOrganizationDocumentFound,
    NotSameOrganization,
    OrganizationIsNotValid,
    OutOfCredit,
    PendingExternalAccount,
    RevokedAccount,
    RevokedExternalAccount,
    SuspendedAccount,
    SuspendedExternalAccount,
    UnauthorizedDomain,
    AcmeOrderNotRead,
    AcmeRequestNotFound,
    AcmeOrderFinalizeError,
    AcmeCaError,
    AcmeOtherError,
    AcmeDeactivated,
}

impl ResultCode {
    /// Code -> ACME type -> HTTP status: the one table (also printed in the README).
    pub const ALL: &'static [(ResultCode, &'static str, ProblemType, u16)] = {
        use ProblemType as P;
        use ResultCode as R;
        &[
            (
                R::DeactivatedAccount,
                "DEACTIVATED_ACCOUNT",
                P::Unauthorized,
                401,
            ),
            (
                R::DeactivatedExternalAccount,
                "DEACTIVATED_EXTERNAL_ACCOUNT",
                P::Unauthorized,
                403,
            ),
            (
                R::DomainNotFound,
                "DOMAIN_NOT_FOUND",
                P::RejectedIdentifier,
                400,
            ),
            (R::ExpiredAccount, "EXPIRED_ACCOUNT", P::Unauthorized, 403),
            (
                R::ExpiredExternalAccount,
                "EXPIRED_EXTERNAL_ACCOUNT",
                P::Unauthorized,
                403,
            ),
            (
                R::ExternalAccountNotFound,
                "EXTERNAL_ACCOUNT_NOT_FOUND",
                P::Unauthorized,
                403,
            ),
            (R::InvalidDnsCaa, "INVALID_DNSCAA", P::Caa, 403),
            (
                R::InvalidDomain,
                "INVALID_DOMAIN",
                P::RejectedIdentifier,
                400,
            ),
            (
                R::InvalidDomainForWildcardProfile,
                "INVALID_DOMAIN_FOR_WILDCARD_PROFILE",
                P::RejectedIdentifier,
                400,
            ),
            (
                R::InvalidProfileForWildcard,
                "INVALID_PROFILE_FOR_WILDCARD",
                P::RejectedIdentifier,
                400,
            ),
            (
                R::NoDocumentFormFound,
                "NO_DOCUMENT_FORM_FOUND",
                P::UserActionRequired,
                403,
            ),
            (
                R::NoValidOrganizationDocumentFound,
                "NO_VALID_ORGANIZATION_DOCUMENT_FOUND",
                P::UserActionRequired,
                403,
            ),
            (
                R::NotSameOrganization,
                "NOT_SAME_ORGANIZATION",
                P::RejectedIdentifier,
                400,
            ),
            (
                R::OrganizationIsNotValid,
                "ORGANIZATION_IS_NOT_VALID",
                P::UserActionRequired,
                403,
            ),
            (R::OutOfCredit, "OUT_OF_CREDIT", P::UserActionRequired, 403),
            (
                R::PendingExternalAccount,
                "PENDING_EXTERNAL_ACCOUNT",
                P::UserActionRequired,
                403,
            ),
            (R::RevokedAccount, "REVOKED_ACCOUNT", P::Unauthorized, 401),
            (
                R::RevokedExternalAccount,
                "REVOKED_EXTERNAL_ACCOUNT",
                P::Unauthorized,
                403,
            ),
            (
                R::SuspendedAccount,
                "SUSPENDED_ACCOUNT",
                P::Unauthorized,
                403,
            ),
            (
                R::SuspendedExternalAccount,
                "SUSPENDED_EXTERNAL_ACCOUNT",
                P::Unauthorized,
                403,
            ),
            (
                R::UnauthorizedDomain,
                "UNAUTHORIZED_DOMAIN",
                P::RejectedIdentifier,
                400,
            ),
            (
                R::AcmeOrderNotRead,
                "ACME_ORDER_NOT_READ",
                P::ServerInternal,
                500,
            ),
            (
                R::AcmeRequestNotFound,
                "ACME_REQUEST_NOT_FOUND",
                P::ServerInternal,
                500,
            ),
            (
                R::AcmeOrderFinalizeError,
                "ACME_ORDER_FINALIZE_ERROR",
                P::ServerInternal,
                500,
            ),
            (R::AcmeCaError, "ACME_CA_ERROR", P::ServerInternal, 500),
            (
                R::AcmeOtherError,
                "ACME_OTHER_ERROR",
                P::ServerInternal,
                500,
            ),
            (R::AcmeDeactivated, "ACME_DEACTIVATED", P::Unauthorized, 403),
        ]
    };

    fn row(self) -> &'static (ResultCode, &'static str, ProblemType, u16) {
        Self::ALL
            .iter()
            .find(|r| r.0 == self)
            .expect("every ResultCode has a row in ResultCode::ALL")
    }

    /// The code as Certigna spells it, e.g. `DOMAIN_NOT_FOUND`.
    pub fn as_str(self) -> &'static str {
        self.row().1
    }
    /// The ACME error type the code is sent with.
    pub fn problem_type(self) -> ProblemType {
        self.row().2
    }
    /// The HTTP status the code is sent with.
    pub fn status(self) -> u16 {
        self.row().3
    }
}

/// How every `badNonce` detail begins: Boulder's wording, which clients match on.
pub const BAD_NONCE_DETAIL: &str = "JWS has an invalid anti-replay nonce";

/// An identifier a subproblem refers to (RFC 8555 §6.7.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProblemIdentifier {
    /// `dns` or `ip`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The name or address.
    pub value: String,
}

/// An RFC 7807 problem document as ACME sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The ACME error type.
    pub kind: ProblemType,
    /// What went wrong, for a person; starts with the result code when there is one.
    pub detail: String,
    /// The HTTP status.
    pub status: u16,
    /// The Certigna result code, where one fits.
    pub code: Option<ResultCode>,
    /// The identifier this (sub)problem is about.
    pub identifier: Option<Box<ProblemIdentifier>>,
    /// Per-identifier problems (RFC 8555 §6.7.1).
    pub subproblems: Vec<Problem>,
    /// For `badSignatureAlgorithm`: the algorithms the server accepts (RFC 8555 §6.2).
    pub algorithms: &'static [&'static str],
    /// A page for a person about this occurrence (RFC 7807 `instance`; RFC 8555 §7.3.3:
    /// what a `userActionRequired` asks of them).
    pub instance: Option<Box<str>>,
}

impl Problem {
    /// A problem of `kind` with its default status.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            status: kind.status(),
            code: None,
            identifier: None,
            subproblems: Vec::new(),
            algorithms: &[],
            instance: None,
        }
    }

    /// A problem for a Certigna result code: its type and status, and `detail` starting with the code.
    pub fn coded(code: ResultCode, detail: impl AsRef<str>) -> Self {
        let mut p = Self::new(
            code.problem_type(),
            format!("{}: {}", code.as_str(), detail.as_ref()),
        );
        p.status = code.status();
        p.code = Some(code);
        p
    }

    /// Same problem, another HTTP status (e.g. 404, 405, 413, 415 for `malformed`).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Same problem, with an `instance` page for a person.
    pub fn with_instance(mut self, url: impl Into<String>) -> Self {
        self.instance = Some(url.into().into_boxed_str());
        self
    }

    /// Same problem, naming the identifier it is about.
    pub fn for_identifier(mut self, kind: &str, value: &str) -> Self {
        self.identifier = Some(Box::new(ProblemIdentifier {
            kind: kind.to_owned(),
            value: value.to_owned(),
        }));
        self
    }

    /// One problem for per-identifier failures (RFC 8555 §6.7.1): `identifier` belongs in
    /// subproblems only, so even a single failure about an identifier becomes one subproblem
    /// under a top-level problem of its type; several share their common type, or are
    /// `compound` when they differ. A single failure about no identifier stays as it is.
    pub fn combine(mut failures: Vec<Problem>) -> Problem {
        if let [one] = failures.as_slice()
            && one.identifier.is_none()
        {
            return failures.remove(0);
        }
        let mut top = match failures.as_slice() {
            [one] => {
                let mut p = Problem::new(one.kind, one.detail.clone());
                p.status = one.status;
                p.code = one.code;
                p
            }
            _ => {
                let kind = if failures.iter().all(|f| f.kind == failures[0].kind) {
                    failures[0].kind
                } else {
                    ProblemType::Compound
                };
                Problem::new(
                    kind,
                    format!(
                        "{} identifiers were refused; see subproblems",
                        failures.len()
                    ),
                )
            }
        };
        top.subproblems = failures;
        top
    }

    /// A `badNonce` problem (RFC 8555 §6.5). The detail starts with Boulder's sentence,
    /// [`BAD_NONCE_DETAIL`], because clients in the wild (acme.sh among them) decide to
    /// retry by matching that text rather than the type; `why` says what was wrong.
    pub fn bad_nonce(why: impl AsRef<str>) -> Self {
        Self::new(
            ProblemType::BadNonce,
            format!("{BAD_NONCE_DETAIL}: {}", why.as_ref()),
        )
    }

    /// Shorthand for `malformed`.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Malformed, detail)
    }

    /// Shorthand for `unauthorized`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Unauthorized, detail)
    }

    /// Shorthand for `serverInternal`.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::ServerInternal, detail)
    }

    /// Shorthand for a 404 `malformed` about a resource that does not exist.
    pub fn not_found(what: &str) -> Self {
        Self::malformed(format!("{what} does not exist")).with_status(404)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.kind.name(), self.status, self.detail)
    }
}

impl std::error::Error for Problem {}

impl Serialize for Problem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", &self.kind.urn())?;
        m.serialize_entry("detail", &self.detail)?;
        m.serialize_entry("status", &self.status)?;
        if let Some(code) = self.code {
            m.serialize_entry("code", code.as_str())?;
        }
        if let Some(url) = &self.instance {
            m.serialize_entry("instance", &**url)?;
        }
        if let Some(id) = &self.identifier {
            m.serialize_entry("identifier", id)?;
        }
        if !self.subproblems.is_empty() {
            m.serialize_entry("subproblems", &self.subproblems)?;
        }
        if !self.algorithms.is_empty() {
            m.serialize_entry("algorithms", &self.algorithms)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_and_code_has_one_row() {
        let mut names: Vec<_> = ProblemType::ALL.iter().map(|r| r.1).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ProblemType::ALL.len());
        let mut codes: Vec<_> = ResultCode::ALL.iter().map(|r| r.1).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ResultCode::ALL.len());
        for (code, _, kind, status) in ResultCode::ALL {
            assert_eq!(code.problem_type(), *kind);
            assert_eq!(code.status(), *status);
        }
    }

    #[test]
    fn rfc8555_types_are_all_present() {
        // RFC 8555 §6.7, table of error types.
        for name in [
            "accountDoesNotExist",
            "alreadyRevoked",
            "badCSR",
            "badNonce",
            "badPublicKey",
            "badRevocationReason",
            "badSignatureAlgorithm",
            "caa",
            "compound",
            "connection",
            "dns",
            "externalAccountRequired",
            "incorrectResponse",
            "invalidContact",
            "malformed",
            "orderNotReady",
            "rateLimited",
            "rejectedIdentifier",
            "serverInternal",
            "tls",
            "unauthorized",
            "unsupportedContact",
            "unsupportedIdentifier",
            "userActionRequired",
        ] {
            assert!(ProblemType::ALL.iter().any(|r| r.1 == name), "{name}");
        }
    }

    #[test]
    fn combine_keeps_identifiers_in_subproblems() {
        // RFC 8555 §6.7.1: one refusal or several, the top level names no identifier.
        let one = Problem::combine(vec![
            Problem::new(ProblemType::RejectedIdentifier, "x.example is blocked")
                .for_identifier("dns", "x.example"),
        ]);
        let v = serde_json::to_value(&one).unwrap();
        assert!(v.get("identifier").is_none(), "{v}");
        assert_eq!(v["type"], "urn:ietf:params:acme:error:rejectedIdentifier");
        assert_eq!(v["detail"], "x.example is blocked");
        assert_eq!(v["subproblems"][0]["identifier"]["value"], "x.example");
        let two = Problem::combine(vec![
            Problem::malformed("a").for_identifier("dns", "a.example"),
            Problem::new(ProblemType::RejectedIdentifier, "b").for_identifier("dns", "b.example"),
        ]);
        let v = serde_json::to_value(&two).unwrap();
        assert!(v.get("identifier").is_none(), "{v}");
        assert_eq!(v["type"], "urn:ietf:params:acme:error:compound");
        assert_eq!(v["subproblems"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn bad_nonce_details_start_with_boulders_sentence() {
        let p = Problem::bad_nonce("it has expired");
        assert_eq!(p.kind, ProblemType::BadNonce);
        assert_eq!(p.status, 400);
        assert_eq!(
            p.detail,
            "JWS has an invalid anti-replay nonce: it has expired"
        );
    }

    #[test]
    fn serializes_as_rfc7807_with_code_and_subproblems() {
        let mut p = Problem::coded(ResultCode::DomainNotFound, "www.example.org is not listed");
        p.subproblems
            .push(Problem::malformed("bad name").for_identifier("dns", "-x.example"));
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "urn:ietf:params:acme:error:rejectedIdentifier");
        assert_eq!(v["status"], 400);
        assert_eq!(v["code"], "DOMAIN_NOT_FOUND");
        assert_eq!(
            v["detail"],
            "DOMAIN_NOT_FOUND: www.example.org is not listed"
        );
        assert_eq!(v["subproblems"][0]["identifier"]["value"], "-x.example");
        assert!(v.get("algorithms").is_none());
    }
}

/// The result-code table as Markdown rows (`| code | ACME type | status |`), as the README prints it.
pub fn result_code_table() -> String {
    let mut out = String::from("| code | ACME error type | HTTP status |\n|---|---|---|\n");
    for (_, code, kind, status) in ResultCode::ALL {
        out.push_str(&format!("| `{code}` | `{}` | {status} |\n", kind.name()));
    }
    out
}

/// The ACME error type table as Markdown rows, as the README prints it.
pub fn problem_type_table() -> String {
    let mut out = String::from("| ACME error type | default HTTP status |\n|---|---|\n");
    for (_, name, status) in ProblemType::ALL {
        out.push_str(&format!("| `{name}` | {status} |\n"));
    }
    out
}

#[cfg(test)]
mod readme {
    /// The README's tables are the code's tables (ARCHITECTURE.md: one table, in code and README).
    #[test]
    fn readme_tables_match_the_code() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&super::result_code_table()),
            "README result-code table is stale:\n{}",
            super::result_code_table()
        );
        assert!(
            readme.contains(&super::problem_type_table()),
            "README problem-type table is stale:\n{}",
            super::problem_type_table()
        );
    }
}
