//! tls-alpn-01 (RFC 8737): a TLS handshake offering only `acme-tls/1`, with SNI
//! the name (RFC 8738 §6: the reverse-DNS name for an IP), to a server showing a
//! certificate with exactly one SAN, the identifier, and a critical
//! acmeIdentifier extension holding SHA-256 of the key authorization. Each address passes
//! the validation address policy before the TCP connection to it is made.

use crate::{ACME_TLS_ALPN, Inner, insecure_tls, unsupported};
use cobble_core::challenge::{ChallengeType, tlsalpn01_digest};
use cobble_core::identifier::Identifier;
use cobble_core::{Problem, ProblemType};
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The acmeIdentifier extension (RFC 8737 §6.1).
pub const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";

/// Connects, handshakes and checks the certificate.
pub(crate) async fn validate(
    va: &Inner,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<Value, Problem> {
    if identifier.is_wildcard() {
        return Err(unsupported(
            ChallengeType::TlsAlpn01,
            "wildcard names (RFC 8555 §7.1.3: use dns-01)",
        ));
    }
    let (sni, resolved) = match identifier {
        Identifier::Dns(name) => (name.clone(), va.dns.addresses(name).await?),
        Identifier::Ip(ip) => (reverse_name(*ip), vec![*ip]),
    };
    let port = va.cfg.tlsalpn01_port;
    // The validation address policy, checked on each address before connecting to it.
    let candidates = crate::addrs::candidates(
        &va.cfg.addresses,
        &resolved,
        &format!("tls-alpn-01 to {}:{port}", identifier.value()),
    )?;
    let mut tcp = None;
    let mut last_err = None;
    for ip in &candidates {
        let addr = SocketAddr::new(*ip, port);
        match tokio::time::timeout(va.cfg.timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                tcp = Some((s, addr));
                break;
            }
            Ok(Err(e)) => {
                let why = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    "Connection refused".to_owned()
                } else {
                    format!("Connection failed: {e}")
                };
                last_err = Some(connection(addr, &why));
            }
            Err(_) => {
                last_err = Some(connection(
                    addr,
                    "Timeout during connect (likely firewall problem)",
                ))
            }
        }
    }
    let Some((tcp, addr)) = tcp else {
        return Err(last_err.unwrap_or_else(|| {
            Problem::new(
                ProblemType::Dns,
                format!("No valid IP addresses found for {sni}"),
            )
        }));
    };
    let record = json!([{
        "hostname": identifier.value(),
        "port": port.to_string(),
        "addressesResolved": resolved.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "addressUsed": addr.ip().to_string(),
    }]);

    let server_name = ServerName::try_from(sni.clone())
        .map_err(|e| Problem::malformed(format!("{sni:?} cannot be sent as SNI: {e}")))?;
    let connector = TlsConnector::from(Arc::new(insecure_tls::client_config(&[ACME_TLS_ALPN])));
    let tls = match tokio::time::timeout(va.cfg.timeout, connector.connect(server_name, tcp)).await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return Err(handshake_problem(addr, &sni, &e)),
        Err(_) => {
            return Err(connection(
                addr,
                "Timeout during TLS handshake (your server may be slow or overloaded)",
            ));
        }
    };
    let (_, conn) = tls.get_ref();
    if conn.alpn_protocol() != Some(ACME_TLS_ALPN) {
        return Err(Problem::new(
            ProblemType::Tls,
            format!(
                "Cannot negotiate ALPN protocol \"acme-tls/1\" for tls-alpn-01 challenge with {addr} (SNI {sni}): the server chose {}",
                match conn.alpn_protocol() {
                    Some(p) => format!("{:?}", String::from_utf8_lossy(p)),
                    None => "no protocol".to_owned(),
                }
            ),
        ));
    }
    let Some(leaf) = conn.peer_certificates().and_then(|c| c.first()) else {
        return Err(bad_cert(identifier, addr, "Received no certificate."));
    };
    check_certificate(leaf.as_ref(), identifier, addr, key_authorization)?;
    Ok(record)
}

/// RFC 8737 §3 checks on the leaf certificate.
fn check_certificate(
    der: &[u8],
    identifier: &Identifier,
    addr: SocketAddr,
    key_authorization: &str,
) -> Result<(), Problem> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| {
        bad_cert(
            identifier,
            addr,
            &format!("Received a certificate that cannot be parsed: {e}."),
        )
    })?;
    let sans: Vec<GeneralName<'_>> = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.clone(),
        Ok(None) => Vec::new(),
        Err(e) => {
            return Err(bad_cert(
                identifier,
                addr,
                &format!("Received certificate with a bad subjectAltName extension: {e}."),
            ));
        }
    };
    let matches = |g: &GeneralName<'_>| match (g, identifier) {
        (GeneralName::DNSName(n), Identifier::Dns(want)) => n.eq_ignore_ascii_case(want),
        (GeneralName::IPAddress(b), Identifier::Ip(IpAddr::V4(ip))) => *b == ip.octets(),
        (GeneralName::IPAddress(b), Identifier::Ip(IpAddr::V6(ip))) => *b == ip.octets(),
        _ => false,
    };
    if sans.len() != 1 || !matches(&sans[0]) {
        let names: Vec<String> = sans.iter().map(san_text).collect();
        return Err(bad_cert(
            identifier,
            addr,
            &format!(
                "Received certificate with unexpected identifiers [{}]; it must have exactly one subjectAltName, {}.",
                names.join(", "),
                identifier.value()
            ),
        ));
    }
    let Some(ext) = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == ACME_IDENTIFIER_OID)
    else {
        return Err(bad_cert(
            identifier,
            addr,
            "Received certificate with no acmeIdentifier extension (1.3.6.1.5.5.7.1.31).",
        ));
    };
    if !ext.critical {
        return Err(bad_cert(
            identifier,
            addr,
            "Received certificate with an acmeIdentifier extension that is not critical.",
        ));
    }
    // extnValue holds DER `OCTET STRING (SIZE (32))` (RFC 8737 §3).
    let value = match ext.value {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
        _ => {
            return Err(bad_cert(
                identifier,
                addr,
                "Received certificate with a malformed acmeIdentifier extension value (want a DER OCTET STRING of 32 bytes).",
            ));
        }
    };
    let expected = tlsalpn01_digest(key_authorization);
    if value != expected {
        return Err(Problem::new(
            ProblemType::IncorrectResponse,
            format!(
                "Incorrect validation certificate for tls-alpn-01 challenge. Requested {} from {addr}. Received certificate with acmeIdentifier extension value {} but expected {} (SHA-256 of the key authorization).",
                identifier.value(),
                hex(value),
                hex(&expected)
            ),
        ));
    }
    Ok(())
}

/// The RFC 8738 §6 SNI for an IP: its reverse-mapping name (`in-addr.arpa`/`ip6.arpa`).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// `dns:name` / `ip:addr` for a problem detail.
fn san_text(g: &GeneralName<'_>) -> String {
    match g {
        GeneralName::DNSName(n) => format!("dns:{n}"),
        GeneralName::IPAddress(b) => match b.len() {
            4 => format!(
                "ip:{}",
                std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).unwrap())
            ),
            16 => format!(
                "ip:{}",
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).unwrap())
            ),
            _ => format!("ip:{}", hex(b)),
        },
        other => other.to_string(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn connection(addr: SocketAddr, why: &str) -> Problem {
    Problem::new(
        ProblemType::Connection,
        format!("{addr}: Error getting validation data: {why}"),
    )
}

fn bad_cert(identifier: &Identifier, addr: SocketAddr, msg: &str) -> Problem {
    Problem::unauthorized(format!(
        "Incorrect validation certificate for tls-alpn-01 challenge. Requested {} from {addr}. {msg}",
        identifier.value()
    ))
}

/// A failed handshake: `tls`, with the ALPN wording when the server refused `acme-tls/1`.
fn handshake_problem(addr: SocketAddr, sni: &str, e: &std::io::Error) -> Problem {
    let alpn_refused = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|re| {
            matches!(
                re,
                rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)
            )
        });
    let detail = if alpn_refused {
        format!(
            "Cannot negotiate ALPN protocol \"acme-tls/1\" for tls-alpn-01 challenge with {addr} (SNI {sni}): the server refused it"
        )
    } else if e.kind() == std::io::ErrorKind::ConnectionReset
        || e.kind() == std::io::ErrorKind::UnexpectedEof
    {
        format!(
            "{addr}: TLS handshake failed (SNI {sni}): connection closed by the server ({e}); is a tls-alpn-01 responder listening?"
        )
    } else {
        format!("{addr}: TLS handshake failed (SNI {sni}): {e}")
    };
    Problem::new(ProblemType::Tls, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_rfc8738_section6() {
        let rows = [
            ("192.0.2.1", "1.2.0.192.in-addr.arpa"),
            (
                "2001:db8::1",
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
            ),
        ];
        for (ip, want) in rows {
            assert_eq!(reverse_name(ip.parse().unwrap()), want, "{ip}");
        }
    }
}
