//! The suite's HTTP side: sending requests, reading answers whole, recording what was seen,
//! and the verdict helpers every check uses.

use crate::model::Exchange;
use cobble_core::b64;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Why a check stopped before passing.
#[derive(Debug)]
pub enum Halt {
    /// The server departed from the RFC.
    Fail(String, Option<Box<Exchange>>),
    /// The check cannot run here.
    Skip(String),
    /// The requirement does not apply to this server's answers.
    NotApplicable(String),
}

/// A check's result: `Ok(())` is a pass.
pub type Verdict = Result<(), Halt>;

/// Fails with `reason`, showing `reply`'s exchange.
pub fn fail_with<T>(reply: &Reply, reason: impl Into<String>) -> Result<T, Halt> {
    Err(Halt::Fail(reason.into(), Some(Box::new(reply.exchange()))))
}

/// Fails with `reason` and no exchange.
pub fn fail<T>(reason: impl Into<String>) -> Result<T, Halt> {
    Err(Halt::Fail(reason.into(), None))
}

/// Skips with `reason`.
pub fn skip<T>(reason: impl Into<String>) -> Result<T, Halt> {
    Err(Halt::Skip(reason.into()))
}

/// Fails the check (showing `$reply`) unless `$cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $reply:expr, $($fmt:tt)+) => {
        if !$cond {
            return $crate::client::fail_with($reply, format!($($fmt)+));
        }
    };
}

/// The ACME error namespace (RFC 8555 §6.7).
pub const ACME_ERROR: &str = "urn:ietf:params:acme:error:";

/// A response, read whole, with a description of the request that produced it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body parsed as JSON, or `Null`.
    pub body: Value,
    /// The body as text (lossy).
    pub text: String,
    /// The request, described for a failure report.
    pub sent: String,
    /// The HTTP version used.
    pub version: reqwest::Version,
}

impl Reply {
    /// The exchange for a failure report.
    pub fn exchange(&self) -> Exchange {
        let mut received = format!("{:?} {}\n", self.version, self.status);
        for name in [
            "content-type",
            "location",
            "replay-nonce",
            "link",
            "retry-after",
            "cache-control",
            "allow",
        ] {
            for v in self.headers.get_all(name) {
                received.push_str(&format!("{name}: {}\n", v.to_str().unwrap_or("<binary>")));
            }
        }
        received.push('\n');
        received.push_str(&truncate(&self.text, 1500));
        Exchange {
            sent: self.sent.clone(),
            received,
        }
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Location` header.
    pub fn location(&self) -> Option<String> {
        self.header("location").map(str::to_owned)
    }

    /// The `Replay-Nonce` header.
    pub fn nonce(&self) -> Option<String> {
        self.header("replay-nonce").map(str::to_owned)
    }

    /// The media type, without parameters, lowercased.
    pub fn media_type(&self) -> String {
        self.header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    /// The ACME problem type without the URN prefix (`malformed`), if the body is one.
    pub fn problem_type(&self) -> Option<&str> {
        self.body["type"].as_str()?.strip_prefix(ACME_ERROR)
    }

    /// `Link` targets with relation `rel`.
    pub fn links(&self, rel: &str) -> Vec<String> {
        let mut out = Vec::new();
        for v in self.headers.get_all("link") {
            let Ok(v) = v.to_str() else { continue };
            for part in split_links(v) {
                let Some((target, params)) = part.split_once('>') else {
                    continue;
                };
                let target = target.trim().trim_start_matches('<');
                let has_rel = params.split(';').any(|p| {
                    let p = p.trim();
                    p.strip_prefix("rel=")
                        .is_some_and(|r| r.trim_matches('"').split_whitespace().any(|r| r == rel))
                });
                if has_rel {
                    out.push(target.to_owned());
                }
            }
        }
        out
    }

    /// Passes when the status is one of `ok`.
    pub fn expect_status(&self, ok: &[u16], what: &str) -> Result<(), Halt> {
        if ok.contains(&self.status) {
            Ok(())
        } else {
            fail_with(
                self,
                format!("{what}: expected HTTP status {ok:?}, got {}", self.status),
            )
        }
    }

    /// Passes when this is an ACME problem of one of `types` with one of `statuses`.
    /// (Media type and the `status` member are judged by the `prob.*` checks over every answer.)
    pub fn expect_problem(&self, types: &[&str], statuses: &[u16], what: &str) -> Result<(), Halt> {
        let wanted: Vec<String> = types.iter().map(|t| format!("{ACME_ERROR}{t}")).collect();
        if !statuses.contains(&self.status) {
            return fail_with(
                self,
                format!(
                    "{what}: expected a problem {types:?} with status {statuses:?}, got HTTP {}",
                    self.status
                ),
            );
        }
        match self.body["type"].as_str() {
            Some(t) if wanted.iter().any(|w| w == t) => Ok(()),
            Some(t) => fail_with(
                self,
                format!("{what}: expected problem type {types:?}, got {t:?}"),
            ),
            None => fail_with(
                self,
                format!(
                    "{what}: expected a problem document of type {types:?}, the body has no \"type\""
                ),
            ),
        }
    }
}

/// The skip reason for a `rateLimited` refusal (RFC 8555 §6.6: HTTP 429 with that problem
/// type), naming the request, the limit's detail and its Retry-After; None for any other answer.
/// A check that needs a request the server refused for its rate limits cannot judge the server.
pub fn rate_limited(reply: &Reply) -> Option<String> {
    if reply.status != 429 || reply.problem_type() != Some("rateLimited") {
        return None;
    }
    let request = reply.sent.lines().next().unwrap_or_default();
    let detail = reply.body["detail"].as_str().unwrap_or("no detail");
    let retry = match reply.header("retry-after") {
        Some(v) => format!("Retry-After: {}", v.trim()),
        None => "no Retry-After".to_owned(),
    };
    Some(format!(
        "the server's rate limit refused a request this check needs (429 rateLimited to {request}): \
         {}; {retry}",
        truncate(detail, 300)
    ))
}

/// Splits a `Link` header value at the commas between links (not inside `<...>` or quotes).
fn split_links(v: &str) -> Vec<&str> {
    let (mut out, mut start, mut in_uri, mut in_q) = (Vec::new(), 0, false, false);
    for (i, c) in v.char_indices() {
        match c {
            '<' if !in_q => in_uri = true,
            '>' if !in_q => in_uri = false,
            '"' if !in_uri => in_q = !in_q,
            ',' if !in_uri && !in_q => {
                out.push(v[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(v[start..].trim());
    out
}

/// At most `n` characters of `s`, marked when cut.
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(n).collect();
        format!("{cut}... ({} bytes in all)", s.len())
    }
}

/// Describes a request for a failure report; a JWS body is shown decoded.
pub fn describe_request(method: &str, url: &str, ctype: Option<&str>, body: &[u8]) -> String {
    let mut s = format!("{method} {url}\n");
    if let Some(c) = ctype {
        s.push_str(&format!("content-type: {c}\n"));
    }
    if body.is_empty() {
        return s;
    }
    s.push('\n');
    if body.len() > 4096 {
        s.push_str(&format!("<{} bytes>", body.len()));
        return s;
    }
    let text = String::from_utf8_lossy(body);
    s.push_str(&truncate(&text, 1200));
    if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) {
        for part in ["protected", "payload"] {
            if let Some(decoded) = m
                .get(part)
                .and_then(Value::as_str)
                .and_then(|p| b64::decode(p).ok())
            {
                let d = String::from_utf8_lossy(&decoded);
                let d = if d.is_empty() {
                    "\"\" (POST-as-GET)".into()
                } else {
                    d
                };
                s.push_str(&format!("\n{part} (decoded): {}", truncate(&d, 800)));
            }
        }
    }
    s
}
