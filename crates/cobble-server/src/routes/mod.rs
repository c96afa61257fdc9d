//! ACME resources, one file per role.

pub mod account;
pub mod authz;
pub mod directory;
pub mod issuance;
pub mod key_change;
pub mod objects;
pub mod order;
pub mod pki;
pub mod revoke;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A JSON response with a status and optional `Location`.
pub fn json_response<T: Serialize>(
    status: StatusCode,
    body: &T,
    location: Option<&str>,
) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    r
}
