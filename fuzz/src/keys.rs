//! Fixed signing keys, one per JWS algorithm, so that fuzz inputs signed once (the seed
//! corpus) verify on every run. Test keys only: never used by the server.

use cobble_core::jwk::{Curve, PublicKey};
use cobble_core::sign::Signer;
use std::sync::OnceLock;

const P256_PKCS8: &[u8] = include_bytes!("../keys/p256.pkcs8.der");
const P384_PKCS8: &[u8] = include_bytes!("../keys/p384.pkcs8.der");

/// A fixed P-521 scalar (below the group order: its top byte is 0).
fn p521_scalar() -> [u8; 66] {
    let mut s = [0u8; 66];
    for (i, b) in s.iter_mut().enumerate().skip(1) {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    s
}

/// The fixed keys with the `kid` a JWS names each by: one per algorithm of
/// [`cobble_core::jws::ALGORITHMS`].
pub fn signers() -> &'static [(&'static str, Signer)] {
    static KEYS: OnceLock<Vec<(&'static str, Signer)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let ed =
            ring::signature::Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).expect("32-byte seed");
        let p521 = p521::ecdsa::SigningKey::from_slice(&p521_scalar()).expect("valid scalar");
        vec![
            (
                "https://cobble.test/acme/acct/rs256",
                Signer::rsa_from_pkcs8(cobble_core::testkeys::RSA2048_PKCS8).expect("rsa key"),
            ),
            (
                "https://cobble.test/acme/acct/es256",
                Signer::ec_from_pkcs8(Curve::P256, P256_PKCS8).expect("p256 key"),
            ),
            (
                "https://cobble.test/acme/acct/es384",
                Signer::ec_from_pkcs8(Curve::P384, P384_PKCS8).expect("p384 key"),
            ),
            (
                "https://cobble.test/acme/acct/es512",
                Signer::P521(Box::new(p521)),
            ),
            ("https://cobble.test/acme/acct/eddsa", Signer::Ed25519(ed)),
        ]
    })
}

/// The public key an account URL names, if it is one of [`signers`].
pub fn public_key_for_kid(kid: &str) -> Option<PublicKey> {
    signers()
        .iter()
        .find(|(k, _)| *k == kid)
        .map(|(_, s)| s.public_key())
}

/// Every fixed public key.
pub fn public_keys() -> Vec<PublicKey> {
    signers().iter().map(|(_, s)| s.public_key()).collect()
}
