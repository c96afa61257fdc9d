//! Challenge responders on loopback: an http-01 server (axum) whose replies are
//! set per token, and a tls-alpn-01 server (tokio-rustls) with a chosen certificate.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rcgen::{CertificateParams, CustomExtension, KeyPair, SanType};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the http-01 server answers for a token.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this body.
    Body(String),
    /// 302 to this Location.
    Redirect(String),
    /// This status, empty body.
    Status(u16),
    /// 200 after longer than any test timeout.
    Slow,
}

/// A running http-01 responder; `requests` logs (token, Host, User-Agent).
#[derive(Clone)]
pub struct MockHttp {
    pub port: u16,
    replies: Arc<Mutex<HashMap<String, Reply>>>,
    pub requests: Arc<Mutex<Vec<(String, String, String)>>>,
}

impl MockHttp {
    /// Starts the server on 127.0.0.1 with a random port.
    pub async fn start() -> Self {
        let s = Self {
            port: 0,
            replies: Arc::default(),
            requests: Arc::default(),
        };
        let app = axum::Router::new()
            .route(
                "/.well-known/acme-challenge/{token}",
                axum::routing::get(reply),
            )
            .with_state(s.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { port, ..s }
    }

    /// Sets the reply for `token`.
    pub fn set(&self, token: &str, reply: Reply) {
        self.replies.lock().unwrap().insert(token.to_owned(), reply);
    }
}

async fn reply(
    State(s): State<MockHttp>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let h = |n: header::HeaderName| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    s.requests
        .lock()
        .unwrap()
        .push((token.clone(), h(header::HOST), h(header::USER_AGENT)));
    let r = s.replies.lock().unwrap().get(&token).cloned();
    match r {
        Some(Reply::Body(b)) => b.into_response(),
        Some(Reply::Redirect(loc)) => {
            (StatusCode::FOUND, [(header::LOCATION, loc)]).into_response()
        }
        Some(Reply::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
        Some(Reply::Slow) => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "too late".into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// What goes into a tls-alpn-01 test certificate.
pub struct CertSpec {
    pub sans: Vec<SanType>,
    /// acmeIdentifier content (the digest) and whether it is critical; `None` leaves it out.
    pub acme: Option<(Vec<u8>, bool)>,
}

/// A self-signed certificate and its key, per `spec`.
pub fn make_cert(spec: CertSpec) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut params = CertificateParams::default();
    params.subject_alt_names = spec.sans;
    if let Some((digest, critical)) = spec.acme {
        let mut ext = CustomExtension::new_acme_identifier(&digest);
        ext.set_criticality(critical);
        params.custom_extensions.push(ext);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// A DNS SAN.
pub fn dns_san(name: &str) -> SanType {
    SanType::DnsName(name.try_into().unwrap())
}

/// An IP SAN.
pub fn ip_san(ip: &str) -> SanType {
    SanType::IpAddress(ip.parse::<IpAddr>().unwrap())
}

/// Serves one certificate whatever the SNI.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A running tls-alpn-01 responder; `snis` logs the SNI of each handshake.
pub struct MockTls {
    pub port: u16,
    pub snis: Arc<Mutex<Vec<String>>>,
}

/// Serves `cert` on 127.0.0.1 with the ALPN protocols `alpn`.
pub async fn start_tls(
    cert: (CertificateDer<'static>, PrivateKeyDer<'static>),
    alpn: &[&[u8]],
) -> MockTls {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Not `with_single_cert`: it rejects the critical acmeIdentifier extension.
    let key = provider.key_provider.load_private_key(cert.1).unwrap();
    let certified = Arc::new(CertifiedKey::new(vec![cert.0], key));
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(certified)));
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let snis: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = snis.clone();
    // Accepts until the test's runtime ends.
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let log = log.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let sni = tls.get_ref().1.server_name().unwrap_or("").to_owned();
                    log.lock().unwrap().push(sni);
                }
            });
        }
    });
    MockTls { port, snis }
}
