//! OCSP (RFC 6960): request parsing (POST body and the Appendix A.1 GET path), CertID
//! matching against an issuer, and BasicOCSPResponses signed directly by the issuing CA
//! (§2.6 "the CA who issued the certificate"), with the RFC 9654 nonce echoed. Errors map
//! to an `OCSPResponseStatus` (§4.2.1) with [`OcspError::response_status`].

use rcgen::{KeyPair, PublicKeyData, SigningKey};
use thiserror::Error;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use yasna::models::{GeneralizedTime, ObjectIdentifier};
use yasna::{ASN1Error, ASN1ErrorKind, BERReader, DERWriter, Tag};

use crate::crl::RevocationReason;

/// Most single requests accepted in one OCSPRequest, to bound the work per request.
pub const MAX_SINGLE_REQUESTS: usize = 32;
/// Longest GET path segment accepted (RFC 6960 Appendix A.1 requests are small).
pub const MAX_GET_PATH_LEN: usize = 16 * 1024;
/// RFC 9654 §2.1: nonce lengths a responder accepts (in octets).
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 1..=32;

const OID_NONCE: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 2];
const OID_BASIC: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 1];

/// RFC 6960 §4.1.1: the hash algorithm of a CertID (SHA-1 is what clients send by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// id-sha1 (1.3.14.3.2.26).
    Sha1,
    /// id-sha256 (2.16.840.1.101.3.4.2.1).
    Sha256,
    /// id-sha384 (2.16.840.1.101.3.4.2.2).
    Sha384,
    /// id-sha512 (2.16.840.1.101.3.4.2.3).
    Sha512,
}

impl HashAlg {
    const TABLE: [(HashAlg, &'static [u64]); 4] = [
        (Self::Sha1, &[1, 3, 14, 3, 2, 26]),
        (Self::Sha256, &[2, 16, 840, 1, 101, 3, 4, 2, 1]),
        (Self::Sha384, &[2, 16, 840, 1, 101, 3, 4, 2, 2]),
        (Self::Sha512, &[2, 16, 840, 1, 101, 3, 4, 2, 3]),
    ];

    /// The algorithm's OID arcs (RFC 5754 §2, RFC 3279 §2.2.2).
    pub fn oid(self) -> &'static [u64] {
        Self::TABLE
            .iter()
            .find(|(a, _)| *a == self)
            .map_or(&[], |(_, o)| o)
    }

    /// The algorithm for OID arcs, if supported.
    pub fn from_oid(oid: &[u64]) -> Option<Self> {
        Self::TABLE.iter().find(|(_, o)| *o == oid).map(|(a, _)| *a)
    }

    /// The digest of `data` with this algorithm.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use ring::digest;
        let alg = match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }

    fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// RFC 6960 §4.1.1 CertID: which certificate a single request asks about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertId {
    /// Hash algorithm of the two issuer hashes.
    pub hash_alg: HashAlg,
    /// Hash of the issuer's subject DN DER.
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's subjectPublicKey BIT STRING value.
    pub issuer_key_hash: Vec<u8>,
    /// Serial as unsigned big-endian octets without leading zero octets (zero is `[0]`).
    pub serial: Vec<u8>,
}

impl CertId {
    /// RFC 6960 §4.1.1: the CertID of serial `serial` issued by `issuer_cert_der`.
    pub fn for_serial(
        hash_alg: HashAlg,
        issuer_cert_der: &[u8],
        serial: &[u8],
    ) -> Result<Self, OcspError> {
        let (_, cert) = X509Certificate::from_der(issuer_cert_der)
            .map_err(|e| OcspError::BadIssuerCert(e.to_string()))?;
        Ok(CertId {
            hash_alg,
            issuer_name_hash: hash_alg.digest(cert.subject().as_raw()),
            issuer_key_hash: hash_alg.digest(&cert.public_key().subject_public_key.data),
            serial: normalize_serial(serial),
        })
    }
}

/// RFC 6960 §4.1.1 OCSPRequest, as far as a responder needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspRequest {
    /// One CertID per single request, in request order.
    pub cert_ids: Vec<CertId>,
    /// RFC 6960 §4.4.1 / RFC 9654: the nonce extension's extnValue content, to echo verbatim.
    pub nonce: Option<Vec<u8>>,
}

/// RFC 6960 §4.2.1 CertStatus of one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Not revoked (the CA issued it and it is not revoked).
    Good,
    /// Revoked at `at`, with the §5.3.1 reason when known.
    Revoked {
        /// revocationTime.
        at: OffsetDateTime,
        /// revocationReason; `None` or `Unspecified` leaves it out, as in the CRL.
        reason: Option<RevocationReason>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// RFC 6960 §4.2.1 OCSPResponseStatus values other than successful (a successful response
/// only comes from [`build_response`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OcspResponseStatus {
    /// malformedRequest (1): illegal confirmation request.
    MalformedRequest = 1,
    /// internalError (2): internal error in the issuer.
    InternalError = 2,
    /// tryLater (3): try again later.
    TryLater = 3,
    /// sigRequired (5): the request must be signed.
    SigRequired = 5,
    /// unauthorized (6): the responder is not authoritative for the certificate.
    Unauthorized = 6,
}

/// Why a request was refused or a response could not be built.
#[derive(Debug, Error)]
pub enum OcspError {
    /// The request is not a DER/BER OCSPRequest, or its base64/URL encoding is broken.
    #[error("malformed OCSP request: {0}")]
    Malformed(String),
    /// A CertID uses a hash algorithm other than SHA-1/256/384/512.
    #[error("unsupported CertID hash algorithm {0}")]
    UnsupportedHashAlgorithm(String),
    /// RFC 6960 §4.4: a critical request extension that the responder does not understand.
    #[error("unsupported critical extension {0}")]
    UnsupportedCriticalExtension(String),
    /// RFC 9654 §2.1: the nonce is shorter than 1 or longer than 32 octets.
    #[error("nonce of {0} octets; RFC 9654 allows 1 to 32")]
    BadNonce(usize),
    /// The request holds no single request, or more than [`MAX_SINGLE_REQUESTS`].
    #[error("request holds {0} single requests; 1 to 32 are accepted")]
    RequestCount(usize),
    /// The issuer certificate does not parse.
    #[error("issuer certificate does not parse: {0}")]
    BadIssuerCert(String),
    /// The private key does not belong to the issuer certificate.
    #[error("issuer key does not match the issuer certificate's public key")]
    KeyMismatch,
    /// The issuer key's algorithm has no OCSP signature algorithm here.
    #[error("no OCSP signature algorithm for the issuer key")]
    UnsupportedKeyAlgorithm,
    /// RFC 6960 §4.2.2.1: nextUpdate must be later than thisUpdate; times in 0..=9999.
    #[error("invalid response times: {0}")]
    BadTimes(&'static str),
    /// A response needs at least one SingleResponse.
    #[error("no single responses to sign")]
    NoResponses,
    /// Signing failed.
    #[error("signing the OCSP response failed: {0}")]
    Sign(#[from] rcgen::Error),
}

impl OcspError {
    /// RFC 6960 §2.3: the status to answer with: malformedRequest for bad requests,
    /// internalError for failures on the responder's side.
    pub fn response_status(&self) -> OcspResponseStatus {
        match self {
            Self::Malformed(_)
            | Self::UnsupportedHashAlgorithm(_)
            | Self::UnsupportedCriticalExtension(_)
            | Self::BadNonce(_)
            | Self::RequestCount(_) => OcspResponseStatus::MalformedRequest,
            _ => OcspResponseStatus::InternalError,
        }
    }
}

/// RFC 6960 §4.1.1: the CertIDs of an OCSPRequest (DER or BER), ignoring any signature.
pub fn parse_request(der: &[u8]) -> Result<Vec<CertId>, OcspError> {
    parse_request_with_nonce(der).map(|r| r.cert_ids)
}

/// RFC 6960 §4.1.1 and §4.4.1: the CertIDs and the nonce of an OCSPRequest.
pub fn parse_request_with_nonce(der: &[u8]) -> Result<OcspRequest, OcspError> {
    if !lengths_fit(der) {
        return Err(OcspError::Malformed(
            "not an OCSPRequest (an element's length runs past what encloses it)".into(),
        ));
    }
    let raw = yasna::parse_ber(der, read_ocsp_request)
        .map_err(|e| OcspError::Malformed(format!("not an OCSPRequest ({e})")))?;
    if raw.ids.is_empty() || raw.ids.len() > MAX_SINGLE_REQUESTS {
        return Err(OcspError::RequestCount(raw.ids.len()));
    }
    let cert_ids = raw
        .ids
        .into_iter()
        .map(check_cert_id)
        .collect::<Result<_, _>>()?;
    let mut nonce = None;
    for ext in &raw.exts {
        if ext.oid.components() == OID_NONCE {
            nonce = Some(check_nonce(&ext.value)?);
        } else if ext.critical {
            return Err(OcspError::UnsupportedCriticalExtension(ext.oid.to_string()));
        }
    }
    // §4.4: unknown extensions are ignored unless critical; none are known per request.
    if let Some(ext) = raw.single_exts.iter().find(|e| e.critical) {
        return Err(OcspError::UnsupportedCriticalExtension(ext.oid.to_string()));
    }
    Ok(OcspRequest { cert_ids, nonce })
}

/// True when every BER element (X.690 §8.1) in `input` has a length that fits in what
/// encloses it. yasna 0.6 skips the elements read with `read_der` by an unchecked
/// `pos + length`: a length near `usize::MAX` panics on overflow in debug builds, and in
/// release builds moves the reader backwards, which panics on a reversed slice or loops
/// forever inside an indefinite-length element (found by fuzzing, issue 15). So yasna
/// only sees input whose lengths all fit.
fn lengths_fit(input: &[u8]) -> bool {
    /// Most nesting looked into; a real OCSPRequest nests about 8 deep.
    const MAX_DEPTH: usize = 64;
    fn element(buf: &[u8], pos: &mut usize, depth: usize) -> Option<()> {
        let mut byte = || {
            let b = *buf.get(*pos)?;
            *pos += 1;
            Some(b)
        };
        let id = byte()?;
        if id & 0x1f == 0x1f {
            while byte()? & 0x80 != 0 {}
        }
        let constructed = id & 0x20 != 0;
        let first = byte()?;
        if first == 0x80 {
            // Indefinite length: constructed only, children up to the end-of-contents octets.
            if !constructed || depth >= MAX_DEPTH {
                return None;
            }
            while buf.get(*pos..*pos + 2)? != [0, 0] {
                element(buf, pos, depth + 1)?;
            }
            *pos += 2;
            return Some(());
        }
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            let octets = buf.get(*pos..pos.checked_add(n)?)?;
            *pos += n;
            octets.iter().try_fold(0usize, |acc, b| {
                acc.checked_mul(256)?.checked_add(usize::from(*b))
            })?
        };
        let end = pos.checked_add(len).filter(|end| *end <= buf.len())?;
        if constructed {
            if depth >= MAX_DEPTH {
                return None;
            }
            while *pos < end {
                element(&buf[..end], pos, depth + 1)?;
            }
        }
        *pos = end;
        Some(())
    }
    let mut pos = 0;
    while pos < input.len() {
        if element(input, &mut pos, 0).is_none() {
            return false;
        }
    }
    true
}

/// RFC 6960 Appendix A.1: the DER request inside a GET path segment, which is the
/// URL-encoded base64 of the DER. Standard and URL-safe alphabets, padded or not.
pub fn parse_get_path(path_segment: &str) -> Result<Vec<u8>, OcspError> {
    if path_segment.is_empty() || path_segment.len() > MAX_GET_PATH_LEN {
        return Err(OcspError::Malformed(format!(
            "GET path of {} characters",
            path_segment.len()
        )));
    }
    let b64 = percent_decode(path_segment.as_bytes())?;
    base64_decode(&b64)
}

/// RFC 6960 §4.1.1: true when `id`'s name and key hashes are those of `issuer_cert_der`.
pub fn cert_id_matches_issuer(id: &CertId, issuer_cert_der: &[u8]) -> bool {
    CertId::for_serial(id.hash_alg, issuer_cert_der, &id.serial).is_ok_and(|mine| {
        mine.issuer_name_hash == id.issuer_name_hash && mine.issuer_key_hash == id.issuer_key_hash
    })
}

/// RFC 6960 §4.2.1: a successful OCSPResponse whose BasicOCSPResponse answers `responses`,
/// signed by the issuer itself (responderID byKey, §4.2.2.3), with `nonce` (the request's
/// nonce extnValue, as from [`parse_request_with_nonce`]) echoed as a response extension.
pub fn build_response(
    issuer_cert_der: &[u8],
    issuer_key: &KeyPair,
    responses: &[(CertId, CertStatus)],
    produced_at: OffsetDateTime,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, OcspError> {
    let (_, cert) = X509Certificate::from_der(issuer_cert_der)
        .map_err(|e| OcspError::BadIssuerCert(e.to_string()))?;
    let spk = cert.public_key().subject_public_key.data.as_ref();
    if issuer_key.der_bytes() != spk {
        return Err(OcspError::KeyMismatch);
    }
    let sig_alg = signature_algorithm(issuer_key)?;
    if responses.is_empty() {
        return Err(OcspError::NoResponses);
    }
    if next_update <= this_update {
        return Err(OcspError::BadTimes(
            "nextUpdate must be later than thisUpdate",
        ));
    }
    let mut times = vec![
        gen_time(produced_at)?,
        gen_time(this_update)?,
        gen_time(next_update)?,
    ];
    for (_, status) in responses {
        if let CertStatus::Revoked { at, .. } = status {
            times.push(gen_time(*at)?);
        }
    }
    let key_hash = HashAlg::Sha1.digest(spk);

    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            // version [0] DEFAULT v1 is omitted (DER).
            w.next()
                .write_tagged(Tag::context(2), |w| w.write_bytes(&key_hash));
            w.next().write_generalized_time(&times[0]);
            w.next().write_sequence_of(|w| {
                let mut revoked_times = times[3..].iter();
                for (id, status) in responses {
                    w.next().write_sequence(|w| {
                        write_cert_id(w.next(), id);
                        write_status(w.next(), status, &mut revoked_times);
                        w.next().write_generalized_time(&times[1]);
                        w.next()
                            .write_tagged(Tag::context(0), |w| w.write_generalized_time(&times[2]));
                    });
                }
            });
            if let Some(nonce) = nonce {
                w.next().write_tagged(Tag::context(1), |w| {
                    w.write_sequence(|w| {
                        w.next().write_sequence(|w| {
                            w.next().write_oid(&ObjectIdentifier::from_slice(OID_NONCE));
                            w.next().write_bytes(nonce);
                        });
                    });
                });
            }
        });
    });
    let signature = issuer_key.sign(&tbs)?;
    let basic = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            write_sig_alg(w.next(), sig_alg);
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
        });
    });
    tracing::debug!(
        responses = responses.len(),
        nonce = nonce.is_some(),
        "built OCSP response"
    );
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_enum(0);
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_oid(&ObjectIdentifier::from_slice(OID_BASIC));
                    w.next().write_bytes(&basic);
                });
            });
        });
    }))
}

/// RFC 6960 §4.2.1: an unsuccessful OCSPResponse (status only, no responseBytes).
pub fn error_response(status: OcspResponseStatus) -> Vec<u8> {
    yasna::construct_der(|w| w.write_sequence(|w| w.next().write_enum(status as i64)))
}

/// A signature AlgorithmIdentifier: OID arcs and whether parameters are NULL (RSA) or
/// absent (ECDSA, Ed25519), per RFC 5758 §3.2, RFC 4055 §5 and RFC 8410 §3.
type SigAlg = (&'static [u64], bool);

fn signature_algorithm(key: &KeyPair) -> Result<SigAlg, OcspError> {
    let alg = key.algorithm();
    let table: [(&rcgen::SignatureAlgorithm, SigAlg); 6] = [
        (
            &rcgen::PKCS_ECDSA_P256_SHA256,
            (&[1, 2, 840, 10045, 4, 3, 2], false),
        ),
        (
            &rcgen::PKCS_ECDSA_P384_SHA384,
            (&[1, 2, 840, 10045, 4, 3, 3], false),
        ),
        (
            &rcgen::PKCS_RSA_SHA256,
            (&[1, 2, 840, 113549, 1, 1, 11], true),
        ),
        (
            &rcgen::PKCS_RSA_SHA384,
            (&[1, 2, 840, 113549, 1, 1, 12], true),
        ),
        (
            &rcgen::PKCS_RSA_SHA512,
            (&[1, 2, 840, 113549, 1, 1, 13], true),
        ),
        (&rcgen::PKCS_ED25519, (&[1, 3, 101, 112], false)),
    ];
    table
        .iter()
        .find(|(a, _)| *a == alg)
        .map(|(_, s)| *s)
        .ok_or(OcspError::UnsupportedKeyAlgorithm)
}

fn write_sig_alg(w: DERWriter, (oid, null): SigAlg) {
    w.write_sequence(|w| {
        w.next().write_oid(&ObjectIdentifier::from_slice(oid));
        if null {
            w.next().write_null();
        }
    });
}

fn write_cert_id(w: DERWriter, id: &CertId) {
    w.write_sequence(|w| {
        w.next().write_sequence(|w| {
            w.next()
                .write_oid(&ObjectIdentifier::from_slice(id.hash_alg.oid()));
            w.next().write_null();
        });
        w.next().write_bytes(&id.issuer_name_hash);
        w.next().write_bytes(&id.issuer_key_hash);
        w.next().write_bigint_bytes(&id.serial, true);
    });
}

fn write_status<'t>(
    w: DERWriter,
    status: &CertStatus,
    revoked_times: &mut impl Iterator<Item = &'t GeneralizedTime>,
) {
    match status {
        CertStatus::Good => w.write_tagged_implicit(Tag::context(0), |w| w.write_null()),
        CertStatus::Unknown => w.write_tagged_implicit(Tag::context(2), |w| w.write_null()),
        CertStatus::Revoked { reason, .. } => {
            let at = revoked_times.next().expect("one time per revoked status");
            w.write_tagged_implicit(Tag::context(1), |w| {
                w.write_sequence(|w| {
                    w.next().write_generalized_time(at);
                    if let Some(r) = reason.filter(|r| *r != RevocationReason::Unspecified) {
                        w.next()
                            .write_tagged(Tag::context(0), |w| w.write_enum(r.code().into()));
                    }
                });
            });
        }
    }
}

/// RFC 5280 §4.1.2.5.2 (applied by RFC 6960 §4.2.2.1): UTC, whole seconds.
fn gen_time(t: OffsetDateTime) -> Result<GeneralizedTime, OcspError> {
    let t = t
        .replace_nanosecond(0)
        .map_err(|_| OcspError::BadTimes("time out of range"))?;
    GeneralizedTime::from_datetime_opt(t).ok_or(OcspError::BadTimes("year outside 0..=9999"))
}

struct RawCertId {
    hash_oid: ObjectIdentifier,
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
    serial: Vec<u8>,
    nonnegative: bool,
}

struct RawExt {
    oid: ObjectIdentifier,
    critical: bool,
    value: Vec<u8>,
}

struct RawRequest {
    ids: Vec<RawCertId>,
    exts: Vec<RawExt>,
    single_exts: Vec<RawExt>,
}

fn read_ocsp_request(r: BERReader) -> Result<RawRequest, ASN1Error> {
    r.read_sequence(|r| {
        let req = r.next().read_sequence(|r| {
            let version = r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_u8()))?;
            if version.is_some_and(|v| v != 0) {
                return Err(ASN1Error::new(ASN1ErrorKind::Invalid));
            }
            // requestorName [1] EXPLICIT GeneralName OPTIONAL: not used.
            r.read_optional(|r| r.read_tagged(Tag::context(1), |r| r.read_der()))?;
            let mut single_exts = Vec::new();
            let ids = r.next().collect_sequence_of(|r| {
                r.read_sequence(|r| {
                    let id = read_cert_id(r.next())?;
                    let exts = r.read_optional(|r| r.read_tagged(Tag::context(0), read_exts))?;
                    single_exts.extend(exts.unwrap_or_default());
                    Ok(id)
                })
            })?;
            let exts = r.read_optional(|r| r.read_tagged(Tag::context(2), read_exts))?;
            Ok(RawRequest {
                ids,
                exts: exts.unwrap_or_default(),
                single_exts,
            })
        })?;
        // optionalSignature [0] EXPLICIT Signature OPTIONAL: not checked (§4.1.2).
        r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_der()))?;
        Ok(req)
    })
}

fn read_cert_id(r: BERReader) -> Result<RawCertId, ASN1Error> {
    r.read_sequence(|r| {
        let hash_oid = r.next().read_sequence(|r| {
            let oid = r.next().read_oid()?;
            r.read_optional(|r| r.read_der())?;
            Ok(oid)
        })?;
        let name_hash = r.next().read_bytes()?;
        let key_hash = r.next().read_bytes()?;
        let (serial, nonnegative) = r.next().read_bigint_bytes()?;
        Ok(RawCertId {
            hash_oid,
            name_hash,
            key_hash,
            serial,
            nonnegative,
        })
    })
}

fn read_exts(r: BERReader) -> Result<Vec<RawExt>, ASN1Error> {
    r.collect_sequence_of(|r| {
        r.read_sequence(|r| {
            let oid = r.next().read_oid()?;
            let critical = r.read_optional(|r| r.read_bool())?.unwrap_or(false);
            let value = r.next().read_bytes()?;
            Ok(RawExt {
                oid,
                critical,
                value,
            })
        })
    })
}

fn check_cert_id(raw: RawCertId) -> Result<CertId, OcspError> {
    let hash_alg = HashAlg::from_oid(raw.hash_oid.components())
        .ok_or_else(|| OcspError::UnsupportedHashAlgorithm(raw.hash_oid.to_string()))?;
    let want = hash_alg.output_len();
    if raw.name_hash.len() != want || raw.key_hash.len() != want {
        return Err(OcspError::Malformed(format!(
            "CertID hashes of {} and {} octets for {hash_alg:?}",
            raw.name_hash.len(),
            raw.key_hash.len()
        )));
    }
    if !raw.nonnegative {
        return Err(OcspError::Malformed("negative serial number".into()));
    }
    Ok(CertId {
        hash_alg,
        issuer_name_hash: raw.name_hash,
        issuer_key_hash: raw.key_hash,
        serial: normalize_serial(&raw.serial),
    })
}

/// RFC 9654 §2.1 bounds the Nonce OCTET STRING inside extnValue; very old clients put the
/// bytes in extnValue directly, so a value that is not one OCTET STRING counts as raw.
fn check_nonce(value: &[u8]) -> Result<Vec<u8>, OcspError> {
    let len = yasna::parse_der(value, |r| r.read_bytes()).map_or(value.len(), |n| n.len());
    if !NONCE_LEN.contains(&len) {
        return Err(OcspError::BadNonce(len));
    }
    Ok(value.to_vec())
}

fn normalize_serial(serial: &[u8]) -> Vec<u8> {
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    match &serial[start..] {
        [] => vec![0],
        s => s.to_vec(),
    }
}

fn percent_decode(input: &[u8]) -> Result<Vec<u8>, OcspError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = match input[i] {
            b'%' => {
                let hex = input
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let v = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                i += 2;
                v.ok_or_else(|| OcspError::Malformed("bad percent-encoding in GET path".into()))?
            }
            // A '+' that went through form decoding comes back as a space.
            b' ' => b'+',
            b => b,
        };
        out.push(b);
        i += 1;
    }
    Ok(out)
}

fn base64_decode(input: &[u8]) -> Result<Vec<u8>, OcspError> {
    let bad = |why: &str| OcspError::Malformed(format!("bad base64 in GET path: {why}"));
    let body_len = input.iter().rposition(|b| *b != b'=').map_or(0, |p| p + 1);
    let pad = input.len() - body_len;
    if pad > 2 || (pad > 0 && !input.len().is_multiple_of(4)) || body_len % 4 == 1 || body_len == 0
    {
        return Err(bad("wrong length or padding"));
    }
    let mut out = Vec::with_capacity(body_len * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in &input[..body_len] {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return Err(bad("character outside both alphabets")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}
