//! TLS for the HTTPS listeners (the https-01 responder and DNS over HTTPS): a self-signed
//! certificate made at start (as pebble-challtestsrv's https-01 responder; validators do not
//! check it), or one loaded from PEM files, and an axum listener that finishes each TLS
//! handshake in its own task so that a slow client holds up no other.

use crate::Error;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;

/// How long a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the HTTP server to take them.
const QUEUE: usize = 64;
/// The subject common name of the self-signed certificate (pebble-challtestsrv's).
pub const SELF_SIGNED_CN: &str = "challenge test server";

/// A certificate chain and its private key, PEM files on disk (e.g. `--doh-cert`,
/// `--doh-cert-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A certificate chain with its key, ready for rustls.
pub(crate) struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// A fresh self-signed P-256 certificate, CN [`SELF_SIGNED_CN`], with SANs `localhost`,
    /// `127.0.0.1` and `::1` so that a client given it as trust anchor can check it.
    pub(crate) fn self_signed() -> Result<Self, Error> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, SELF_SIGNED_CN);
        for ip in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            params.subject_alt_names.push(rcgen::SanType::IpAddress(ip));
        }
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }

    /// The chain and key in `files`.
    pub(crate) fn load(files: &TlsFiles) -> Result<Self, Error> {
        let chain = CertificateDer::pem_file_iter(&files.cert)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| pem_error(&files.cert, e))?;
        if chain.is_empty() {
            return Err(Error::Pem {
                path: files.cert.clone(),
                reason: "no CERTIFICATE block".to_owned(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| pem_error(&files.key, e))?;
        Ok(Self { chain, key })
    }

    /// A rustls server configuration (ring provider) offering HTTP/2 and HTTP/1.1.
    pub(crate) fn server_config(self) -> Result<Arc<rustls::ServerConfig>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain, self.key)?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> Error {
    Error::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// Who is on the other end of an HTTPS connection: the peer and the SNI name it sent.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    /// The client's address.
    pub remote: SocketAddr,
    /// The SNI name of the ClientHello; empty when none was sent.
    pub server_name: String,
}

impl Connected<IncomingStream<'_, TlsListener>> for TlsPeer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// An axum listener yielding finished TLS connections.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, TlsPeer)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp` until `stop` turns true, handshaking each connection in its own task
    /// under a time limit; returns the listener and the accepting task.
    pub(crate) fn spawn(
        name: &'static str,
        tcp: TcpListener,
        local: SocketAddr,
        config: Arc<rustls::ServerConfig>,
        mut stop: watch::Receiver<bool>,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            loop {
                let (sock, peer) = tokio::select! {
                    _ = stop.changed() => return,
                    accepted = tcp.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(listener = name, error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
                        Ok(Ok(tls)) => {
                            let server_name =
                                tls.get_ref().1.server_name().unwrap_or_default().to_owned();
                            let info = TlsPeer {
                                remote: peer,
                                server_name,
                            };
                            let _ = tx.send((tls, info)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(listener = name, %peer, error = %e, "handshake failed")
                        }
                        Err(_) => tracing::debug!(listener = name, %peer, "handshake timed out"),
                    }
                });
            }
        });
        (Self { rx, local }, task)
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = TlsPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accepting task stopped: no connection comes any more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(TlsPeer {
            remote: self.local,
            server_name: String::new(),
        })
    }
}
