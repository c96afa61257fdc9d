//! PEM (RFC 7468) encoding and splitting, so certificates loaded or built here can be
//! written to files and served as `application/pem-certificate-chain` (RFC 8555 §9.1).

use crate::error::CaError;

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes DER as a PEM block with `label` (e.g. `CERTIFICATE`), 64-column lines, RFC 7468 §2.
pub fn encode(label: &str, der: &[u8]) -> String {
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = match chunk.len() {
            3 => (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]),
            2 => (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8),
            _ => u32::from(chunk[0]) << 16,
        };
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(STD[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Splits PEM text into `(label, DER)` blocks, in order.
pub fn decode_all(text: &str) -> Result<Vec<(String, Vec<u8>)>, CaError> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()) {
        let block = block.map_err(|e| CaError::Parse(format!("PEM: {e}")))?;
        out.push((block.label, block.contents));
    }
    if out.is_empty() {
        return Err(CaError::Parse("no PEM block found".into()));
    }
    Ok(out)
}

/// The DER of every `CERTIFICATE` block in `text`, in order.
pub fn certificates(text: &str) -> Result<Vec<Vec<u8>>, CaError> {
    let certs: Vec<Vec<u8>> = decode_all(text)?
        .into_iter()
        .filter(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| der)
        .collect();
    if certs.is_empty() {
        return Err(CaError::Parse("no CERTIFICATE block found".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_padding_length() {
        for len in [0usize, 1, 2, 3, 4, 5, 47, 48, 49, 100] {
            let der: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let pem = encode("TEST", &der);
            if len == 0 {
                continue; // x509-parser refuses empty blocks; nothing to round-trip.
            }
            let back = decode_all(&pem).unwrap();
            assert_eq!(back, vec![("TEST".to_string(), der)], "len {len}");
        }
    }
}
