//! Listener addresses as Go programs' flags and configs write them (Pebble's
//! `listenAddress`, pebble-challtestsrv's `-http01`): `:8053` (every interface),
//! `127.0.0.1:8053`, `[::1]:8053`, `localhost:8053`, or empty for "off". Pure parsing,
//! shared by the Pebble drop-in's config and the challenge test server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Why a listener address could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// Not `HOST:PORT`, `:PORT` or empty.
    #[error("{0:?} is not an address (want HOST:PORT, :PORT, or \"\" for off)")]
    Invalid(String),
    /// pebble-challtestsrv takes comma-separated lists; this server binds one address each.
    #[error("{0:?}: only one address per listener is supported")]
    Several(String),
}

/// Parses a listener flag: `""` is `None` (listener off), `:PORT` is every IPv4 interface.
pub fn parse_listen_addr(s: &str) -> Result<Option<SocketAddr>, AddrError> {
    let parts: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let one = match parts.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => return Err(AddrError::Several(s.to_owned())),
    };
    let invalid = || AddrError::Invalid(s.to_owned());
    if let Ok(addr) = one.parse::<SocketAddr>() {
        return Ok(Some(addr));
    }
    let (host, port) = one.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    let ip = match host {
        "" | "0.0.0.0" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => return Err(invalid()),
    };
    Ok(Some(SocketAddr::new(ip, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let rows: [(&str, Result<Option<&str>, ()>); 10] = [
            ("", Ok(None)),
            (" , ", Ok(None)),
            (":8053", Ok(Some("0.0.0.0:8053"))),
            ("127.0.0.1:5002", Ok(Some("127.0.0.1:5002"))),
            ("[::1]:5001", Ok(Some("[::1]:5001"))),
            ("localhost:8055", Ok(Some("127.0.0.1:8055"))),
            (":0", Ok(Some("0.0.0.0:0"))),
            ("8053", Err(())),
            ("example.com:80", Err(())),
            (":1,:2", Err(())),
        ];
        for (input, want) in rows {
            let got = parse_listen_addr(input).map_err(|_| ());
            let want = want.map(|o| o.map(|a| a.parse::<SocketAddr>().unwrap()));
            assert_eq!(got, want, "{input:?}");
        }
    }
}
