//! Cobble's certificate authority: the root/intermediate hierarchy, certificate profiles,
//! CSR checks, leaf signing, CRLs, OCSP responses and ARI certificate identifiers
//! (RFC 5280, RFC 6960, RFC 9773). Pure computation and files; no HTTP, no database.
#![forbid(unsafe_code)]

pub mod crl;
pub mod ocsp;
