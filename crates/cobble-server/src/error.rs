//! Turning problems into HTTP responses: `application/problem+json` with the right
//! status (RFC 7807, RFC 8555 §6.7), and store errors into problems.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cobble_core::{Problem, ProblemType};
use cobble_store::StoreError;

/// A handler's error: a problem document, plus any headers it needs (e.g. `Link` to the ToS).
#[derive(Debug)]
pub struct AcmeError {
    /// The problem sent as the body.
    pub problem: Problem,
    /// Extra response headers.
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl AcmeError {
    /// Adds a response header.
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl From<Problem> for AcmeError {
    fn from(problem: Problem) -> Self {
        Self {
            problem,
            headers: Vec::new(),
        }
    }
}

impl From<StoreError> for AcmeError {
    fn from(e: StoreError) -> Self {
        let unavailable = e.is_unavailable();
        let err = AcmeError::from(store_problem(e));
        if unavailable {
            err.with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
        } else {
            err
        }
    }
}

/// The problem a client sees for a store error. Errors that are the client's (a reused
/// nonce, an already replaced certificate) say so; the rest are logged with their cause
/// and answered without it, since database text is no business of the client's.
pub fn store_problem(e: StoreError) -> Problem {
    match e {
        StoreError::NonceReused => Problem::bad_nonce(
            "it has already been used; retry with the fresh nonce in this response's Replay-Nonce header",
        ),
        StoreError::AlreadyReplaced => Problem::new(
            ProblemType::AlreadyReplaced,
            "the certificate named in \"replaces\" already has a replacement order (RFC 9773 §5)",
        ),
        // The database is down or saturated: 503, and From<StoreError> adds Retry-After.
        other if other.is_unavailable() => {
            tracing::warn!(error = %other, "database unavailable");
            Problem::coded(
                cobble_core::ResultCode::AcmeOtherError,
                "the server could not reach its database; retry later",
            )
            .with_status(503)
        }
        other => {
            tracing::error!(error = %other, "store failure");
            Problem::coded(
                cobble_core::ResultCode::AcmeOtherError,
                "the server failed to use its database; it has been logged",
            )
        }
    }
}

/// A `serverInternal` problem for a failure whose cause must not reach the client: the
/// cause is logged (inside the request's span, so with its request id) and the client is
/// told only `what` failed.
pub fn internal(what: &str, cause: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %cause, "{what} failed");
    Problem::internal(format!(
        "{what} failed on the server; it has been logged, retry later"
    ))
}

/// The problem a response carries, for metrics (kept in the response's extensions).
#[derive(Debug, Clone, Copy)]
pub struct ProblemTag {
    /// The ACME error type's short name, e.g. `badNonce`.
    pub kind: &'static str,
    /// The Certigna result code, if any.
    pub code: Option<&'static str>,
}

/// Renders a problem with `Content-Type: application/problem+json`.
pub fn problem_response(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(problem).expect("problems serialize");
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r.extensions_mut().insert(ProblemTag {
        kind: problem.kind.name(),
        code: problem.code.map(|c| c.as_str()),
    });
    r
}

impl IntoResponse for AcmeError {
    fn into_response(self) -> Response {
        if self.problem.status >= 500 {
            tracing::warn!(problem = %self.problem, "server-side problem");
        } else {
            tracing::debug!(problem = %self.problem, "client problem");
        }
        let mut r = problem_response(&self.problem);
        for (k, v) in self.headers {
            r.headers_mut().append(k, v);
        }
        r
    }
}

/// Handler result.
pub type AcmeResult<T = Response> = Result<T, AcmeError>;
