//! Ports for child processes (Pebble, certbot's standalone server, `cobble serve` on a
//! fixed port) that a test must name before the child binds them.
//!
//! A port found by binding port 0 and closing the socket comes from the kernel's ephemeral
//! range, which is also where every outgoing connection and every port-0 listener of the
//! tests running beside takes its port: between the close and the child's bind another test
//! can be handed the same one, and the child fails with "address already in use". These
//! ports come from below the ephemeral range instead, which the kernel never hands out on its
//! own, along a per-process sequence that starts at a random place, and each is checked free
//! for TCP and UDP (DNS test servers listen on both) before it is returned.

use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port used; the top is the ephemeral range's low end.
const LOWEST: u32 = 10_000;

/// A loopback port that is free for TCP and UDP now and that no ephemeral allocation takes.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let top = ephemeral_low().max(LOWEST + 1_000);
    let span = top - LOWEST;
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let seed = (std::process::id().wrapping_mul(7_919) ^ nanos) % span;
        let _ = NEXT.compare_exchange(u32::MAX, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..span {
        let port = (LOWEST + NEXT.fetch_add(1, Ordering::Relaxed) % span) as u16;
        let tcp = TcpListener::bind(("127.0.0.1", port));
        let udp = UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {LOWEST} and {top}");
}

/// The low end of the kernel's ephemeral port range (32768 when it cannot be read).
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}
