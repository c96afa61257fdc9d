//! Cobble's certificate authority: the root/intermediate hierarchy, certificate profiles,
//! CSR checks, leaf signing, CRLs, OCSP responses and ARI certificate identifiers
//! (RFC 5280, RFC 6960, RFC 9773). Pure computation and files; no HTTP, no database.
#![forbid(unsafe_code)]

pub mod crl;
pub mod ocsp;
mod p521;

pub mod ari;
pub mod csr;
pub mod error;
pub mod hierarchy;
pub mod issue;
pub mod keys;
pub mod pem;
pub mod profile;

pub use ari::{ari_cert_id, parse_ari_cert_id};
pub use csr::{CheckedCsr, CsrKey, check_csr};
pub use error::CaError;
pub use hierarchy::{CaConfig, Hierarchy};
pub use issue::{IssuanceUrls, IssuedCert, LeafRequest};
pub use keys::KeyType;
pub use profile::{AllowedKeys, EcCurve, Profile};
