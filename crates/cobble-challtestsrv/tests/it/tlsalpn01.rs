//! The tls-alpn-01 responder (RFC 8737), checked with a tokio-rustls client and x509-parser.

use crate::{Harness, WAIT};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Accepts any certificate and handshake signature: the test inspects the certificate
/// itself, and webpki refuses to parse one with the (critical, unknown to it) acmeIdentifier.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Handshakes with `sni` and `alpn`; returns the negotiated ALPN and the leaf certificate.
async fn handshake(
    addr: SocketAddr,
    sni: &str,
    alpn: &[&[u8]],
) -> std::io::Result<(Option<Vec<u8>>, Vec<u8>)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr)).await??;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let tls = tokio::time::timeout(WAIT, connector.connect(name, tcp)).await??;
    let (_, conn) = tls.get_ref();
    let leaf = conn.peer_certificates().unwrap()[0].to_vec();
    Ok((conn.alpn_protocol().map(<[u8]>::to_vec), leaf))
}

#[tokio::test]
async fn tlsalpn01_serves_the_acme_identifier_certificate() {
    let h = Harness::start().await;
    let addr = h.srv.tlsalpn01_addr().unwrap();
    h.post(
        "/add-tlsalpn01",
        json!({"host": "alpn.example.test", "content": "tok.thumb"}),
    )
    .await;

    let (alpn, der) = handshake(addr, "Alpn.Example.Test", &[b"acme-tls/1"])
        .await
        .unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"acme-tls/1"[..]));
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    // RFC 8737 §3: the only SAN is the dNSName; acmeIdentifier is critical and holds
    // the SHA-256 digest of the key authorization as an OCTET STRING.
    let sans: Vec<_> = cert
        .extensions()
        .iter()
        .filter_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => Some(san.general_names.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        matches!(sans.as_slice(), [GeneralName::DNSName("alpn.example.test")]),
        "{sans:?}"
    );
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
        .expect("acmeIdentifier extension");
    assert!(ext.critical);
    let digest = ring::digest::digest(&ring::digest::SHA256, b"tok.thumb");
    let mut want = vec![0x04, 0x20];
    want.extend_from_slice(digest.as_ref());
    assert_eq!(ext.value, want.as_slice());

    // Unknown SNI, other ALPN and no ALPN all fail the handshake with a fatal
    // internal_error alert, as pebble-challtestsrv 2.4's do (observed with openssl).
    let refused: [(&str, &[&[u8]]); 3] = [
        ("other.example.test", &[b"acme-tls/1"]),
        ("alpn.example.test", &[b"h2"]),
        ("alpn.example.test", &[]),
    ];
    for (sni, alpn) in refused {
        let e = handshake(addr, sni, alpn).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("received fatal alert: InternalError"),
            "{sni} {alpn:?}: {e}"
        );
    }

    let events = h
        .history("/tlsalpn01-request-history", "alpn.example.test")
        .await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0]["SupportedProtos"], json!(["acme-tls/1"]));
    assert_eq!(events[2]["SupportedProtos"], json!([]));

    h.post("/del-tlsalpn01", json!({"host": "alpn.example.test"}))
        .await;
    assert!(
        handshake(addr, "alpn.example.test", &[b"acme-tls/1"])
            .await
            .is_err()
    );
    h.srv.shutdown().await;
}
