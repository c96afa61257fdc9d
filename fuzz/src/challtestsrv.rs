//! challtestsrv targets. Its DNS handler and management API are only reachable through
//! listeners (the handler and the JSON reader are crate-private), so these fuzz the pure
//! steps underneath: decoding the DNS query (hickory-proto, as hickory-server does), the
//! question names as the handler files them, and the public state the management API drives.

use cobble_challtestsrv::history::{DnsQuestion, DnsRequestEvent};
use cobble_challtestsrv::state::normalize_name;
use cobble_challtestsrv::{CaaPolicy, ChallState, EventKind, RequestEvent};
use hickory_proto::op::Message;
use hickory_proto::rr::Name;
use std::net::Ipv4Addr;

/// Target `challtestsrv_dns`: a DNS message as the mock DNS server receives it. Each
/// question is recorded in the request history the way the handler records it and must be
/// found there under its name; the name's text form parses back to the same name (CNAME
/// targets and history keys are kept as text); records set for the name through the
/// management API's state calls do not panic; the message re-encodes and decodes.
pub fn challtestsrv_dns(data: &[u8]) {
    let Ok(msg) = Message::from_vec(data) else {
        return;
    };
    let state = ChallState::new(Some(Ipv4Addr::LOCALHOST), None);
    for q in msg.queries.iter().take(8) {
        let name = q.name().to_ascii();
        let event = RequestEvent::Dns(DnsRequestEvent {
            question: DnsQuestion {
                name: name.clone(),
                qtype: u16::from(q.query_type()),
                qclass: u16::from(q.query_class()),
            },
            user_agent: String::new(),
        });
        state.record(event.clone());
        let history = state.request_history(&name, EventKind::Dns);
        assert_eq!(
            history.last(),
            Some(&event),
            "question not in history: {name:?}"
        );
        if let Ok(back) = Name::from_ascii(&name) {
            assert_eq!(&back, q.name(), "name text does not parse back: {name:?}");
        }
        let key = normalize_name(&name);
        assert!(key.ends_with('.') && !key.ends_with(".."));
        state.set_txt(&name, &name);
        state.set_cname(&name, &key);
        state.add_a(&name, &[Ipv4Addr::new(192, 0, 2, 1)]);
        state.add_caa(&name, &[CaaPolicy::new("issue", name.clone())]);
        let _ = state.add_tlsalpn01(&name, "keyauth");
        state.clear_txt(&name);
        state.clear_request_history(&name, EventKind::Dns);
        assert!(state.request_history(&name, EventKind::Dns).is_empty());
    }
    if let Ok(bytes) = msg.to_vec() {
        let _ = Message::from_vec(&bytes);
    }
}

/// The management API's field reading (crate-private in challtestsrv, mirrored here): keys
/// match case-insensitively, the last match wins, `null` is absent, strings only.
fn field(body: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<String> {
    body.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .next_back()
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// Target `challtestsrv_mgmt`: byte 0 picks an endpoint, the rest is its JSON body. The
/// body's strings drive the [`ChallState`] calls that endpoint makes (the JSON reader and
/// routes are crate-private; the state, the certificate maker and the history are the
/// public steps underneath). What http-01 and redirect endpoints set reads back exactly
/// and is gone after its `del-` form; tls-alpn-01 certificates for any host either build
/// or are refused.
pub fn challtestsrv_mgmt(data: &[u8]) {
    let Some((&endpoint, body)) = data.split_first() else {
        return;
    };
    let Ok(serde_json::Value::Object(body)) = serde_json::from_slice(body) else {
        return;
    };
    let f = |n: &str| field(&body, n).unwrap_or_default();
    let state = ChallState::new(None, None);
    let (host, value, token, content) = (f("host"), f("value"), f("token"), f("content"));
    match endpoint % 8 {
        0 => {
            state.add_http01(&token, &content);
            assert_eq!(state.http01(&token), Some(content));
            state.del_http01(&token);
            assert_eq!(state.http01(&token), None);
        }
        1 => {
            let (path, target) = (f("path"), f("targetURL"));
            state.add_redirect(&path, &target);
            assert_eq!(state.redirect(&path), Some(target));
            state.del_redirect(&path);
            assert_eq!(state.redirect(&path), None);
        }
        2 => {
            let _ = state.add_tlsalpn01(&host, &content);
            state.del_tlsalpn01(&host);
        }
        3 => {
            let target = f("target");
            if Name::from_ascii(&target).is_ok() {
                state.set_cname(&host, &target);
            }
            state.clear_cname(&host);
        }
        4 => {
            let policies: Vec<CaaPolicy> = body
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("policies"))
                .filter_map(|(_, v)| v.as_array())
                .flatten()
                .filter_map(|p| p.as_object())
                .map(|p| CaaPolicy {
                    flag: p.get("flag").and_then(|v| v.as_u64()).unwrap_or(0) as u8,
                    tag: field(p, "tag").unwrap_or_default(),
                    value: field(p, "value").unwrap_or_default(),
                })
                .collect();
            state.add_caa(&host, &policies);
            state.clear_caa(&host);
        }
        5 => {
            state.set_txt(&host, &value);
            state.set_servfail(&host);
            state.clear_txt(&host);
            state.clear_servfail(&host);
        }
        6 => {
            let ips: Vec<Ipv4Addr> = value
                .split(',')
                .filter_map(|a| a.trim().parse().ok())
                .collect();
            state.add_a(&host, &ips);
            state.clear_a(&host);
        }
        _ => {
            let kind = EventKind::from_api(&f("type")).unwrap_or(EventKind::Http);
            let _ = state.request_history(&host, kind);
            state.clear_request_history(&host, kind);
        }
    }
}
