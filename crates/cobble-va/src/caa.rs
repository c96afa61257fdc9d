//! CAA lookup (RFC 8659 §3): climb from the name towards the root and stop at the
//! first non-empty CAA RRset (the resolver follows CNAMEs at each step), then
//! evaluate it with [`crate::caa_eval::evaluate_caa`].

use crate::Inner;
use crate::caa_eval::{CaaDecision, CaaQuery, CaaRecord, evaluate_caa};
use crate::dns::LookupError;
use cobble_core::challenge::ChallengeType;
use cobble_core::{Problem, ResultCode};
use hickory_resolver::proto::rr::{RData, RecordType};

/// Runs the CAA check for `name` (a wildcard's base name, `wildcard` saying which it was).
pub(crate) async fn check(
    va: &Inner,
    name: &str,
    wildcard: bool,
    account_uri: &str,
    method: ChallengeType,
) -> Result<(), Problem> {
    let Some((found_at, records)) = relevant_rrset(va, name).await? else {
        tracing::debug!(%name, "no CAA records: issuance allowed");
        return Ok(());
    };
    let q = CaaQuery {
        identities: &va.cfg.caa_identities,
        wildcard,
        account_uri,
        method: method.as_str(),
    };
    match evaluate_caa(&records, &q) {
        CaaDecision::Permit { by } => {
            tracing::debug!(%name, %found_at, by = ?by, "CAA permits issuance");
            Ok(())
        }
        CaaDecision::Forbid { reason, records } => {
            let shown: Vec<String> = records.iter().map(|r| r.to_string()).collect();
            let subject = if wildcard {
                format!("*.{name}")
            } else {
                name.to_owned()
            };
            Err(Problem::coded(
                ResultCode::InvalidDnsCaa,
                format!(
                    "CAA record for {found_at} prevents issuance for {subject}: {reason}; found at {found_at}: {}",
                    shown.join(", ")
                ),
            ))
        }
    }
}

/// The relevant RRset (RFC 8659 §3) and the name it was found at, or `None` when
/// no name up to (not including) the root has CAA records.
async fn relevant_rrset(
    va: &Inner,
    name: &str,
) -> Result<Option<(String, Vec<CaaRecord>)>, Problem> {
    let name = name.trim_end_matches('.');
    let mut candidate = name;
    loop {
        match va.dns.lookup(candidate, RecordType::CAA).await {
            Ok(records) => {
                let parsed: Vec<CaaRecord> = records
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::CAA(c) => Some(CaaRecord {
                            critical: c.issuer_critical,
                            tag: c.tag.clone(),
                            value: String::from_utf8_lossy(&c.value).into_owned(),
                        }),
                        _ => None,
                    })
                    .collect();
                if !parsed.is_empty() {
                    return Ok(Some((candidate.to_owned(), parsed)));
                }
            }
            Err(LookupError::NoRecords { .. }) => {}
            Err(e) => {
                // Boulder treats SERVFAIL and timeouts as failure, never as "no CAA".
                let mut p = e.problem(RecordType::CAA, candidate);
                p.detail = format!("While processing CAA for {name}: {}", p.detail);
                return Err(p);
            }
        }
        match candidate.split_once('.') {
            Some((_, parent)) if !parent.is_empty() => candidate = parent,
            _ => return Ok(None),
        }
    }
}
