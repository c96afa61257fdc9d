//! The JSON objects of RFC 8555 §7.1.3-§7.1.5 built from stored rows.

use crate::state::Urls;
use cobble_core::clock::rfc3339;
use cobble_core::status::ChallengeStatus;
use cobble_store::{Authz, Challenge, Order};
use serde_json::{Value, json};

/// The order object (§7.1.3).
pub fn order(base: &str, o: &Order, now_ms: i64) -> Value {
    let u = Urls(base);
    let mut v = json!({
        "status": o.status_at(now_ms).as_str(),
        "expires": rfc3339(o.expires_ms),
        "identifiers": o.identifiers.iter().map(|i| i.to_json()).collect::<Vec<_>>(),
        "authorizations": o.authzs.iter().map(|(id, _, _)| u.authz(id)).collect::<Vec<_>>(),
        "finalize": u.finalize(&o.id),
    });
    if let Some(nb) = o.not_before_ms {
        v["notBefore"] = rfc3339(nb).into();
    }
    if let Some(na) = o.not_after_ms {
        v["notAfter"] = rfc3339(na).into();
    }
    if let Some(p) = &o.profile {
        v["profile"] = p.clone().into();
    }
    if let Some(e) = o
        .error
        .as_deref()
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
    {
        v["error"] = e;
    }
    if let Some(r) = &o.replaces {
        v["replaces"] = r.clone().into();
    }
    if let Some(c) = &o.certificate_id {
        v["certificate"] = u.certificate(c, 0).into();
    }
    v
}

/// The challenge object (§7.1.5, §8).
pub fn challenge(base: &str, c: &Challenge) -> Value {
    let mut v = json!({
        "type": c.kind.as_str(),
        "url": Urls(base).challenge(&c.id),
        "status": c.status.as_str(),
        "token": c.token,
    });
    if let Some(t) = c.validated_ms {
        v["validated"] = rfc3339(t).into();
    }
    if let Some(e) = c
        .error
        .as_deref()
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
    {
        v["error"] = e;
    }
    if let Some(r) = c
        .validation_record
        .as_deref()
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
    {
        v["validationRecord"] = r;
    }
    v
}

/// The authorization object (§7.1.4); `wildcard` only when true.
pub fn authz(base: &str, a: &Authz, now_ms: i64) -> Value {
    let status = a.status.at(a.expires_ms, now_ms);
    let mut v = json!({
        "identifier": a.identifier.to_json(),
        "status": status.as_str(),
        "expires": rfc3339(a.expires_ms),
        "challenges": a.challenges.iter().map(|c| challenge(base, c)).collect::<Vec<_>>(),
    });
    if a.wildcard {
        v["wildcard"] = true.into();
    }
    v
}

/// Whether any challenge of the authorization is being validated (clients should poll).
pub fn in_flight(a: &Authz) -> bool {
    a.challenges
        .iter()
        .any(|c| c.status == ChallengeStatus::Processing)
}
