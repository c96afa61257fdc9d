//! revokeCert (RFC 8555 §7.6): by the issuing account, by an account holding valid
//! authorizations for every name, or with the certificate's own key.

use crate::auth::KeyMode;
use crate::error::AcmeResult;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cobble_core::jwk::{Curve, PublicKey};
use cobble_core::{Problem, ProblemType, b64};
use serde::Deserialize;
use x509_parser::prelude::{FromDer, X509Certificate};

#[derive(Debug, Deserialize)]
struct RevokeRequest {
    certificate: String,
    #[serde(default)]
    reason: Option<i64>,
}

/// The certificate's public key as a JWK key, to compare with a `jwk`-signed request.
fn spki_to_key(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Option<PublicKey> {
    use x509_parser::public_key::PublicKey as P;
    let strip = |b: &[u8]| {
        b.iter()
            .skip_while(|x| **x == 0)
            .copied()
            .collect::<Vec<u8>>()
    };
    match spki.parsed().ok()? {
        P::RSA(k) => Some(PublicKey::Rsa {
            n: strip(k.modulus),
            e: strip(k.exponent),
        }),
        P::EC(point) => {
            let curve = match spki
                .algorithm
                .parameters
                .as_ref()?
                .as_oid()
                .ok()?
                .to_id_string()
                .as_str()
            {
                "1.2.840.10045.3.1.7" => Curve::P256,
                "1.3.132.0.34" => Curve::P384,
                "1.3.132.0.35" => Curve::P521,
                _ => return None,
            };
            let data = point.data();
            let n = data.len().checked_sub(1)? / 2;
            (data.first() == Some(&4)).then(|| PublicKey::Ec {
                curve,
                x: data[1..1 + n].to_vec(),
                y: data[1 + n..].to_vec(),
            })
        }
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => Some(PublicKey::Ed25519 {
            x: spki.subject_public_key.data.to_vec(),
        }),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// POST /acme/revoke-cert.
pub async fn revoke(State(s): State<AppState>, req: Request) -> AcmeResult<Response> {
    let r = s.authenticate(req, KeyMode::Either).await?;
    let body: RevokeRequest = r.jws.payload_json()?;
    let der = b64::decode(body.certificate.trim_end_matches('='))
        .map_err(|_| Problem::malformed("\"certificate\" is not base64url DER (RFC 8555 §7.6)"))?;
    let (_, x509) = X509Certificate::from_der(&der)
        .map_err(|e| Problem::malformed(format!("\"certificate\" is not a certificate: {e}")))?;
    let reason = body.reason.unwrap_or(0);
    if !(0..=255).contains(&reason) || !s.cfg.revocation_reasons.contains(&(reason as u8)) {
        let allowed: Vec<String> = s
            .cfg
            .revocation_reasons
            .iter()
            .map(|c| c.to_string())
            .collect();
        return Err(Problem::new(
            ProblemType::BadRevocationReason,
            format!(
                "revocation reason {reason} is not accepted; use one of {}",
                allowed.join(", ")
            ),
        )
        .into());
    }
    let serial = hex(x509.raw_serial());
    let cert = s
        .store
        .certificate_by_serial(&serial)
        .await?
        .filter(|c| {
            cobble_ca::pem::certificates(&c.pem)
                .ok()
                .and_then(|v| v.into_iter().next())
                .as_deref()
                == Some(&der[..])
        })
        .ok_or_else(|| Problem::not_found("a certificate with this serial issued by this CA"))?;
    let now = s.clock.now_ms();
    match &r.account {
        None => {
            // Signed with the certificate's key (jwk): the JWS key must be the certificate's key.
            let cert_key = spki_to_key(x509.public_key());
            if cert_key.map(|k| k.thumbprint()) != Some(r.key.thumbprint()) {
                return Err(Problem::unauthorized("the JWS key is not the certificate's key; sign with the certificate's key or an authorized account").into());
            }
        }
        Some(account) if account.id == cert.account_id => {}
        Some(account) => {
            let held = s.store.authorized_identifiers(&account.id, now).await?;
            let missing: Vec<String> = cert
                .identifiers
                .iter()
                .filter(|id| !held.contains(&id.authz_identifier()))
                .map(|id| id.value())
                .collect();
            if !missing.is_empty() {
                return Err(Problem::unauthorized(format!(
                    "account {} neither issued this certificate nor holds valid authorizations for {}",
                    account.id,
                    missing.join(", ")
                ))
                .into());
            }
        }
    }
    let mut tx = s.begin(&r).await?;
    if !tx
        .revoke_certificate(&cert.id, reason, reason == 1, now)
        .await?
    {
        return Err(Problem::new(
            ProblemType::AlreadyRevoked,
            format!("certificate {serial} is already revoked"),
        )
        .into());
    }
    tx.commit().await?;
    tracing::info!(audit = "revocation", serial = %serial, reason, "certificate revoked");
    Ok(StatusCode::OK.into_response())
}
