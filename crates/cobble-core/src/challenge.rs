//! Challenge types (RFC 8555 §8, RFC 8737) and key authorizations (§8.1).

use crate::b64;

/// A validation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeType {
    /// RFC 8555 §8.3.
    Http01,
    /// RFC 8555 §8.4.
    Dns01,
    /// RFC 8737.
    TlsAlpn01,
}

impl ChallengeType {
    /// Every type, in the order challenges are offered.
    pub const ALL: [ChallengeType; 3] = [
        ChallengeType::Http01,
        ChallengeType::Dns01,
        ChallengeType::TlsAlpn01,
    ];

    /// The wire name, e.g. `http-01`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeType::Http01 => "http-01",
            ChallengeType::Dns01 => "dns-01",
            ChallengeType::TlsAlpn01 => "tls-alpn-01",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// `token || '.' || base64url(thumbprint)` (RFC 8555 §8.1).
pub fn key_authorization(token: &str, thumbprint: &str) -> String {
    format!("{token}.{thumbprint}")
}

/// The dns-01 TXT value: base64url(SHA-256(key authorization)) (RFC 8555 §8.4).
pub fn dns01_txt_value(key_authorization: &str) -> String {
    b64::encode(ring::digest::digest(
        &ring::digest::SHA256,
        key_authorization.as_bytes(),
    ))
}

/// The tls-alpn-01 acmeIdentifier extension value: SHA-256(key authorization) (RFC 8737 §3).
pub fn tlsalpn01_digest(key_authorization: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns01_value_matches_rfc8555_example_shape() {
        let ka = key_authorization(
            "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
            "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI",
        );
        assert_eq!(
            ka,
            "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
        );
        let v = dns01_txt_value(&ka);
        assert_eq!(v.len(), 43);
        assert_eq!(b64::decode(&v).unwrap(), tlsalpn01_digest(&ka));
        for t in ChallengeType::ALL {
            assert_eq!(ChallengeType::parse(t.as_str()), Some(t));
        }
    }
}
