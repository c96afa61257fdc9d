//! Fuzz targets for every Cobble parser that untrusted input reaches (issue 15). Each target
//! is one function over raw bytes that feeds them to the real parser and asserts invariants
//! beyond "no panic". They run two ways: over their corpora (`fuzz/corpus/<target>/`) plus
//! generated mutants under `cargo test -p cobble-fuzz` on stable ([`driver`]), and
//! coverage-guided under libFuzzer from `fuzz/libfuzzer` (nightly, `cargo fuzz`).
#![forbid(unsafe_code)]

pub mod ca;
pub mod challtestsrv;
pub mod driver;
pub mod jose;
pub mod keys;
#[cfg(feature = "server")]
pub mod pebble;
pub mod policy;
#[cfg(feature = "server")]
pub mod ra;
#[cfg(feature = "server")]
pub mod server;

pub use ca::{ari, csr, ocsp, ocsp_get};
pub use challtestsrv::{challtestsrv_dns, challtestsrv_mgmt};
pub use jose::{jwk, jws, jws_sign, nonce, payload};
#[cfg(feature = "server")]
pub use pebble::pebble_config;
pub use policy::{contact, identifier};
#[cfg(feature = "server")]
pub use ra::{eab, key_change, profile};
#[cfg(feature = "server")]
pub use server::{auth, server_config};

/// A fuzz target: one input, panics on a finding.
pub type Target = fn(&[u8]);

/// Every target by name, the name being its corpus directory and its libFuzzer target, in
/// the order of issue 15.
pub const TARGETS: &[(&str, Target)] = &[
    ("jws", jws),
    ("jws_sign", jws_sign),
    ("jwk", jwk),
    ("nonce", nonce),
    ("identifier", identifier),
    ("contact", contact),
    ("payload", payload),
    ("csr", csr),
    ("ocsp", ocsp),
    ("ocsp_get", ocsp_get),
    ("ari", ari),
    ("challtestsrv_dns", challtestsrv_dns),
    ("challtestsrv_mgmt", challtestsrv_mgmt),
    #[cfg(feature = "server")]
    ("auth", auth),
    #[cfg(feature = "server")]
    ("server_config", server_config),
    #[cfg(feature = "server")]
    ("pebble_config", pebble_config),
    #[cfg(feature = "server")]
    ("eab", eab),
    #[cfg(feature = "server")]
    ("key_change", key_change),
    #[cfg(feature = "server")]
    ("profile", profile),
];

/// Reads a structured input from fuzz bytes: fixed-size choices first, the rest as data.
/// Running out of bytes yields zeros, so every byte string is a valid input.
#[derive(Debug, Clone)]
pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    /// Wraps `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self(data)
    }

    /// The next byte, or 0.
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    /// Bytes up to the next `sep` (consumed, not returned), or all that is left.
    pub fn until(&mut self, sep: u8) -> &'a [u8] {
        match self.0.iter().position(|b| *b == sep) {
            Some(i) => {
                let head = &self.0[..i];
                self.0 = &self.0[i + 1..];
                head
            }
            None => self.rest(),
        }
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
