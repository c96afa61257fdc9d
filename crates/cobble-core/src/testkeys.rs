//! Fixed keys for tests (ring cannot generate RSA keys). Never used by the server.

/// An RSA-2048 PKCS#8 key made with `openssl genpkey` for tests only.
pub const RSA2048_PKCS8: &[u8] = include_bytes!("../../../testdata/rsa2048.pkcs8.der");
