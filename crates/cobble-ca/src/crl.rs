//! CRLs (RFC 5280 §5): revocation reasons and a signer for version 2 CRLs with the
//! authority key identifier (§5.2.1), the CRL number (§5.2.3) and, when a URL is given,
//! the issuing distribution point (§5.2.5). The issuer is passed as its certificate's DER
//! and its private key, so callers hand over whatever their hierarchy holds.

use rcgen::{
    CertificateRevocationListParams, CrlDistributionPoint, CrlIssuingDistributionPoint, CrlScope,
    Issuer, KeyIdMethod, KeyPair, PublicKeyData, RevokedCertParams, SerialNumber,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::OffsetDateTime;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

/// RFC 5280 §4.1.2.2: certificate users must handle serial numbers of up to 20 octets.
pub const MAX_SERIAL_LEN: usize = 20;

/// RFC 5280 §5.3.1 CRLReason codes (the same values appear in OCSP, RFC 6960 §4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RevocationReason {
    /// unspecified (0); RFC 5280 §5.3.1 says to omit the reason code instead of using it.
    Unspecified,
    /// keyCompromise (1).
    KeyCompromise,
    /// cACompromise (2).
    CaCompromise,
    /// affiliationChanged (3).
    AffiliationChanged,
    /// superseded (4).
    Superseded,
    /// cessationOfOperation (5).
    CessationOfOperation,
    /// certificateHold (6).
    CertificateHold,
    /// removeFromCRL (8), only meaningful in delta CRLs.
    RemoveFromCrl,
    /// privilegeWithdrawn (9).
    PrivilegeWithdrawn,
    /// aACompromise (10).
    AaCompromise,
}

impl RevocationReason {
    /// Every RFC 5280 §5.3.1 reason, in code order.
    pub const ALL: [RevocationReason; 10] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::RemoveFromCrl,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// RFC 5280 §5.3.1: the reason for a CRLReason code; `None` for 7 and codes above 10.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Unspecified,
            1 => Self::KeyCompromise,
            2 => Self::CaCompromise,
            3 => Self::AffiliationChanged,
            4 => Self::Superseded,
            5 => Self::CessationOfOperation,
            6 => Self::CertificateHold,
            8 => Self::RemoveFromCrl,
            9 => Self::PrivilegeWithdrawn,
            10 => Self::AaCompromise,
            _ => return None,
        })
    }

    /// RFC 5280 §5.3.1: the CRLReason code of this reason.
    pub const fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::RemoveFromCrl => 8,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// RFC 8555 §7.6 with CA/B Forum BR §7.2.2: the reasons a revokeCert request may carry
    /// (unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation,
    /// privilegeWithdrawn); others are refused with `badRevocationReason`.
    pub const fn is_acme_accepted(self) -> bool {
        matches!(self.code(), 0 | 1 | 3 | 4 | 5 | 9)
    }

    fn to_rcgen(self) -> rcgen::RevocationReason {
        use rcgen::RevocationReason as R;
        match self {
            Self::Unspecified => R::Unspecified,
            Self::KeyCompromise => R::KeyCompromise,
            Self::CaCompromise => R::CaCompromise,
            Self::AffiliationChanged => R::AffiliationChanged,
            Self::Superseded => R::Superseded,
            Self::CessationOfOperation => R::CessationOfOperation,
            Self::CertificateHold => R::CertificateHold,
            Self::RemoveFromCrl => R::RemoveFromCrl,
            Self::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
            Self::AaCompromise => R::AaCompromise,
        }
    }
}

/// RFC 5280 §5.1.2.6: one revoked certificate as listed in a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The certificate's serial number as unsigned big-endian octets (leading zero
    /// octets are ignored; at most [`MAX_SERIAL_LEN`] significant octets).
    pub serial: Vec<u8>,
    /// When the CA processed the revocation (revocationDate).
    pub revoked_at: OffsetDateTime,
    /// The reasonCode entry extension (§5.3.1); `None` or `Unspecified` leaves it out.
    pub reason: Option<RevocationReason>,
}

/// Why a CRL could not be built; all of these are the caller's or the CA's fault, never
/// the relying party's.
#[derive(Debug, Error)]
pub enum CrlError {
    /// The issuer certificate is not parseable DER X.509.
    #[error("issuer certificate does not parse: {0}")]
    BadIssuerCert(String),
    /// The private key does not belong to the issuer certificate's public key.
    #[error("issuer key does not match the issuer certificate's public key")]
    KeyMismatch,
    /// RFC 5280 §4.2.1.3: the issuer has a keyUsage extension without cRLSign.
    #[error("issuer certificate's key usage does not include cRLSign")]
    NotCrlSigner,
    /// RFC 5280 §5.1.2.5: nextUpdate must be later than thisUpdate.
    #[error("nextUpdate must be later than thisUpdate")]
    BadWindow,
    /// RFC 5280 §4.1.2.2: a serial number is empty, zero or longer than 20 octets.
    #[error("invalid serial number {0}: must be 1..=20 significant octets and not zero")]
    BadSerial(String),
    /// RFC 5280 §5.1.2.3: the issuer name could not be copied byte for byte from the
    /// issuer certificate's subject, so relying parties would not match the CRL.
    #[error("CRL issuer name would differ from the issuer certificate's subject")]
    IssuerNameChanged,
    /// rcgen refused to encode or sign the CRL.
    #[error("signing the CRL failed: {0}")]
    Sign(#[from] rcgen::Error),
}

/// RFC 5280 §5: a DER CRL (version 2) signed by the issuer with `issuer_key`, listing
/// `entries`, with the AKI taken from the issuer's SKI, the CRL number `crl_number`, and an
/// issuing distribution point (critical, onlyContainsUserCerts) naming `idp_url` when given.
/// Pass `idp_url: None` for a CRL that also covers CA certificates.
pub fn build_crl(
    issuer_cert_der: &[u8],
    issuer_key: &KeyPair,
    entries: &[RevokedEntry],
    crl_number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    idp_url: Option<&str>,
) -> Result<Vec<u8>, CrlError> {
    if next_update <= this_update {
        return Err(CrlError::BadWindow);
    }
    let (_, cert) = X509Certificate::from_der(issuer_cert_der)
        .map_err(|e| CrlError::BadIssuerCert(e.to_string()))?;
    let spk = cert.public_key().subject_public_key.data.as_ref();
    if issuer_key.der_bytes() != spk {
        return Err(CrlError::KeyMismatch);
    }
    let key_id = issuer_key_identifier(&cert);
    let subject_raw = cert.subject().as_raw();

    let revoked_certs = entries
        .iter()
        .map(|e| {
            Ok(RevokedCertParams {
                serial_number: SerialNumber::from_slice(significant_serial(&e.serial)?),
                revocation_time: e.revoked_at,
                reason_code: e.reason.map(RevocationReason::to_rcgen),
                invalidity_date: None,
            })
        })
        .collect::<Result<Vec<_>, CrlError>>()?;

    let issuer = Issuer::from_ca_cert_der(&issuer_cert_der.into(), issuer_key)?;
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from(crl_number),
        issuing_distribution_point: idp_url.map(|url| CrlIssuingDistributionPoint {
            distribution_point: CrlDistributionPoint {
                uris: vec![url.to_owned()],
            },
            scope: Some(CrlScope::UserCertsOnly),
        }),
        revoked_certs,
        key_identifier_method: KeyIdMethod::PreSpecified(key_id),
    };
    let crl = params.signed_by(&issuer).map_err(|e| match e {
        rcgen::Error::IssuerNotCrlSigner => CrlError::NotCrlSigner,
        rcgen::Error::InvalidCrlNextUpdate => CrlError::BadWindow,
        other => CrlError::Sign(other),
    })?;
    let der = crl.der().to_vec();

    // rcgen re-encodes the issuer name from its parsed form; make sure it came out identical.
    let (_, parsed) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der)
        .map_err(|_| CrlError::IssuerNameChanged)?;
    if parsed.issuer().as_raw() != subject_raw {
        return Err(CrlError::IssuerNameChanged);
    }
    tracing::debug!(crl_number, entries = entries.len(), "built CRL");
    Ok(der)
}

/// RFC 5280 §5.2.1: the AKI keyIdentifier must equal the issuer's SKI; without an SKI, use
/// the §4.2.1.2 method (1) SHA-1 of the subjectPublicKey, as OpenSSL does.
pub(crate) fn issuer_key_identifier(cert: &X509Certificate<'_>) -> Vec<u8> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(kid) => Some(kid.0.to_vec()),
            _ => None,
        })
        .unwrap_or_else(|| {
            let spk = cert.public_key().subject_public_key.data.as_ref();
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, spk)
                .as_ref()
                .to_vec()
        })
}

/// The serial without leading zero octets, checked against RFC 5280 §4.1.2.2.
fn significant_serial(serial: &[u8]) -> Result<&[u8], CrlError> {
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    let sig = &serial[start..];
    if sig.is_empty() || sig.len() > MAX_SERIAL_LEN {
        return Err(CrlError::BadSerial(hex(serial)));
    }
    Ok(sig)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_round_trip() {
        // (code, reason, accepted by ACME revokeCert per RFC 8555 §7.6 / BR §7.2.2)
        let table: &[(u8, Option<RevocationReason>, bool)] = &[
            (0, Some(RevocationReason::Unspecified), true),
            (1, Some(RevocationReason::KeyCompromise), true),
            (2, Some(RevocationReason::CaCompromise), false),
            (3, Some(RevocationReason::AffiliationChanged), true),
            (4, Some(RevocationReason::Superseded), true),
            (5, Some(RevocationReason::CessationOfOperation), true),
            (6, Some(RevocationReason::CertificateHold), false),
            (7, None, false),
            (8, Some(RevocationReason::RemoveFromCrl), false),
            (9, Some(RevocationReason::PrivilegeWithdrawn), true),
            (10, Some(RevocationReason::AaCompromise), false),
            (11, None, false),
            (255, None, false),
        ];
        for (code, want, accepted) in table {
            let got = RevocationReason::from_code(*code);
            assert_eq!(got, *want, "code {code}");
            if let Some(r) = got {
                assert_eq!(r.code(), *code);
                assert_eq!(r.is_acme_accepted(), *accepted, "code {code}");
            }
        }
        for r in RevocationReason::ALL {
            assert_eq!(RevocationReason::from_code(r.code()), Some(r));
        }
    }

    #[test]
    fn serial_checks() {
        // (input, Ok(significant) or error)
        let long = [0x7fu8; 21];
        let table: &[(&[u8], Option<&[u8]>)] = &[
            (&[0x01], Some(&[0x01])),
            (&[0x00, 0x00, 0x8f, 0x01], Some(&[0x8f, 0x01])),
            (&[0x7f; 20], Some(&[0x7f; 20])),
            (&[], None),
            (&[0x00, 0x00], None),
            (&long, None),
        ];
        for (input, want) in table {
            match (significant_serial(input), want) {
                (Ok(got), Some(w)) => assert_eq!(got, *w),
                (Err(CrlError::BadSerial(_)), None) => {}
                (got, _) => panic!("{input:?}: unexpected {got:?}"),
            }
        }
    }
}
