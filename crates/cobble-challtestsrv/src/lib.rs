//! Cobble's challenge test server, compatible with Let's Encrypt's `pebble-challtestsrv`:
//! a mock DNS server, http-01 and tls-alpn-01 responders, and the same plain-HTTP
//! management API, so scripts written for pebble-challtestsrv work unchanged.
//!
//! [`start`] binds the listeners of a [`ChalltestConfig`] and returns a [`Running`] server
//! whose [`ChallState`] handle sets records and challenges in-process.
#![forbid(unsafe_code)]

pub mod addr;
mod dns;
pub mod history;
pub mod http01;
mod json;
mod management;
pub mod state;
pub mod tlsalpn01;

pub use addr::{AddrError, parse_listen_addr};
pub use history::{EventKind, RequestEvent};
pub use state::{CaaPolicy, ChallState};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// pebble-challtestsrv's default DNS port.
pub const DEFAULT_DNS01_PORT: u16 = 8053;
/// pebble-challtestsrv's default http-01 port.
pub const DEFAULT_HTTP01_PORT: u16 = 5002;
/// pebble-challtestsrv's default tls-alpn-01 port.
pub const DEFAULT_TLSALPN01_PORT: u16 = 5001;
/// pebble-challtestsrv's default management port.
pub const DEFAULT_MANAGEMENT_PORT: u16 = 8055;

/// Why the challenge test server could not start or a challenge could not be set.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not be bound.
    #[error("cannot listen for {listener} on {addr}: {source}")]
    Bind {
        /// Which listener (`dns01`, `http01`, `tlsalpn01`, `management`).
        listener: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The TLS configuration or a challenge key could not be made.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// A tls-alpn-01 challenge certificate could not be made (e.g. not a DNS name).
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// Which listeners to run and the default A/AAAA answers; `None` turns a listener off.
/// Port 0 binds a free port; [`Running`] reports the bound addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChalltestConfig {
    /// Mock DNS server, UDP and TCP on the same address.
    pub dns01: Option<SocketAddr>,
    /// http-01 responder (plain HTTP).
    pub http01: Option<SocketAddr>,
    /// tls-alpn-01 responder.
    pub tlsalpn01: Option<SocketAddr>,
    /// Management API (plain HTTP).
    pub management: Option<SocketAddr>,
    /// A answer for names without A records; `None` answers none.
    pub default_ipv4: Option<Ipv4Addr>,
    /// AAAA answer for names without AAAA records; `None` answers none.
    pub default_ipv6: Option<Ipv6Addr>,
}

impl Default for ChalltestConfig {
    /// pebble-challtestsrv's defaults: every interface on 8053, 5002, 5001 and 8055;
    /// A 127.0.0.1, AAAA ::1.
    fn default() -> Self {
        let any = |port| Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
        Self {
            dns01: any(DEFAULT_DNS01_PORT),
            http01: any(DEFAULT_HTTP01_PORT),
            tlsalpn01: any(DEFAULT_TLSALPN01_PORT),
            management: any(DEFAULT_MANAGEMENT_PORT),
            default_ipv4: Some(Ipv4Addr::LOCALHOST),
            default_ipv6: Some(Ipv6Addr::LOCALHOST),
        }
    }
}

impl ChalltestConfig {
    /// Every listener on 127.0.0.1 with a free port, the defaults otherwise (for tests).
    pub fn loopback_ephemeral() -> Self {
        let lo = Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        Self {
            dns01: lo,
            http01: lo,
            tlsalpn01: lo,
            management: lo,
            ..Self::default()
        }
    }
}

/// A running challenge test server.
pub struct Running {
    state: ChallState,
    dns01: Option<SocketAddr>,
    http01: Option<SocketAddr>,
    tlsalpn01: Option<SocketAddr>,
    management: Option<SocketAddr>,
    dns_server: Option<dns::DnsServer>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Handle to the shared state: set records and challenges in-process.
    pub fn state(&self) -> &ChallState {
        &self.state
    }

    /// Bound address of the DNS server (UDP and TCP), if on.
    pub fn dns01_addr(&self) -> Option<SocketAddr> {
        self.dns01
    }

    /// Bound address of the http-01 responder, if on.
    pub fn http01_addr(&self) -> Option<SocketAddr> {
        self.http01
    }

    /// Bound address of the tls-alpn-01 responder, if on.
    pub fn tlsalpn01_addr(&self) -> Option<SocketAddr> {
        self.tlsalpn01
    }

    /// Bound address of the management API, if on.
    pub fn management_addr(&self) -> Option<SocketAddr> {
        self.management
    }

    /// Stops every listener and waits for them to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(dns) = self.dns_server.take() {
            dns.shutdown().await;
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

/// Binds the listeners of `cfg` and starts serving; returns once all are bound.
pub async fn start(cfg: ChalltestConfig) -> Result<Running, Error> {
    let state = ChallState::new(cfg.default_ipv4, cfg.default_ipv6);
    let (stop, stop_rx) = watch::channel(false);
    let mut running = Running {
        state: state.clone(),
        dns01: None,
        http01: None,
        tlsalpn01: None,
        management: None,
        dns_server: None,
        stop,
        tasks: Vec::new(),
    };
    if let Some(addr) = cfg.dns01 {
        let (server, bound) = dns::DnsServer::start(addr, state.clone())
            .await
            .map_err(|source| bind_error("dns01", addr, source))?;
        running.dns_server = Some(server);
        running.dns01 = Some(bound);
    }
    if let Some(addr) = cfg.http01 {
        let (bound, task) = serve_http(
            "http01",
            addr,
            http01::router(state.clone()),
            stop_rx.clone(),
        )
        .await?;
        running.http01 = Some(bound);
        running.tasks.push(task);
    }
    if let Some(addr) = cfg.tlsalpn01 {
        let listener = bind_tcp("tlsalpn01", addr).await?;
        running.tlsalpn01 = Some(local_addr("tlsalpn01", addr, &listener)?);
        let config = tlsalpn01::server_config(state.clone())?;
        running.tasks.push(tokio::spawn(tlsalpn01::serve(
            listener,
            config,
            stop_rx.clone(),
        )));
    }
    if let Some(addr) = cfg.management {
        let (bound, task) = serve_http(
            "management",
            addr,
            management::router(state.clone()),
            stop_rx.clone(),
        )
        .await?;
        running.management = Some(bound);
        running.tasks.push(task);
    }
    tracing::info!(
        dns01 = ?running.dns01, http01 = ?running.http01, tlsalpn01 = ?running.tlsalpn01,
        management = ?running.management, "challenge test server started"
    );
    Ok(running)
}

fn bind_error(listener: &'static str, addr: SocketAddr, source: std::io::Error) -> Error {
    Error::Bind {
        listener,
        addr,
        source,
    }
}

async fn bind_tcp(
    listener: &'static str,
    addr: SocketAddr,
) -> Result<tokio::net::TcpListener, Error> {
    let mut last = None;
    for candidate in addr::bind_candidates(addr) {
        match tokio::net::TcpListener::bind(candidate).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(bind_error(
        listener,
        addr,
        last.unwrap_or_else(|| std::io::Error::other("no address to bind")),
    ))
}

fn local_addr(
    listener: &'static str,
    addr: SocketAddr,
    l: &tokio::net::TcpListener,
) -> Result<SocketAddr, Error> {
    l.local_addr()
        .map_err(|source| bind_error(listener, addr, source))
}

/// Binds `addr` and serves `router` over plain HTTP until `stop` turns true.
async fn serve_http(
    name: &'static str,
    addr: SocketAddr,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), Error> {
    let listener = bind_tcp(name, addr).await?;
    let bound = local_addr(name, addr, &listener)?;
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.changed().await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(listener = name, error = %e, "server ended with an error");
        }
    });
    Ok((bound, task))
}
