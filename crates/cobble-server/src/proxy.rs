//! The optional plain-HTTP ACME listener, for a TLS-terminating proxy in front (Pebble
//! declined it, pebble#396). URLs are built from `X-Forwarded-Proto` and
//! `X-Forwarded-Host` only when the peer is a configured trusted proxy; forwarded headers
//! from anyone else are refused with a problem document, never believed. Also the client
//! address behind a trusted proxy, which the request-rate limits key on.

use crate::error::problem_response;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use cobble_core::Problem;
use std::net::{IpAddr, SocketAddr};

const PROTO: &str = "x-forwarded-proto";
const HOST: &str = "x-forwarded-host";

/// Checks the forwarded headers of a request on the plain listener; from a trusted proxy,
/// `X-Forwarded-Host` becomes the request's host (so every URL names the proxy's address),
/// and `X-Forwarded-Proto` must say `https` (RFC 8555 §6.1: ACME is served over HTTPS).
pub async fn forwarded(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let trusted = peer.is_some_and(|ip| s.cfg.trusted_proxies.contains(&ip));
    let has_forwarded = req.headers().contains_key(PROTO)
        || req.headers().contains_key(HOST)
        || req.headers().contains_key(header::FORWARDED);
    if !trusted {
        if has_forwarded {
            tracing::warn!(peer = ?peer, "forwarded headers from a peer that is not a trusted proxy");
            return problem_response(&Problem::unauthorized(format!(
                "forwarded headers (X-Forwarded-Proto, X-Forwarded-Host, Forwarded) are accepted only from the \
                     configured trusted proxies, and {} is not one",
                peer.map(|p| p.to_string())
                    .unwrap_or_else(|| "this peer".into())
            )));
        }
        return next.run(req).await;
    }
    let proto = req
        .headers()
        .get(PROTO)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if proto.as_deref() != Some("https") {
        return problem_response(&Problem::malformed(format!(
            "ACME is served over HTTPS (RFC 8555 §6.1): the proxy must terminate TLS and send \
             X-Forwarded-Proto: https, not {}",
            proto.as_deref().unwrap_or("nothing")
        )));
    }
    if let Some(host) = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').next().unwrap_or("").trim().to_owned())
        && !host.is_empty()
    {
        match HeaderValue::from_str(&host) {
            Ok(v) => {
                req.headers_mut().insert(header::HOST, v);
            }
            Err(_) => {
                return problem_response(&Problem::malformed("X-Forwarded-Host is not a host"));
            }
        }
    }
    next.run(req).await
}

/// The client a request is from, for keying per-client limits: the TCP peer, unless the
/// peer is one of `trusted` proxies; then the last hop of `X-Forwarded-For` (else of
/// `Forwarded: for=`, RFC 7239 §5.2) that is not itself a trusted proxy. Hops to the
/// left of that one were written by the client and prove nothing. A missing or
/// unparseable hop (`unknown`, an obfuscated name) gives the peer.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut list = hops(headers, header::HeaderName::from_static(FOR), |h| {
        Some(parse_hop(h))
    });
    if list.is_empty() {
        list = hops(headers, header::FORWARDED, forwarded_for);
    }
    if list.is_empty() {
        return peer;
    }
    // Right to left: skip the trusted proxies; the first other hop is the client.
    let mut last = peer;
    for hop in list.into_iter().rev() {
        match hop {
            Some(ip) if trusted.contains(&ip) => last = ip,
            Some(ip) => return ip,
            None => return peer,
        }
    }
    last
}

const FOR: &str = "x-forwarded-for";

/// The hops of every `name` header, left to right; `parse` gives `None` for an element
/// that is not a hop, `Some(None)` for a hop that names no address (as is a value that is
/// not text).
fn hops(
    headers: &HeaderMap,
    name: header::HeaderName,
    parse: fn(&str) -> Option<Option<IpAddr>>,
) -> Vec<Option<IpAddr>> {
    let mut out = Vec::new();
    for v in headers.get_all(name) {
        match v.to_str() {
            Ok(v) => out.extend(v.split(',').filter_map(parse)),
            Err(_) => out.push(None),
        }
    }
    out
}

/// One hop: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_hop(h: &str) -> Option<IpAddr> {
    let h = h.trim().trim_matches('"');
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = h.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    h.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|v6| v6.parse().ok())
}

/// The `for=` of one element of `Forwarded` (RFC 7239 §4): `None` when the element has no
/// `for=` (so the hop is not counted), `Some(None)` when it names no address.
fn forwarded_for(element: &str) -> Option<Option<IpAddr>> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then(|| parse_hop(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The peer, the forwarded headers (name, value), the expected client.
    type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

    /// One row per case: the peer, the forwarded headers, the address the limits key on.
    #[test]
    fn the_client_is_the_last_untrusted_hop_and_only_behind_a_trusted_proxy() {
        let trusted: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let proxy = "10.0.0.1";
        let rows: &[Row<'_>] = &[
            // From anyone else the headers are never believed.
            (
                "192.0.2.9",
                &[("x-forwarded-for", "198.51.100.7")],
                "192.0.2.9",
            ),
            (
                "192.0.2.9",
                &[("forwarded", "for=198.51.100.7")],
                "192.0.2.9",
            ),
            // Behind the proxy: the hop it saw, past any other trusted proxy, never a
            // hop the client wrote to the left of it.
            (
                proxy,
                &[("x-forwarded-for", "198.51.100.7")],
                "198.51.100.7",
            ),
            (
                proxy,
                &[("x-forwarded-for", "203.0.113.66, 198.51.100.7")],
                "198.51.100.7",
            ),
            (
                proxy,
                &[("x-forwarded-for", "203.0.113.66, 198.51.100.7, 10.0.0.2")],
                "198.51.100.7",
            ),
            (
                proxy,
                &[
                    ("x-forwarded-for", "203.0.113.66"),
                    ("x-forwarded-for", "198.51.100.7"),
                ],
                "198.51.100.7",
            ),
            (
                proxy,
                &[("x-forwarded-for", "198.51.100.7:4711")],
                "198.51.100.7",
            ),
            (
                proxy,
                &[("x-forwarded-for", "[2001:db8::7]:4711")],
                "2001:db8::7",
            ),
            (
                proxy,
                &[("x-forwarded-for", " 2001:db8::7 ")],
                "2001:db8::7",
            ),
            // Every hop trusted: the first of them.
            (proxy, &[("x-forwarded-for", "10.0.0.2")], "10.0.0.2"),
            // Unparseable or absent: the peer.
            (
                proxy,
                &[("x-forwarded-for", "198.51.100.7, unknown")],
                proxy,
            ),
            (proxy, &[("x-forwarded-for", "")], proxy),
            (proxy, &[], proxy),
            // Forwarded (RFC 7239), only when X-Forwarded-For is absent.
            (
                proxy,
                &[("forwarded", "for=192.0.2.60;proto=https;by=10.0.0.1")],
                "192.0.2.60",
            ),
            (
                proxy,
                &[(
                    "forwarded",
                    "for=203.0.113.66, For=\"[2001:db8:cafe::17]:4711\"",
                )],
                "2001:db8:cafe::17",
            ),
            (
                proxy,
                &[("forwarded", "for=198.51.100.7, for=10.0.0.2;proto=https")],
                "198.51.100.7",
            ),
            (proxy, &[("forwarded", "for=_hidden")], proxy),
            (
                proxy,
                &[("forwarded", "host=acme.example;proto=https")],
                proxy,
            ),
            (
                proxy,
                &[
                    ("forwarded", "for=192.0.2.60"),
                    ("x-forwarded-for", "198.51.100.7"),
                ],
                "198.51.100.7",
            ),
        ];
        for (peer, headers, want) in rows {
            let mut h = HeaderMap::new();
            for (k, v) in *headers {
                h.append(
                    header::HeaderName::from_static(k),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            let got = client_addr(peer.parse().unwrap(), &h, &trusted);
            assert_eq!(got, want.parse::<IpAddr>().unwrap(), "{peer} {headers:?}");
        }
    }
}
