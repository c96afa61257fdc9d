//! http-01 (RFC 8555 §8.3): GET `http://<name>:<port>/.well-known/acme-challenge/<token>`
//! and compare the body with the key authorization. Addresses come from our
//! resolver (AAAA first, then A, as Boulder); redirects are followed by hand under
//! Boulder's rules (at most 10, http/https only, ports 80, the http-01 port and the https
//! port (`VaConfig::https01_port`, Boulder's `httpsPort`), no loops). An https target's
//! certificate is not checked, as in Boulder.
//!
//! Every hop's addresses pass the validation address policy (`VaConfig::addresses`)
//! before any connection, and the connection goes to the checked address itself (the
//! client is pinned to it), so a DNS rebind between check and connect cannot slip through.
//! A body is echoed into a problem only from an allowed address, at most
//! [`ECHO_LIMIT`](crate::addrs::ECHO_LIMIT) printable bytes.

use crate::addrs::{self, echo};
use crate::dns01::quote;
use crate::{Inner, USER_AGENT, insecure_tls, unsupported};
use cobble_core::challenge::ChallengeType;
use cobble_core::identifier::Identifier;
use cobble_core::{Problem, ProblemType};
use reqwest::header::{ACCEPT, HOST, LOCATION};
use reqwest::{Response, StatusCode, Url, redirect};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

/// Redirects followed before giving up (Boulder's `maxRedirect`).
pub const MAX_REDIRECTS: usize = 10;
/// Bytes of body read; a key authorization is 87 bytes, Boulder reads 128, we allow some
/// whitespace. At most [`addrs::ECHO_LIMIT`] of them are ever echoed into a problem.
pub const MAX_BODY: usize = 256;

/// Fetches the token, following redirects, and compares the trimmed body.
pub(crate) async fn validate(
    va: &Inner,
    identifier: &Identifier,
    token: &str,
    key_authorization: &str,
) -> Result<Value, Problem> {
    if identifier.is_wildcard() {
        return Err(unsupported(
            ChallengeType::Http01,
            "wildcard names (RFC 8555 §7.1.3: use dns-01)",
        ));
    }
    let host = match identifier {
        Identifier::Dns(name) => name.clone(),
        Identifier::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        Identifier::Ip(ip) => ip.to_string(),
    };
    let first = format!(
        "http://{host}:{}/.well-known/acme-challenge/{token}",
        va.cfg.http01_port
    );
    let mut url = Url::parse(&first)
        .map_err(|e| Problem::malformed(format!("cannot build the URL {first:?}: {e}")))?;
    let mut seen = HashSet::from([url.to_string()]);
    let mut records = Vec::new();
    for hop in 0..=MAX_REDIRECTS {
        let (resp, record) = fetch(va, &url).await?;
        let used = record["addressUsed"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        records.push(record);
        let location = resp
            .status()
            .is_redirection()
            .then(|| resp.headers().get(LOCATION))
            .flatten();
        if let Some(location) = location {
            {
                if hop == MAX_REDIRECTS {
                    return Err(connection(format!("Fetching {url}: Too many redirects")));
                }
                let next = redirect_target(&url, location.to_str().unwrap_or(""), va)?;
                if !seen.insert(next.to_string()) {
                    return Err(connection(format!(
                        "Fetching {next}: Redirect loop detected"
                    )));
                }
                tracing::debug!(from = %url, to = %next, "following http-01 redirect");
                url = next;
                continue;
            }
        }
        return check_response(resp, &url, &used, key_authorization)
            .await
            .map(|()| Value::Array(records));
    }
    unreachable!("the loop returns on its last hop")
}

/// Status, size and content checks of the final response.
async fn check_response(
    mut resp: Response,
    url: &Url,
    used: &str,
    key_authorization: &str,
) -> Result<(), Problem> {
    if resp.status() != StatusCode::OK {
        return Err(Problem::unauthorized(format!(
            "Invalid response from {url} [{used}]: {}",
            resp.status().as_u16()
        )));
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BODY {
                    return Err(Problem::unauthorized(format!(
                        "Invalid response from {url} [{used}]: body longer than {MAX_BODY} bytes, starting {}",
                        echo(&body[..MAX_BODY])
                    )));
                }
            }
            Ok(None) => break,
            Err(e) => return Err(transport_problem(&e, url, used)),
        }
    }
    if body.trim_ascii() == key_authorization.as_bytes() {
        return Ok(());
    }
    Err(Problem::new(
        ProblemType::IncorrectResponse,
        format!(
            "The key authorization file from the server did not match this challenge. Expected {:?} (got {}) from {url} [{used}]",
            key_authorization,
            echo(&body)
        ),
    ))
}

/// One GET of `url` (no redirects followed): AAAA first, falling back to A on a
/// connection failure (Boulder). Returns the response and its validation record.
async fn fetch(va: &Inner, url: &Url) -> Result<(Response, Value), Problem> {
    let port = url.port_or_known_default().unwrap_or(80);
    let (hostname, resolved): (String, Vec<IpAddr>) = match host_of(url) {
        Some(Host::Name(name)) => (name.to_owned(), va.dns.addresses(name).await?),
        Some(Host::Ip(ip)) => (ip.to_string(), vec![ip]),
        None => return Err(connection(format!("Fetching {url}: no host"))),
    };
    // The policy is applied here, to each address this hop may connect to; `get` then
    // connects to exactly that address.
    let candidates = addrs::candidates(&va.cfg.addresses, &resolved, &format!("Fetching {url}"))?;
    let mut record = json!({
        "url": url.as_str(),
        "hostname": hostname,
        "port": port.to_string(),
        "addressesResolved": resolved.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    });
    let mut tried = Vec::new();
    for (i, ip) in candidates.iter().enumerate() {
        let addr = SocketAddr::new(*ip, port);
        record["addressUsed"] = json!(ip.to_string());
        match get(va, url, &hostname, addr).await {
            Ok(resp) => {
                if !tried.is_empty() {
                    record["addressesTried"] = json!(tried);
                }
                return Ok((resp, record));
            }
            Err(e) if e.is_connect() && i + 1 < candidates.len() => {
                tracing::debug!(%addr, error = %e, "http-01: falling back to the next address");
                tried.push(ip.to_string());
            }
            Err(e) => return Err(transport_problem(&e, url, &ip.to_string())),
        }
    }
    Err(Problem::new(
        ProblemType::Dns,
        format!("No valid IP addresses found for {hostname}"),
    ))
}

/// A one-off client pinned to `addr`, an address the policy allowed (Boulder builds one
/// per validation too): for a name, reqwest's DNS is overridden with `addr`; for an IP
/// literal, `addr` is that literal. No proxy, no redirects followed by reqwest.
async fn get(
    va: &Inner,
    url: &Url,
    hostname: &str,
    addr: SocketAddr,
) -> Result<Response, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .user_agent(USER_AGENT)
        .connect_timeout(va.cfg.timeout)
        .timeout(va.cfg.timeout)
        .pool_max_idle_per_host(0)
        .http1_only()
        .tls_backend_preconfigured(insecure_tls::client_config(&[b"http/1.1"]));
    let is_name = matches!(host_of(url), Some(Host::Name(_)));
    if is_name {
        builder = builder.resolve(hostname, addr);
    }
    let client = builder.build()?;
    // Boulder sends the bare host name (no port) as Host.
    let host_header = match addr.ip() {
        IpAddr::V6(_) if !is_name => format!("[{hostname}]"),
        _ => hostname.to_owned(),
    };
    client
        .get(url.clone())
        .header(ACCEPT, "*/*")
        .header(HOST, host_header)
        .send()
        .await
}

/// Where a redirect from `from` to `location` goes, under Boulder's rules.
fn redirect_target(from: &Url, location: &str, va: &Inner) -> Result<Url, Problem> {
    let mut next = from.join(location).map_err(|e| {
        connection(format!(
            "Fetching {from}: invalid redirect target {}: {e}",
            quote(location)
        ))
    })?;
    let scheme = next.scheme().to_owned();
    if scheme != "http" && scheme != "https" {
        return Err(connection(format!(
            "Fetching {from}: Invalid protocol scheme in redirect target. Only \"http\" and \"https\" protocol schemes are supported, not {scheme:?}"
        )));
    }
    let allowed = [80, va.cfg.https01_port, va.cfg.http01_port];
    // `Url` drops a scheme's default port, but `https://h:443/` names 443, not "no port".
    match next.port().or_else(|| written_port(location)) {
        Some(port) if !va.cfg.redirect_any_port && !allowed.contains(&port) => {
            let mut ports: Vec<String> = Vec::new();
            for p in allowed {
                if !ports.contains(&p.to_string()) {
                    ports.push(p.to_string());
                }
            }
            return Err(connection(format!(
                "Fetching {from}: Invalid port in redirect target. Only ports {} are supported, not {port}",
                ports.join(", ")
            )));
        }
        Some(port) => {
            let _ = next.set_port(Some(port));
        }
        // Boulder: a redirect without a port goes to the http-01 port or the https port.
        None => {
            let port = if scheme == "http" {
                va.cfg.http01_port
            } else {
                va.cfg.https01_port
            };
            let _ = next.set_port(Some(port));
        }
    }
    if host_of(&next).is_none() {
        return Err(connection(format!(
            "Fetching {from}: redirect target {} has no host",
            quote(location)
        )));
    }
    Ok(next)
}

/// The port written in an absolute or scheme-relative `location`, if any, read from the
/// authority as written (so the scheme's default port counts too).
fn written_port(location: &str) -> Option<u16> {
    let after_scheme = match location.find("//") {
        Some(i)
            if location[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.:".contains(c)) =>
        {
            &location[i + 2..]
        }
        _ => return None,
    };
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let port = match host_port.rfind(']') {
        Some(end) => host_port[end + 1..].strip_prefix(':')?,
        None => host_port.rsplit_once(':')?.1,
    };
    port.parse().ok()
}

/// A URL's host: a name to resolve or an address to use as is.
enum Host<'a> {
    Name(&'a str),
    Ip(IpAddr),
}

fn host_of(url: &Url) -> Option<Host<'_>> {
    let h = url.host_str().filter(|h| !h.is_empty())?;
    let bare = h.trim_start_matches('[').trim_end_matches(']');
    Some(match bare.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Name(h),
    })
}

/// A `connection` problem.
fn connection(detail: String) -> Problem {
    Problem::new(ProblemType::Connection, detail)
}

/// Sorts a transport error into Boulder's wordings, naming the address used.
fn transport_problem(e: &reqwest::Error, url: &Url, addr: &str) -> Problem {
    let what = if e.is_timeout() && e.is_connect() {
        "Timeout during connect (likely firewall problem)".to_owned()
    } else if e.is_timeout() {
        "Timeout after connect (your server may be slow or overloaded)".to_owned()
    } else if io_kind(e) == Some(std::io::ErrorKind::ConnectionRefused) {
        "Connection refused".to_owned()
    } else if io_kind(e) == Some(std::io::ErrorKind::ConnectionReset) {
        "Connection reset by peer".to_owned()
    } else if e.is_connect() {
        format!("Connection failed: {}", chain(e))
    } else {
        format!("Error getting validation data: {}", chain(e))
    };
    connection(format!("{addr}: Fetching {url}: {what}"))
}

fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(err) = cur {
        parts.push(err.to_string());
        cur = err.source();
    }
    parts.dedup();
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::written_port;

    #[test]
    fn written_port_reads_the_authority_as_written() {
        let rows: &[(&str, Option<u16>)] = &[
            ("https://h.test:443/x", Some(443)),
            ("http://h.test:80", Some(80)),
            ("https://h.test:8443/x?y=1", Some(8443)),
            ("//h.test:443/x", Some(443)),
            ("https://u:p@h.test:443/x", Some(443)),
            ("https://[::1]:443/x", Some(443)),
            ("https://[::1]/x", None),
            ("https://h.test/x:443", None),
            ("https://h.test/x?u=//a:1", None),
            ("/x//y:443", None),
            ("relative:443", None),
        ];
        for (location, want) in rows {
            assert_eq!(written_port(location), *want, "{location}");
        }
    }
}
