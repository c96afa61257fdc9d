//! Request history: what each responder saw, kept per host and kind, serialized with
//! pebble-challtestsrv's JSON field names so scripts reading its history work unchanged.

use serde::Serialize;

/// Most events kept per host and kind; the oldest go first past this.
pub const MAX_EVENTS_PER_HOST: usize = 10_000;

/// Which responder an event came from (pebble-challtestsrv's `type`: `http`, `dns`, `tlsalpn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An http-01 request.
    Http,
    /// A DNS question.
    Dns,
    /// A TLS ClientHello on the tls-alpn-01 listener.
    TlsAlpn,
}

impl EventKind {
    /// Parses the management API's `type` value (`http`, `dns`, `tlsalpn`).
    pub fn from_api(s: &str) -> Option<Self> {
        match s {
            "http" => Some(Self::Http),
            "dns" => Some(Self::Dns),
            "tlsalpn" => Some(Self::TlsAlpn),
            _ => None,
        }
    }
}

/// One http-01 request as pebble-challtestsrv reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpRequestEvent {
    /// Path and query of the request.
    #[serde(rename = "URL")]
    pub url: String,
    /// The Host header.
    #[serde(rename = "Host")]
    pub host: String,
    /// Whether the request came over HTTPS.
    #[serde(rename = "HTTPS")]
    pub https: bool,
    /// The SNI name for HTTPS requests, else empty.
    #[serde(rename = "ServerName")]
    pub server_name: String,
    /// The User-Agent header.
    #[serde(rename = "UserAgent")]
    pub user_agent: String,
}

/// A DNS question as pebble-challtestsrv reports it (miekg/dns field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsQuestion {
    /// The queried name as sent, fully qualified.
    #[serde(rename = "Name")]
    pub name: String,
    /// The query type number (e.g. 16 for TXT, 257 for CAA).
    #[serde(rename = "Qtype")]
    pub qtype: u16,
    /// The query class number (1 for IN).
    #[serde(rename = "Qclass")]
    pub qclass: u16,
}

/// One DNS question received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRequestEvent {
    /// The question.
    #[serde(rename = "Question")]
    pub question: DnsQuestion,
    /// The User-Agent of a DNS over HTTPS request; empty over UDP and TCP.
    #[serde(rename = "UserAgent")]
    pub user_agent: String,
}

/// One TLS ClientHello seen by the tls-alpn-01 responder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsAlpnRequestEvent {
    /// The SNI name.
    #[serde(rename = "ServerName")]
    pub server_name: String,
    /// The ALPN protocols the client offered.
    #[serde(rename = "SupportedProtos")]
    pub supported_protos: Vec<String>,
}

/// Any recorded event; serializes as the inner object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RequestEvent {
    /// From the http-01 responder.
    Http(HttpRequestEvent),
    /// From the DNS server.
    Dns(DnsRequestEvent),
    /// From the tls-alpn-01 responder.
    TlsAlpn(TlsAlpnRequestEvent),
}

impl RequestEvent {
    /// The kind of responder that recorded it.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Http(_) => EventKind::Http,
            Self::Dns(_) => EventKind::Dns,
            Self::TlsAlpn(_) => EventKind::TlsAlpn,
        }
    }

    /// The host the event is filed under: Host header without port, question name or SNI,
    /// lower-cased and without a trailing dot.
    pub fn key(&self) -> String {
        let raw = match self {
            Self::Http(e) => strip_port(&e.host),
            Self::Dns(e) => e.question.name.as_str(),
            Self::TlsAlpn(e) => e.server_name.as_str(),
        };
        history_key(raw)
    }
}

/// Normalizes a host for history lookups: lower case, no trailing dot.
pub(crate) fn history_key(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// `example.com:5002` -> `example.com`, `[::1]:80` -> `::1`; a host without port is kept.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_drop_ports_dots_and_case() {
        for (host, want) in [
            ("Example.com:5002", "example.com"),
            ("example.com", "example.com"),
            ("[::1]:5002", "::1"),
            ("::1", "::1"),
            ("example.com.", "example.com"),
        ] {
            let e = RequestEvent::Http(HttpRequestEvent {
                url: "/".into(),
                host: host.into(),
                https: false,
                server_name: String::new(),
                user_agent: String::new(),
            });
            assert_eq!(e.key(), want, "{host}");
        }
    }

    #[test]
    fn dns_event_json_uses_pebble_names() {
        let e = RequestEvent::Dns(DnsRequestEvent {
            question: DnsQuestion {
                name: "example.com.".into(),
                qtype: 257,
                qclass: 1,
            },
            user_agent: String::new(),
        });
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Question": {"Name": "example.com.", "Qtype": 257, "Qclass": 1}, "UserAgent": ""})
        );
    }
}
