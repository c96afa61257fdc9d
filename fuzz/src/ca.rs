//! CA targets: the finalize CSR checker (RFC 8555 §7.4, RFC 2986), the OCSP request parser
//! (RFC 6960 §4.1.1, DER and the Appendix A.1 GET form) and ARI certIDs (RFC 9773 §4.1).

use crate::{Input, keys};
use cobble_ca::ocsp::{self, MAX_SINGLE_REQUESTS, NONCE_LEN};
use cobble_ca::{Profile, check_csr, parse_ari_cert_id};
use cobble_core::b64;
use cobble_core::identifier::Identifier;
use std::collections::BTreeSet;

/// The orders a CSR input is checked against; the input's first byte picks one.
pub const ORDERS: &[&[(&str, &str)]] = &[
    &[("dns", "example.com")],
    &[("dns", "example.com"), ("dns", "www.example.com")],
    &[("dns", "*.example.com")],
    &[("ip", "192.0.2.1"), ("dns", "example.com")],
    &[("dns", "xn--bcher-kva.example")],
    &[("ip", "2001:db8::1")],
];

fn order(i: usize) -> Vec<Identifier> {
    ORDERS[i % ORDERS.len()]
        .iter()
        .map(|(k, v)| Identifier::from_wire(k, v).expect("valid order identifier"))
        .collect()
}

/// Target `csr`: byte 0 picks the order (bits 0-3) and profile (bits 4-5), the rest is the
/// CSR DER given to `check_csr`. A CSR that passes has exactly the order's names, no
/// duplicates, a key the profile allows that is neither the account key nor blocked, and
/// nothing the profile forbids.
pub fn csr(data: &[u8]) {
    let mut input = Input::new(data);
    let sel = input.byte() as usize;
    let order = order(sel & 0x0f);
    let profiles = Profile::defaults();
    let profile = &profiles[(sel >> 4) % profiles.len()];
    let account = keys::signers()[1].1.public_key();
    // Block one key in 16 by digest, to check a blocked key is never accepted.
    let blocked = |d: &[u8]| d[0] & 0x0f == 0x0f;
    let Ok(c) = check_csr(input.rest(), &order, &account, profile, &blocked) else {
        return;
    };
    let have: BTreeSet<&Identifier> = c.names.iter().collect();
    let want: BTreeSet<&Identifier> = order.iter().collect();
    assert_eq!(have, want, "accepted CSR names differ from the order's");
    assert_eq!(
        have.len(),
        c.names.len(),
        "duplicate names in an accepted CSR"
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, &c.spki_der);
    assert_eq!(digest.as_ref(), c.spki_sha256);
    assert!(!blocked(&c.spki_sha256), "accepted a blocked key");
    assert!(
        profile.allowed_keys.allows(c.key),
        "accepted a key the profile refuses"
    );
    assert_eq!(c.key_description, c.key.describe());
    assert!(!c.must_staple || profile.must_staple_allowed);
    for n in &c.names {
        assert!(profile.allow_wildcard || !n.is_wildcard());
        assert!(profile.allow_ip || !matches!(n, Identifier::Ip(_)));
    }
}

/// Checks what `parse_request_with_nonce` returned: bounded counts, hashes of the right
/// length, serials normalized, nonce length per RFC 9654 (or raw, for old clients).
fn check_request(der: &[u8]) {
    let Ok(req) = ocsp::parse_request_with_nonce(der) else {
        return;
    };
    assert!((1..=MAX_SINGLE_REQUESTS).contains(&req.cert_ids.len()));
    for id in &req.cert_ids {
        let len = id.hash_alg.digest(b"").len();
        assert_eq!(id.issuer_name_hash.len(), len);
        assert_eq!(id.issuer_key_hash.len(), len);
        assert!(!id.serial.is_empty());
        assert!(
            id.serial == [0] || id.serial[0] != 0,
            "serial not normalized"
        );
    }
    if let Some(n) = &req.nonce {
        assert!(!n.is_empty());
        // The extnValue is echoed verbatim: a DER OCTET STRING of 1 to 32 octets, or raw.
        assert!(n.len() <= NONCE_LEN.end() + 2);
    }
    assert_eq!(
        ocsp::parse_request(der).ok().as_ref(),
        Some(&req.cert_ids),
        "parse_request disagrees"
    );
}

/// Target `ocsp`: a POST body through `ocsp::parse_request_with_nonce`.
pub fn ocsp(data: &[u8]) {
    check_request(data);
}

/// Decodes base64 in the standard or URL-safe alphabet, padded or not, trailing bits
/// ignored: the reference `parse_get_path` must agree with for unescaped input.
fn reference_base64(s: &str) -> Option<Vec<u8>> {
    let body = s.trim_end_matches('=');
    let pad = s.len() - body.len();
    if body.is_empty() || pad > 2 || (pad > 0 && !s.len().is_multiple_of(4)) || body.len() % 4 == 1
    {
        return None;
    }
    let mut bits = 0u32;
    let mut acc = 0u32;
    let mut out = Vec::new();
    for c in body.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6 | u32::from(v)) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Target `ocsp_get`: a GET path segment through `ocsp::parse_get_path` and, when it
/// decodes, the request parser. Unescaped input decodes as a reference base64 decoder does.
pub fn ocsp_get(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let got = ocsp::parse_get_path(path);
    if !path.contains('%') && !path.contains(' ') && path.len() <= ocsp::MAX_GET_PATH_LEN {
        assert_eq!(
            got.as_ref().ok(),
            reference_base64(path).as_ref(),
            "GET path decodes differently from base64: {path:?}"
        );
    }
    if let Ok(der) = got {
        check_request(&der);
    }
}

/// Target `ari`: text through `parse_ari_cert_id`. An accepted certID is the canonical
/// encoding of what it decodes to (one spelling per certificate), with no empty part.
pub fn ari(data: &[u8]) {
    let Ok(id) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((aki, serial)) = parse_ari_cert_id(id) {
        assert!(!aki.is_empty() && !serial.is_empty());
        assert_eq!(
            format!("{}.{}", b64::encode(&aki), b64::encode(&serial)),
            id,
            "certID is not canonical"
        );
    }
}
