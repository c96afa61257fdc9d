//! The CA's error type: what can go wrong building the hierarchy, loading PEM files or
//! signing. CSR problems are ACME problems ([`cobble_core::Problem`]), not these.

use std::path::PathBuf;

/// An error from the hierarchy, key handling or signing (RFC 5280 certificate building).
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// Reading or writing a hierarchy file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// rcgen refused to build or sign a certificate.
    #[error("certificate building failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A key could not be generated, parsed or used.
    #[error("key: {0}")]
    Key(String),
    /// A certificate or PEM file could not be parsed.
    #[error("parse: {0}")]
    Parse(String),
    /// The configuration or the stored hierarchy is inconsistent.
    #[error("config: {0}")]
    Config(String),
    /// The leaf request cannot be issued (e.g. notAfter before notBefore).
    #[error("request: {0}")]
    Request(String),
}

impl CaError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CaError::Io {
            path: path.into(),
            source,
        }
    }
}
