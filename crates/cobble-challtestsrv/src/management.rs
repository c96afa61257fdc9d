//! The management HTTP API, pebble-challtestsrv's endpoint for endpoint: each takes a JSON
//! body (any method, as pebble-challtestsrv), answers 200 with an empty body on success and
//! 400 with a plain-text reason on a bad body. History endpoints answer a JSON array.

use crate::history::EventKind;
use crate::json::{BadRequest, Body};
use crate::state::{CaaPolicy, ChallState};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use std::net::{Ipv4Addr, Ipv6Addr};

/// What a mutating endpoint does with a parsed body.
type Action = fn(&ChallState, &Body) -> Result<(), BadRequest>;

/// The management router over `state`.
pub(crate) fn router(state: ChallState) -> Router {
    let actions: [(&str, Action); 21] = [
        ("/set-default-ipv4", set_default_ipv4),
        ("/set-default-ipv6", set_default_ipv6),
        ("/add-a", add_a),
        ("/clear-a", |s, b| host_op(s, b, "A", ChallState::clear_a)),
        ("/add-aaaa", add_aaaa),
        ("/clear-aaaa", |s, b| {
            host_op(s, b, "AAAA", ChallState::clear_aaaa)
        }),
        ("/add-caa", add_caa),
        ("/clear-caa", |s, b| {
            host_op(s, b, "CAA", ChallState::clear_caa)
        }),
        ("/set-txt", set_txt),
        ("/clear-txt", |s, b| {
            host_op(s, b, "TXT", ChallState::clear_txt)
        }),
        ("/set-cname", set_cname),
        ("/clear-cname", |s, b| {
            host_op(s, b, "CNAME", ChallState::clear_cname)
        }),
        ("/set-servfail", |s, b| {
            host_op(s, b, "SERVFAIL set", ChallState::set_servfail)
        }),
        ("/clear-servfail", |s, b| {
            host_op(s, b, "SERVFAIL", ChallState::clear_servfail)
        }),
        ("/add-http01", add_http01),
        ("/del-http01", del_http01),
        ("/add-redirect", add_redirect),
        ("/del-redirect", del_redirect),
        ("/add-tlsalpn01", add_tlsalpn01),
        ("/del-tlsalpn01", |s, b| {
            host_op(s, b, "TLS-ALPN-01", ChallState::del_tlsalpn01)
        }),
        ("/clear-request-history", clear_history),
    ];
    let mut router = Router::new();
    for (path, action) in actions {
        router = router.route(
            path,
            any(move |State(s): State<ChallState>, body: Bytes| async move {
                mutate(&s, &body, action)
            }),
        );
    }
    router
        .route("/http-request-history", any(history_of(EventKind::Http)))
        .route("/dns-request-history", any(history_of(EventKind::Dns)))
        .route(
            "/tlsalpn01-request-history",
            any(history_of(EventKind::TlsAlpn)),
        )
        .with_state(state)
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        tracing::info!(reason = %self.0, "management: bad request");
        let headers = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
        (StatusCode::BAD_REQUEST, headers, format!("{}\n", self.0)).into_response()
    }
}

fn mutate(state: &ChallState, body: &[u8], action: Action) -> Result<StatusCode, BadRequest> {
    action(state, &Body::parse(body)?)?;
    Ok(StatusCode::OK)
}

/// The handler of one `*-request-history` endpoint.
fn history_of(
    kind: EventKind,
) -> impl Fn(State<ChallState>, Bytes) -> std::future::Ready<Result<Response, BadRequest>> + Clone {
    move |State(state): State<ChallState>, body: Bytes| {
        std::future::ready((|| {
            let host = Body::parse(&body)?.required("host")?;
            let events = state.request_history(&host, kind);
            let json = serde_json::to_vec_pretty(&events)
                .map_err(|e| BadRequest(format!("history: {e}")))?;
            let headers = [(header::CONTENT_TYPE, "application/json; charset=utf-8")];
            Ok((StatusCode::OK, headers, json).into_response())
        })())
    }
}

fn host_op(
    s: &ChallState,
    b: &Body,
    what: &str,
    op: fn(&ChallState, &str),
) -> Result<(), BadRequest> {
    let host = b.required("host")?;
    op(s, &host);
    tracing::info!(%host, "removed {what} response");
    Ok(())
}

fn set_default_ipv4(s: &ChallState, b: &Body) -> Result<(), BadRequest> {
    let ip = b.string("ip")?;
    let parsed = if ip.is_empty() {
        None
    } else {
        Some(parse_ip::<Ipv4Addr>(&ip, "ip", "IPv4")?)
    };
    s.set_default_ipv4(parsed);
    tracing::info!(ip = %ip, "set default IPv4 address for A queries");
    Ok(())
}

fn set_default_ipv6(s: &ChallState, b: &Body) -> Result<(), BadRequest> {
    let ip = b.string("ip")?;
    let parsed = if ip.is_empty() {
        None
    } else {
        Some(parse_ip::<Ipv6Addr>(&ip, "ip", "IPv6")?)
    };
    s.set_default_ipv6(parsed);
    tracing::info!(ip = %ip, "set default IPv6 address for AAAA queries");
    Ok(())
}

fn parse_ip<T: std::str::FromStr>(s: &str, field: &str, family: &str) -> Result<T, BadRequest> {
    s.trim().parse().map_err(|_| {
        BadRequest(format!(
            "the {field:?} field: {s:?} is not an {family} address"
        ))
    })
}

fn add_a(s: &ChallState, b: &Body) -> Result<(), BadRequest> {
    let host = b.required("host")?;
    let addrs = b.required_strings("addresses")?;
    let ips = addrs
        .iter()
        .map(|a| parse_ip::<Ipv4Addr>(a, "addresses", "IPv4"))
        .collect::<Result<Vec<_>, _>>()?;
    s.add_a(&host, &ips);
    tracing::info!(%host, ?ips, "added A response");
    Ok(())
}

fn add_aaaa(s: &ChallState, b: &Body) -> Result<(), BadRequest> {
    let host = b.required("host")?;
    let addrs = b.required_strings("addresses")?;
    let ips = addrs
        .iter()
        .map(|a| parse_ip::<Ipv6Addr>(a, "addresses", "IPv6"))
        .collect::<Result<Vec<_>, _>>()?;
    s.add_aaaa(&host, &ips);
    tracing::info!(%host, ?ips, "added AAAA response");
    Ok(())
}

fn add_caa(s: &ChallState, b: &Body) -> Result<(), BadRequest> {
    let host = b.required("host")?;
    let policies = b
        .required_objects("policies")?
        .iter()
        .map(|p| {
            let tag = p
                .required("tag")
                .map_err(|e| BadRequest(format!("policies: {e}")))?;
            if !tag.bytes().all(|c| c.is_ascii_alphanumeric()) || tag.len() > 255 {
                return Err(BadRequest(format!(
                    "policies: the tag {tag:?} must be ASCII letters and digits (RFC 8659 §4.1)"
                )));
            }
            Ok(CaaPolicy {
                flag: p.u8("flag")?,
                tag,
                value: p.string("value")?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    s.add_caa(&host, &policies);
    tracing::info!(%host, ?policies, "added CAA response");
    Ok(())
}

fn set_txt(s: &ChallState, b: &Body) -> Result<(), BadRequest> {
    let host = b.required("host")?;
    let value = b.required("value")?;
    s.set_txt(&host, &value);
    tracing::info!(%host, %value, "added TXT response");
    Ok(())
}

fn set_cname(s: &ChallState, b: &Body) -> Result<(), BadRequest> {
    let host = b.required("host")?;
    let target = b.required("target")?;
    hickory_server::proto::rr::Name::from_ascii(&target).map_err(|e| {
        BadRequest(format!(
            "the \"target\" field {target:?} is not a DNS name: {e}"
        ))
    })?;
    s.set_cname(&host, &target);
    tracing::info!(%host, %target, "added CNAME response");
    Ok(())
}

fn add_http01(s: &ChallState, b: &Body) -> Result<(), BadRequest> {
    let token = b.required("token")?;
    let content = b.required("content")?;
    s.add_http01(&token, &content);
    tracing::info!(%token, %content, "added HTTP-01 challenge");
    Ok(())
}

fn del_http01(s: &ChallState, b: &Body) -> Result<(), BadRequest> {
    let token = b.required("token")?;
    s.del_http01(&token);
    tracing::info!(%token, "removed HTTP-01 challenge");
    Ok(())
}

fn add_redirect(s: &ChallState, b: &Body) -> Result<(), BadRequest> {
    let path = b.required("path")?;
    let target = b.required("targetURL")?;
    if axum::http::HeaderValue::from_str(&target).is_err() {
        return Err(BadRequest(format!(
            "the \"targetURL\" field {target:?} cannot be a Location header"
        )));
    }
    s.add_redirect(&path, &target);
    tracing::info!(%path, %target, "added HTTP redirect");
    Ok(())
}

fn del_redirect(s: &ChallState, b: &Body) -> Result<(), BadRequest> {
    let path = b.required("path")?;
    s.del_redirect(&path);
    tracing::info!(%path, "removed HTTP redirect");
    Ok(())
}

fn add_tlsalpn01(s: &ChallState, b: &Body) -> Result<(), BadRequest> {
    let host = b.required("host")?;
    let content = b.required("content")?;
    s.add_tlsalpn01(&host, &content)
        .map_err(|e| BadRequest(format!("cannot make a certificate for {host:?}: {e}")))?;
    tracing::info!(%host, %content, "added TLS-ALPN-01 challenge");
    Ok(())
}

fn clear_history(s: &ChallState, b: &Body) -> Result<(), BadRequest> {
    let host = b.string("host")?;
    if host.is_empty() {
        return Err(BadRequest("host parameter must not be empty".to_owned()));
    }
    let typ = b.string("type")?;
    let kind = EventKind::from_api(&typ).ok_or_else(|| {
        BadRequest(format!(
            "{typ:?} event type unknown (want \"http\", \"dns\" or \"tlsalpn\")"
        ))
    })?;
    s.clear_request_history(&host, kind);
    tracing::info!(%host, %typ, "cleared request history");
    Ok(())
}
