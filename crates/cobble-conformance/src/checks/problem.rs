//! RFC 8555 §6.7 and RFC 7807: every error answer seen during the run, judged together.
//! These run last in the catalogue so that they see every other check's answers.

use crate::client::{ACME_ERROR, Halt, Verdict, fail_with};
use crate::ctx::{Ctx, Seen};

/// ACME error types registered by RFC 8555 §6.7 and §9.7.4, and by later RFCs (RFC 9773
/// `alreadyReplaced`) and the profiles draft (`invalidProfile`).
pub const REGISTERED: &[&str] = &[
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
    "alreadyReplaced",
    "invalidProfile",
];

fn seen(c: &Ctx) -> Result<Vec<Seen>, Halt> {
    let s = c.seen.lock().unwrap().clone();
    if s.is_empty() {
        return Err(Halt::NotApplicable(
            "no error answers were seen (run the other checks too)".into(),
        ));
    }
    Ok(s)
}

/// 4xx answers other than 405/415 (which the RFC defines by status only).
fn problems(c: &Ctx) -> Result<Vec<Seen>, Halt> {
    Ok(seen(c)?
        .into_iter()
        .filter(|s| {
            (400..500).contains(&s.reply.status) && ![404, 405, 415].contains(&s.reply.status)
        })
        .collect())
}

pub async fn media_type(c: &Ctx) -> Verdict {
    for s in problems(c)? {
        if s.reply.media_type() != "application/problem+json" {
            return fail_with(
                &s.reply,
                format!(
                    "(during {}) an error answer of type {:?}, not application/problem+json",
                    s.check,
                    s.reply.media_type()
                ),
            );
        }
    }
    Ok(())
}

pub async fn registered_type(c: &Ctx) -> Verdict {
    for s in problems(c)? {
        let t = s.reply.body["type"].as_str().unwrap_or_default();
        let ok = t
            .strip_prefix(ACME_ERROR)
            .is_some_and(|k| REGISTERED.contains(&k));
        if !ok {
            return fail_with(
                &s.reply,
                format!(
                    "(during {}) problem type {t:?} is not a registered ACME error type",
                    s.check
                ),
            );
        }
    }
    Ok(())
}

pub async fn status_member(c: &Ctx) -> Verdict {
    for s in problems(c)? {
        if let Some(st) = s.reply.body.get("status")
            && st.as_u64() != Some(u64::from(s.reply.status))
        {
            return fail_with(
                &s.reply,
                format!(
                    "(during {}) the problem's status member {st} differs from the HTTP status {}",
                    s.check, s.reply.status
                ),
            );
        }
    }
    Ok(())
}

pub async fn detail(c: &Ctx) -> Verdict {
    for s in problems(c)? {
        if s.reply.body["detail"]
            .as_str()
            .is_none_or(|d| d.trim().is_empty())
        {
            return fail_with(
                &s.reply,
                format!(
                    "(during {}) a problem without a detail a person can act on",
                    s.check
                ),
            );
        }
    }
    Ok(())
}

pub async fn no_5xx(c: &Ctx) -> Verdict {
    for s in c.seen.lock().unwrap().clone() {
        if s.reply.status >= 500 {
            return fail_with(&s.reply, format!("(during {}) a server error", s.check));
        }
    }
    Ok(())
}
