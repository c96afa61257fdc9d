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
        choose(&self.state, &hello, true)
    }
}

/// The challenge certificate for `hello`: ALPN exactly `acme-tls/1` and a challenge set for
/// its SNI name; with `record`, the hello goes to the history and a refusal is logged.
fn choose(state: &ChallState, hello: &ClientHello<'_>, record: bool) -> Option<Arc<CertifiedKey>> {
    let sni = hello.server_name().unwrap_or_default().to_owned();
    let protos: Vec<Vec<u8>> = hello
        .alpn()
        .map(|it| it.map(<[u8]>::to_vec).collect())
        .unwrap_or_default();
    if record {
        state.record(RequestEvent::TlsAlpn(TlsAlpnRequestEvent {
            server_name: sni.clone(),
            supported_protos: protos
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect(),
        }));
    }
    if protos != [ACME_TLS_1] {
        if record {
            tracing::info!(%sni, "tls-alpn-01: refused, ALPN is not exactly acme-tls/1");
        }
        return None;
    }
    let cert = state.tlsalpn01_cert(&sni);
    if cert.is_none() && record {
        tracing::info!(%sni, "tls-alpn-01: refused, no challenge for this name");
    }
    cert
}

/// A fatal `internal_error` alert record (RFC 8446 §6, §B.2): how pebble-challtestsrv (Go's
/// TLS server, whose certificate callback fails) ends a hello it has no certificate for;
/// rustls would send `access_denied`, which validators report differently.
const INTERNAL_ERROR_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50];

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
    state: ChallState,
    mut stop: watch::Receiver<bool>,
) {
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
        let (config, state) = (config.clone(), state.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(tcp, config, state)).await {
                Ok(Ok(())) => tracing::debug!(%peer, "tls-alpn-01: handshake done"),
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "tls-alpn-01: handshake failed"),
                Err(_) => tracing::debug!(%peer, "tls-alpn-01: handshake timed out"),
            }
        });
    }
}

/// One connection: the ClientHello is read first; without a certificate for it the
/// connection gets [`INTERNAL_ERROR_ALERT`] and is closed, otherwise the handshake runs
/// (the resolver records the hello) and the connection is closed after it.
async fn handshake(
    mut tcp: tokio::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    state: ChallState,
) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut acceptor = rustls::server::Acceptor::default();
    let mut buf = vec![0u8; 16 * 1024];
    let accepted = loop {
        let n = tcp.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before its ClientHello".into());
        }
        acceptor
            .read_tls(&mut &buf[..n])
            .map_err(|e| e.to_string())?;
        match acceptor.accept() {
            Ok(Some(accepted)) => break accepted,
            Ok(None) => {}
            Err((e, mut alert)) => {
                let mut out = Vec::new();
                let _ = alert.write_all(&mut out);
                let _ = tcp.write_all(&out).await;
                return Err(e.to_string());
            }
        }
    };
    if choose(&state, &accepted.client_hello(), false).is_none() {
        choose(&state, &accepted.client_hello(), true);
        let _ = tcp.write_all(&INTERNAL_ERROR_ALERT).await;
        let _ = tcp.shutdown().await;
        return Err("no certificate for this hello: internal_error alert sent".into());
    }
    let mut tls = tokio_rustls::StartHandshake::from_parts(accepted, tcp)
        .into_stream(config)
        .await
        .map_err(|e| e.to_string())?;
    let _ = tls.shutdown().await;
    Ok(())
}
