//! The tls-alpn-01 responder (RFC 8737): a TLS listener offering only ALPN `acme-tls/1`
//! that, for an SNI name set with `/add-tlsalpn01`, presents a self-signed certificate
//! whose only SAN is that name and whose critical acmeIdentifier extension holds the
//! SHA-256 of the key authorization. Other hellos fail the handshake, as in
//! pebble-challtestsrv.

use crate::Error;
use crate::history::{RequestEvent, TlsAlpnRequestEvent};
use crate::state::ChallState;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// RFC 8737 §6.2: the ALPN protocol name of tls-alpn-01.
pub const ACME_TLS_1: &[u8] = b"acme-tls/1";
/// How long a client gets to finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// RFC 8737 §3: the challenge certificate for `host` and `keyauth`.
pub(crate) fn challenge_cert(host: &str, keyauth: &str) -> Result<Arc<CertifiedKey>, Error> {
    let digest = ring::digest::digest(&ring::digest::SHA256, keyauth.as_bytes());
    let mut params = rcgen::CertificateParams::new(vec![host.to_owned()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest.as_ref())];
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key_der)?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing_key,
    )))
}

/// Picks the challenge certificate by SNI, recording every hello.
#[derive(Debug)]
struct SniResolver {
    state: ChallState,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().unwrap_or_default().to_owned();
        let protos: Vec<Vec<u8>> = hello
            .alpn()
            .map(|it| it.map(<[u8]>::to_vec).collect())
            .unwrap_or_default();
        self.state
            .record(RequestEvent::TlsAlpn(TlsAlpnRequestEvent {
                server_name: sni.clone(),
                supported_protos: protos
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect(),
            }));
        if protos != [ACME_TLS_1] {
            tracing::info!(%sni, "tls-alpn-01: refused, ALPN is not exactly acme-tls/1");
            return None;
        }
        let cert = self.state.tlsalpn01_cert(&sni);
        if cert.is_none() {
            tracing::info!(%sni, "tls-alpn-01: refused, no challenge for this name");
        }
        cert
    }
}

/// The rustls configuration of the responder (ring provider, ALPN `acme-tls/1` only).
pub(crate) fn server_config(state: ChallState) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { state }));
    cfg.alpn_protocols = vec![ACME_TLS_1.to_vec()];
    Ok(Arc::new(cfg))
}

/// Accepts connections until `stop` turns true; each one gets a handshake and a close.
pub(crate) async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "tls-alpn-01: accept failed");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(mut tls)) => {
                    tracing::debug!(%peer, "tls-alpn-01: handshake done");
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "tls-alpn-01: handshake failed"),
                Err(_) => tracing::debug!(%peer, "tls-alpn-01: handshake timed out"),
            }
        });
    }
}
