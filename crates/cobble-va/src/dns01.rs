//! dns-01 (RFC 8555 §8.4): a TXT record at `_acme-challenge.<name>` holding
//! base64url(SHA-256(key authorization)). CNAMEs are followed by the resolver,
//! so a delegated `_acme-challenge` (acme.sh's alias mode) works.

use crate::dns::{Dns, LookupError};
use crate::unsupported;
use cobble_core::challenge::{ChallengeType, dns01_txt_value};
use cobble_core::identifier::Identifier;
use cobble_core::{Problem, ProblemType};
use hickory_resolver::proto::rr::RecordType;
use serde_json::json;

/// How much of a wrong TXT value the problem quotes.
const QUOTE_LIMIT: usize = 100;

/// Looks up the TXT RRset and passes when any value equals the expected digest.
pub(crate) async fn validate(
    dns: &Dns,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<serde_json::Value, Problem> {
    let base = match identifier.authz_identifier() {
        Identifier::Dns(name) => name,
        Identifier::Ip(_) => {
            return Err(unsupported(
                ChallengeType::Dns01,
                "ip identifiers (RFC 8738 §7)",
            ));
        }
    };
    let name = format!("_acme-challenge.{base}");
    let expected = dns01_txt_value(key_authorization);
    let values = match dns.txt(&name).await {
        Ok(v) => v,
        Err(LookupError::NoRecords { .. }) => {
            return Err(Problem::unauthorized(format!(
                "No TXT record found at {name}"
            )));
        }
        Err(e) => return Err(e.problem(RecordType::TXT, &name)),
    };
    if values.iter().any(|v| v.trim() == expected) {
        tracing::debug!(%name, "dns-01 TXT matched");
        return Ok(json!([{ "hostname": base }]));
    }
    let Some(first) = values.first() else {
        return Err(Problem::unauthorized(format!(
            "No TXT record found at {name}"
        )));
    };
    let more = match values.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    Err(Problem::new(
        ProblemType::Unauthorized,
        format!(
            "Incorrect TXT record {}{more} found at {name}; expected {expected:?}",
            quote(first)
        ),
    ))
}

/// `s` escaped and cut to [`QUOTE_LIMIT`] characters, for a problem detail.
pub(crate) fn quote(s: &str) -> String {
    if s.chars().count() > QUOTE_LIMIT {
        let cut: String = s.chars().take(QUOTE_LIMIT).collect();
        format!("{cut:?}...")
    } else {
        format!("{s:?}")
    }
}
