//! ACME Renewal Information certificate identifiers (RFC 9773 §4.1):
//! `base64url(AKI keyIdentifier) "." base64url(serial DER content octets)`.

use crate::error::CaError;
use cobble_core::{Problem, b64};
use x509_parser::extensions::ParsedExtension;

/// The RFC 9773 §4.1 certID of a certificate: its AKI keyIdentifier and its serial number's
/// DER content octets (a leading zero kept), each base64url without padding, joined by `.`.
pub fn ari_cert_id(cert_der: &[u8]) -> Result<String, CaError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| CaError::Parse(format!("certificate: {e}")))?;
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref(),
            _ => None,
        })
        .ok_or_else(|| {
            CaError::Parse("certificate has no authorityKeyIdentifier keyIdentifier".into())
        })?;
    Ok(format!(
        "{}.{}",
        b64::encode(aki.0),
        b64::encode(cert.tbs_certificate.raw_serial())
    ))
}

/// Splits a certID from a `renewalInfo` URL or a `replaces` field into (AKI keyIdentifier,
/// serial DER content octets); anything else is `malformed` (RFC 9773 §4.1).
pub fn parse_ari_cert_id(id: &str) -> Result<(Vec<u8>, Vec<u8>), Problem> {
    let bad = |why: &str| {
        Problem::malformed(format!(
            "{id:?} is not an ARI certID (RFC 9773 §4.1: base64url(AKI keyIdentifier) \".\" \
             base64url(serial)): {why}"
        ))
    };
    let (aki, serial) = id.split_once('.').ok_or_else(|| bad("no '.'"))?;
    if serial.contains('.') {
        return Err(bad("more than one '.'"));
    }
    let aki = b64::decode(aki).map_err(|_| bad("the key identifier is not base64url"))?;
    let serial = b64::decode(serial).map_err(|_| bad("the serial is not base64url"))?;
    if aki.is_empty() || serial.is_empty() {
        return Err(bad("an empty part"));
    }
    Ok((aki, serial))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        // (input, Some((aki, serial)) or None for malformed)
        type Row = (&'static str, Option<(&'static [u8], &'static [u8])>);
        let rows: &[Row] = &[
            (
                "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
                Some((
                    &[
                        0x69, 0x88, 0x5b, 0x6b, 0x87, 0x46, 0x40, 0x41, 0xe1, 0xb3, 0x7b, 0x84,
                        0x7b, 0xa0, 0xae, 0x2c, 0xde, 0x01, 0xc8, 0xd4,
                    ],
                    &[0x00, 0x87, 0x65, 0x43, 0x21],
                )),
            ),
            ("aYhba4dGQEHhs3uEe6CuLN4ByNQ", None),
            ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.", None),
            (".AIdlQyE", None),
            ("a.b.c", None),
            ("aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE", None),
            ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdl+yE", None),
            ("", None),
        ];
        for (input, want) in rows {
            let got = parse_ari_cert_id(input);
            match want {
                Some((aki, serial)) => {
                    assert_eq!(got.unwrap(), (aki.to_vec(), serial.to_vec()), "{input}")
                }
                None => {
                    let p = got.unwrap_err();
                    assert_eq!(p.kind, cobble_core::ProblemType::Malformed, "{input}");
                    assert!(p.detail.contains("RFC 9773"), "{input}: {}", p.detail);
                }
            }
        }
    }
}
