//! Cobble's challenge test server, compatible with Let's Encrypt's `pebble-challtestsrv`:
//! a mock DNS server (UDP, TCP and DNS over HTTPS), http-01 responders over HTTP and HTTPS,
//! a tls-alpn-01 responder, and the same plain-HTTP management API, so scripts written for
//! pebble-challtestsrv work unchanged.
//!
//! [`start`] binds the listeners of a [`ChalltestConfig`] and returns a [`Running`] server
//! whose [`ChallState`] handle sets records and challenges in-process.
#![forbid(unsafe_code)]

pub mod addr;
mod dns;
pub mod doh;
pub mod history;
pub mod http01;
mod json;
mod management;
pub mod state;
mod tls;
pub mod tlsalpn01;

pub use cobble_core::go_addr::{AddrError, parse_listen_addr};
pub use history::{EventKind, RequestEvent};
pub use state::{CaaPolicy, ChallState};
pub use tls::{SELF_SIGNED_CN, TlsFiles, TlsPeer};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// pebble-challtestsrv's default DNS port.
pub const DEFAULT_DNS01_PORT: u16 = 8053;
/// pebble-challtestsrv's default http-01 port.
pub const DEFAULT_HTTP01_PORT: u16 = 5002;
/// pebble-challtestsrv's default https-01 port (http-01 over HTTPS, for redirects to https).
pub const DEFAULT_HTTPS01_PORT: u16 = 5003;
/// pebble-challtestsrv's default DNS over HTTPS port (served only with a certificate there).
pub const DEFAULT_DOH_PORT: u16 = 8443;
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
        /// Which listener (`dns01`, `http01`, `https01`, `doh`, `tlsalpn01`, `management`).
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
    /// A PEM file given for an HTTPS listener could not be read or holds nothing usable.
    #[error("{}: {reason}", path.display())]
    Pem {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Which listeners to run and the default A/AAAA answers; `None` turns a listener off.
/// Port 0 binds a free port; [`Running`] reports the bound addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChalltestConfig {
    /// Mock DNS server, UDP and TCP on the same address.
    pub dns01: Option<SocketAddr>,
    /// http-01 responder (plain HTTP).
    pub http01: Option<SocketAddr>,
    /// http-01 responder over HTTPS with a self-signed certificate (the target of http-01
    /// redirects to https; redirects set with `/add-redirect` are not served here).
    pub https01: Option<SocketAddr>,
    /// DNS over HTTPS (RFC 8484), answering from the mock DNS records.
    pub doh: Option<SocketAddr>,
    /// The DoH listener's certificate and key; `None` makes a self-signed one at start.
    pub doh_tls: Option<TlsFiles>,
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
    /// pebble-challtestsrv's defaults: every interface on 8053, 5002, 5003, 5001 and 8055;
    /// A 127.0.0.1, AAAA ::1; no DoH (pebble-challtestsrv serves it only when given a
    /// certificate).
    fn default() -> Self {
        let any = |port| Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
        Self {
            dns01: any(DEFAULT_DNS01_PORT),
            http01: any(DEFAULT_HTTP01_PORT),
            https01: any(DEFAULT_HTTPS01_PORT),
            doh: None,
            doh_tls: None,
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
            https01: lo,
            doh: lo,
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
    https01: Option<SocketAddr>,
    doh: Option<SocketAddr>,
    tlsalpn01: Option<SocketAddr>,
    management: Option<SocketAddr>,
    dns_server: Option<dns::DnsServer>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    skipped: Vec<String>,
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

    /// Bound address of the https-01 responder, if on.
    pub fn https01_addr(&self) -> Option<SocketAddr> {
        self.https01
    }

    /// Bound address of the DNS over HTTPS listener, if on.
    pub fn doh_addr(&self) -> Option<SocketAddr> {
        self.doh
    }

    /// Bound address of the tls-alpn-01 responder, if on.
    pub fn tlsalpn01_addr(&self) -> Option<SocketAddr> {
        self.tlsalpn01
    }

    /// Bound address of the management API, if on.
    pub fn management_addr(&self) -> Option<SocketAddr> {
        self.management
    }

    /// The listeners [`start_tolerant`] could not bind and runs without, each with why.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
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

/// Binds the listeners of `cfg` and starts serving; returns once all are bound, or the
/// first that cannot be.
pub async fn start(cfg: ChalltestConfig) -> Result<Running, Error> {
    start_with(cfg, false).await
}

/// As [`start`], but a listener whose address cannot be bound (e.g. in use) is logged and
/// left out while the others serve, as pebble-challtestsrv does; [`Running::skipped`] says
/// which. Other errors (TLS files, certificates) still fail.
pub async fn start_tolerant(cfg: ChalltestConfig) -> Result<Running, Error> {
    start_with(cfg, true).await
}

/// A listener's start failed: with `tolerant` and a bind error, log it and note it in
/// `skipped`; otherwise the error.
fn skip_or_fail(tolerant: bool, e: Error, skipped: &mut Vec<String>) -> Result<(), Error> {
    match e {
        Error::Bind { listener, .. } if tolerant => {
            tracing::warn!(
                listener,
                error = %e,
                "not listening; the other listeners serve (as pebble-challtestsrv does)"
            );
            skipped.push(e.to_string());
            Ok(())
        }
        e => Err(e),
    }
}

async fn start_with(cfg: ChalltestConfig, tolerant: bool) -> Result<Running, Error> {
    let state = ChallState::new(cfg.default_ipv4, cfg.default_ipv6);
    let (stop, stop_rx) = watch::channel(false);
    let mut running = Running {
        state: state.clone(),
        dns01: None,
        http01: None,
        https01: None,
        doh: None,
        tlsalpn01: None,
        management: None,
        dns_server: None,
        stop,
        tasks: Vec::new(),
        skipped: Vec::new(),
    };
    if let Some(addr) = cfg.dns01 {
        match dns::DnsServer::start(addr, state.clone()).await {
            Ok((server, bound)) => {
                running.dns_server = Some(server);
                running.dns01 = Some(bound);
            }
            Err(source) => skip_or_fail(
                tolerant,
                bind_error("dns01", addr, source),
                &mut running.skipped,
            )?,
        }
    }
    if let Some(addr) = cfg.http01 {
        match serve_http(
            "http01",
            addr,
            http01::router(state.clone()),
            stop_rx.clone(),
        )
        .await
        {
            Ok((bound, task)) => {
                running.http01 = Some(bound);
                running.tasks.push(task);
            }
            Err(e) => skip_or_fail(tolerant, e, &mut running.skipped)?,
        }
    }
    if let Some(addr) = cfg.https01 {
        let tls = tls::Identity::self_signed()?.server_config()?;
        match serve_https(
            "https01",
            addr,
            http01::router(state.clone()),
            tls,
            stop_rx.clone(),
            &mut running.tasks,
        )
        .await
        {
            Ok((bound, task)) => {
                running.https01 = Some(bound);
                running.tasks.push(task);
            }
            Err(e) => skip_or_fail(tolerant, e, &mut running.skipped)?,
        }
    }
    if let Some(addr) = cfg.doh {
        let identity = match &cfg.doh_tls {
            Some(files) => tls::Identity::load(files)?,
            None => tls::Identity::self_signed()?,
        };
        match serve_https(
            "doh",
            addr,
            doh::router(state.clone()),
            identity.server_config()?,
            stop_rx.clone(),
            &mut running.tasks,
        )
        .await
        {
            Ok((bound, task)) => {
                running.doh = Some(bound);
                running.tasks.push(task);
            }
            Err(e) => skip_or_fail(tolerant, e, &mut running.skipped)?,
        }
    }
    if let Some(addr) = cfg.tlsalpn01 {
        match bind_tcp("tlsalpn01", addr).await {
            Ok(listener) => {
                running.tlsalpn01 = Some(local_addr("tlsalpn01", addr, &listener)?);
                let config = tlsalpn01::server_config(state.clone())?;
                running.tasks.push(tokio::spawn(tlsalpn01::serve(
                    listener,
                    config,
                    state.clone(),
                    stop_rx.clone(),
                )));
            }
            Err(e) => skip_or_fail(tolerant, e, &mut running.skipped)?,
        }
    }
    if let Some(addr) = cfg.management {
        match serve_http(
            "management",
            addr,
            management::router(state.clone()),
            stop_rx.clone(),
        )
        .await
        {
            Ok((bound, task)) => {
                running.management = Some(bound);
                running.tasks.push(task);
            }
            Err(e) => skip_or_fail(tolerant, e, &mut running.skipped)?,
        }
    }
    tracing::info!(
        dns01 = ?running.dns01, http01 = ?running.http01, https01 = ?running.https01,
        doh = ?running.doh, tlsalpn01 = ?running.tlsalpn01,
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

/// Binds `addr` and serves `router` over HTTPS with `tls` until `stop` turns true; the
/// accepting task goes to `tasks`, the server's task is returned.
async fn serve_https(
    name: &'static str,
    addr: SocketAddr,
    router: axum::Router,
    tls: std::sync::Arc<rustls::ServerConfig>,
    mut stop: watch::Receiver<bool>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Result<(SocketAddr, JoinHandle<()>), Error> {
    let listener = bind_tcp(name, addr).await?;
    let bound = local_addr(name, addr, &listener)?;
    let (tls_listener, accepting) =
        tls::TlsListener::spawn(name, listener, bound, tls, stop.clone());
    tasks.push(accepting);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.changed().await;
        };
        let service = router.into_make_service_with_connect_info::<TlsPeer>();
        if let Err(e) = axum::serve(tls_listener, service)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(listener = name, error = %e, "server ended with an error");
        }
    });
    Ok((bound, task))
}
