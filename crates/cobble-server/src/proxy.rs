//! The optional plain-HTTP ACME listener, for a TLS-terminating proxy in front (Pebble
//! declined it, pebble#396). URLs are built from `X-Forwarded-Proto` and
//! `X-Forwarded-Host` only when the peer is a configured trusted proxy; forwarded headers
//! from anyone else are refused with a problem document, never believed.

use crate::error::problem_response;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use cobble_core::Problem;
use std::net::SocketAddr;

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
