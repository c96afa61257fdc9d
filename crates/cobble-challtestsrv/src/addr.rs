//! Listener addresses: their forms (`:8053`, `127.0.0.1:8053`, `[::1]:8053`,
//! `localhost:8053`, empty for "off") are read by `cobble_core::go_addr`, shared with the
//! Pebble drop-in; here, what binding one means.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The addresses to try, in order, for a listener on `addr`: as Go does, an IPv4 wildcard
/// (`:PORT`, `0.0.0.0:PORT`) listens on IPv6 too, through the IPv6 wildcard (dual-stack),
/// falling back to IPv4 alone where the host has no IPv6.
pub fn bind_candidates(addr: SocketAddr) -> Vec<SocketAddr> {
    if addr.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
        vec![
            SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), addr.port()),
            addr,
        ]
    } else {
        vec![addr]
    }
}
