//! Leaf signing (RFC 5280 §4; CA/Browser Forum BR §7.1 subscriber profile): a certificate for
//! a key we do not hold, from the hierarchy's leaf signer.

use crate::error::CaError;
use crate::hierarchy::{Hierarchy, hex, random};
use crate::profile::Profile;
use cobble_core::identifier::Identifier;
use rcgen::{
    CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use time::{Duration, OffsetDateTime};

/// Where relying parties find revocation and issuer information (RFC 5280 §4.2.2.1, §4.2.1.13).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssuanceUrls {
    /// OCSP responder (AIA id-ad-ocsp).
    pub ocsp: Option<String>,
    /// Where the issuer certificate is served (AIA id-ad-caIssuers).
    pub ca_issuers: Option<String>,
    /// CRL distribution point.
    pub crl: Option<String>,
}

/// What to put in a leaf (RFC 8555 §7.4: the CSR's key, the order's names).
#[derive(Debug, Clone)]
pub struct LeafRequest<'a> {
    /// The subject public key, SubjectPublicKeyInfo DER (from [`crate::csr::CheckedCsr`]).
    pub spki_der: &'a [u8],
    /// The names, in SAN order.
    pub names: &'a [Identifier],
    /// The profile the order asked for.
    pub profile: &'a Profile,
    /// The current time (from the injectable clock).
    pub now: OffsetDateTime,
    /// The order's `notBefore` (RFC 8555 §7.1.3), else now minus one minute.
    pub not_before: Option<OffsetDateTime>,
    /// The order's `notAfter`, else notBefore + the profile's validity - 1 s.
    pub not_after: Option<OffsetDateTime>,
    /// AIA and CRL DP URLs.
    pub urls: IssuanceUrls,
    /// Add the TLS Feature status_request extension (RFC 7633), as the CSR asked.
    pub must_staple: bool,
}

/// A signed leaf and what the server stores and serves about it.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The certificate, PEM.
    pub pem: String,
    /// The serial, positive, as unsigned big-endian bytes (20 bytes).
    pub serial: Vec<u8>,
    /// The serial as lowercase hex (Pebble's `cert-status-by-serial` form).
    pub serial_hex: String,
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// One chain per root (RFC 8555 §7.4.2 alternates): the leaf PEM then the intermediates,
    /// root excluded; index 0 is the primary root's.
    pub chains: Vec<String>,
}

/// OIDs of the extensions rcgen has no field for.
const OID_AIA: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
const OID_AD_OCSP: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1];
const OID_AD_CA_ISSUERS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];
const OID_CERT_POLICIES: &[u64] = &[2, 5, 29, 32];
/// CA/B Forum domain-validated policy.
const OID_DV_POLICY: &[u64] = &[2, 23, 140, 1, 2, 1];
const OID_TLS_FEATURE: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 24];

/// rsaEncryption, the one SPKI algorithm that gets keyEncipherment (RFC 5280 §4.2.1.3).
const OID_RSA: &str = "1.2.840.113549.1.1.1";

impl Hierarchy {
    /// Signs a leaf for `req` with the leaf-signing intermediate (RFC 5280 §4.1).
    pub fn issue(&self, req: &LeafRequest<'_>) -> Result<IssuedCert, CaError> {
        if req.names.is_empty() {
            return Err(CaError::Request(
                "a certificate needs at least one name".into(),
            ));
        }
        let is_rsa = x509_parser::prelude::FromDer::from_der(req.spki_der)
            .map(|(_, s): (_, x509_parser::x509::SubjectPublicKeyInfo<'_>)| {
                s.algorithm.algorithm.to_id_string() == OID_RSA
            })
            .unwrap_or(false);

        let not_before = req.not_before.unwrap_or(req.now - Duration::minutes(1));
        let validity = i64::try_from(req.profile.validity_secs)
            .map_err(|_| CaError::Request("profile validity too large".into()))?;
        let not_after = req
            .not_after
            .unwrap_or(not_before + Duration::seconds(validity) - Duration::seconds(1));
        if not_after <= not_before {
            return Err(CaError::Request(format!(
                "notAfter {not_after} is not after notBefore {not_before}"
            )));
        }

        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        if req.profile.promote_common_name
            && let Some(cn) = req.names.iter().find_map(|n| match n {
                Identifier::Dns(d) if d.len() <= 64 => Some(d.clone()),
                _ => None,
            })
        {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        p.subject_alt_names = req
            .names
            .iter()
            .map(|n| match n {
                Identifier::Dns(d) => d
                    .clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|e| CaError::Request(format!("DNS name {d:?}: {e}"))),
                Identifier::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            })
            .collect::<Result<_, _>>()?;
        let serial = random_serial();
        p.serial_number = Some(SerialNumber::from_slice(&serial));
        p.not_before = not_before;
        p.not_after = not_after;
        p.is_ca = IsCa::ExplicitNoCa; // BasicConstraints CA:FALSE, plus SKI
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if is_rsa {
            p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if req.profile.client_auth {
            p.extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        p.use_authority_key_identifier_extension = true;
        if let Some(crl) = &req.urls.crl {
            p.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![crl.clone()],
            }];
        }
        if let Some(aia) = aia_extension(&req.urls) {
            p.custom_extensions.push(aia);
        }
        p.custom_extensions.push(policies_extension());
        if req.must_staple {
            p.custom_extensions.push(must_staple_extension());
        }

        let (der, pem) = match crate::p521::point(req.spki_der) {
            // ring cannot hold a P-521 key: sign for a stand-in, then relabel (p521.rs).
            Some(point) => {
                let stand_in = crate::p521::StandIn(point);
                let cert = p.signed_by(&stand_in, &self.issuer)?;
                let der =
                    crate::p521::relabel(cert.der(), &stand_in, req.spki_der, self.issuer.key())?;
                let pem = crate::pem::encode("CERTIFICATE", &der);
                (der, pem)
            }
            None => {
                let spki = SubjectPublicKeyInfo::from_der(req.spki_der).map_err(|e| {
                    CaError::Request(format!("subject key not supported for signing: {e}"))
                })?;
                let cert = p.signed_by(&spki, &self.issuer)?;
                (cert.der().to_vec(), cert.pem())
            }
        };
        let chains = (0..self.root_count())
            .map(|i| format!("{pem}{}", self.chain_pem(i).unwrap_or_default()))
            .collect();
        Ok(IssuedCert {
            der,
            serial_hex: hex(&serial),
            serial: serial.to_vec(),
            pem,
            not_before,
            not_after,
            chains,
        })
    }
}

/// 20 random bytes, top bit clear (positive, RFC 5280 §4.1.2.2) and first byte non-zero,
/// so the DER INTEGER is exactly 20 bytes.
pub(crate) fn random_serial() -> [u8; 20] {
    let mut s = random::<20>();
    s[0] = (s[0] & 0x7f).max(1);
    s
}

/// AuthorityInfoAccess (RFC 5280 §4.2.2.1) with the URLs that are set; `None` if neither is.
fn aia_extension(urls: &IssuanceUrls) -> Option<CustomExtension> {
    let entries: Vec<(&[u64], &str)> = [
        (OID_AD_OCSP, urls.ocsp.as_deref()),
        (OID_AD_CA_ISSUERS, urls.ca_issuers.as_deref()),
    ]
    .into_iter()
    .filter_map(|(oid, url)| url.map(|u| (oid, u)))
    .collect();
    if entries.is_empty() {
        return None;
    }
    let der = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            for (oid, url) in &entries {
                w.next().write_sequence(|w| {
                    w.next()
                        .write_oid(&yasna::models::ObjectIdentifier::from_slice(oid));
                    // GeneralName uniformResourceIdentifier [6] IA5String
                    w.next()
                        .write_tagged_implicit(yasna::Tag::context(6), |w| w.write_ia5_string(url));
                });
            }
        })
    });
    Some(CustomExtension::from_oid_content(OID_AIA, der))
}

/// CertificatePolicies (RFC 5280 §4.2.1.4) with the CA/B Forum DV policy only.
fn policies_extension() -> CustomExtension {
    let der = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                w.next()
                    .write_oid(&yasna::models::ObjectIdentifier::from_slice(OID_DV_POLICY));
            });
        })
    });
    CustomExtension::from_oid_content(OID_CERT_POLICIES, der)
}

/// TLS Feature with status_request (5): OCSP must-staple (RFC 7633 §4).
fn must_staple_extension() -> CustomExtension {
    let der = yasna::construct_der(|w| w.write_sequence(|w| w.next().write_u8(5)));
    CustomExtension::from_oid_content(OID_TLS_FEATURE, der)
}
