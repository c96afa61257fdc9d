//! Cobble core: the ACME vocabulary shared by the server, the CA and the tools.
//!
//! Pure logic only: no I/O and no async. Everything here is parsed once at the
//! edge and passed around as typed values (RFC 8555, RFC 7807, RFC 7515/7638).
#![forbid(unsafe_code)]

pub mod account;
pub mod b64;
pub mod clock;
pub mod contact;
pub mod go_addr;
pub mod jwk;
pub mod jws;
pub mod nonce;
pub mod operator;
pub mod problem;

pub use problem::{Problem, ProblemType, ResultCode};
pub mod challenge;
pub mod identifier;
pub mod netpolicy;
pub mod policy;
pub mod ratelimit;
pub mod sign;
pub mod status;
#[doc(hidden)]
pub mod testkeys;
