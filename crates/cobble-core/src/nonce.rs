//! Anti-replay nonces (RFC 8555 §6.5) minted without a database write.
//!
//! A nonce is `issued_ms (8 bytes) || counter (8 bytes) || HMAC-SHA256(key, first 16)[..16]`,
//! base64url. Any instance holding the shared key (kept in the database) can check that a
//! nonce is ours and unexpired with no look-up; the store then redeems it once by inserting
//! it into the used-nonce table in the request's own transaction.

use crate::b64;
use std::sync::atomic::{AtomicU64, Ordering};

const BODY: usize = 16;
const TAG: usize = 16;

/// Why a nonce was refused before any database look-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// Not a nonce of this shape at all.
    #[error("the nonce is not one this server issued")]
    Malformed,
    /// The seal does not match: not issued by this CA (or the key changed).
    #[error("the nonce was not issued by this server")]
    BadSeal,
    /// Older than the nonce lifetime.
    #[error("the nonce has expired")]
    Expired,
}

/// A nonce whose seal and age checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedNonce {
    /// The nonce text, the key of the used-nonce table.
    pub value: String,
    /// When it stops being valid; the used-nonce row may be pruned after this.
    pub expires_ms: i64,
}

/// Mints and checks nonces with a key shared by every instance.
pub struct NonceSealer {
    key: ring::hmac::Key,
    counter: AtomicU64,
    lifetime_ms: i64,
}

impl std::fmt::Debug for NonceSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceSealer")
            .field("lifetime_ms", &self.lifetime_ms)
            .finish()
    }
}

/// How far a nonce's issue time may lie in the future (clock skew between instances).
const MAX_SKEW_MS: i64 = 60_000;

impl NonceSealer {
    /// A sealer over `key`; `counter_seed` should be random so instances don't collide.
    pub fn new(key: &[u8], counter_seed: u64, lifetime_ms: i64) -> Self {
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
            counter: AtomicU64::new(counter_seed),
            lifetime_ms,
        }
    }

    /// The configured lifetime in milliseconds.
    pub fn lifetime_ms(&self) -> i64 {
        self.lifetime_ms
    }

    /// A fresh nonce issued at `now_ms`.
    pub fn mint(&self, now_ms: i64) -> String {
        let mut raw = [0u8; BODY + TAG];
        raw[..8].copy_from_slice(&now_ms.to_be_bytes());
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        raw[8..16].copy_from_slice(&n.to_be_bytes());
        let tag = ring::hmac::sign(&self.key, &raw[..BODY]);
        raw[BODY..].copy_from_slice(&tag.as_ref()[..TAG]);
        b64::encode(raw)
    }

    /// Checks shape, seal and age; does not check single use (the store does).
    pub fn open(&self, nonce: &str, now_ms: i64) -> Result<OpenedNonce, NonceError> {
        if nonce.len() != 43 {
            return Err(NonceError::Malformed);
        }
        let raw = b64::decode(nonce).map_err(|_| NonceError::Malformed)?;
        if raw.len() != BODY + TAG {
            return Err(NonceError::Malformed);
        }
        let tag = ring::hmac::sign(&self.key, &raw[..BODY]);
        // Constant-time comparison of the truncated tag.
        let diff = tag.as_ref()[..TAG]
            .iter()
            .zip(&raw[BODY..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(NonceError::BadSeal);
        }
        let issued = i64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        if issued > now_ms + MAX_SKEW_MS || now_ms - issued > self.lifetime_ms {
            return Err(NonceError::Expired);
        }
        Ok(OpenedNonce {
            value: nonce.to_owned(),
            expires_ms: issued + self.lifetime_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_open_table() {
        let s = NonceSealer::new(b"k1", 7, 3_600_000);
        let other = NonceSealer::new(b"k2", 7, 3_600_000);
        let n = s.mint(1_000_000);
        assert_ne!(n, s.mint(1_000_000), "each nonce is distinct");
        assert_eq!(s.open(&n, 1_000_000).unwrap().expires_ms, 4_600_000);
        assert!(s.open(&n, 4_600_000).is_ok(), "valid up to its lifetime");
        assert_eq!(s.open(&n, 4_600_001), Err(NonceError::Expired));
        assert_eq!(
            s.open(&n, 1_000_000 - 61_000),
            Err(NonceError::Expired),
            "from the future"
        );
        assert_eq!(other.open(&n, 1_000_000), Err(NonceError::BadSeal));
        assert_eq!(s.open("short", 0), Err(NonceError::Malformed));
        assert_eq!(s.open(&"*".repeat(43), 0), Err(NonceError::Malformed));
        let mut flipped = n.clone().into_bytes();
        flipped[42] = if flipped[42] == b'A' { b'B' } else { b'A' };
        assert!(
            s.open(std::str::from_utf8(&flipped).unwrap(), 1_000_000)
                .is_err()
        );
    }
}
