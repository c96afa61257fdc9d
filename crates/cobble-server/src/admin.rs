//! The management listener (Pebble's port 15000, HTTPS): the roots, intermediates and
//! their keys in PEM, and a certificate's status by serial. Test tooling reads these.

use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cobble_core::Problem;
use cobble_core::clock::rfc3339;
use serde_json::json;

fn pem(text: Option<String>, what: &str) -> Response {
    match text {
        Some(t) => ([(header::CONTENT_TYPE, "application/x-pem-file")], t).into_response(),
        None => crate::error::problem_response(&Problem::not_found(what)),
    }
}

async fn roots(State(s): State<AppState>, Path(i): Path<usize>) -> Response {
    pem(s.ca.roots().get(i).cloned(), &format!("root {i}"))
}

async fn root_keys(State(s): State<AppState>, Path(i): Path<usize>) -> Response {
    pem(
        s.ca.root_key_pem(i).map(str::to_owned),
        &format!("root key {i}"),
    )
}

async fn intermediates(State(s): State<AppState>, Path(i): Path<usize>) -> Response {
    let list = s.ca.intermediates(i);
    pem(
        (!list.is_empty()).then(|| list.concat()),
        &format!("intermediates of root {i}"),
    )
}

async fn intermediate_keys(State(s): State<AppState>, Path(i): Path<usize>) -> Response {
    pem(
        s.ca.intermediate_key_pem(i).map(str::to_owned),
        &format!("intermediate key {i}"),
    )
}

/// Pebble's `/cert-status-by-serial/<serial>`: Good or Revoked, with the certificate.
async fn cert_status(State(s): State<AppState>, Path(serial): Path<String>) -> Response {
    let serial = serial
        .to_ascii_lowercase()
        .trim_start_matches("0x")
        .to_owned();
    match s.store.certificate_by_serial(&serial).await {
        Ok(Some(c)) => {
            let mut v = json!({
                "Status": if c.revoked_ms.is_some() { "Revoked" } else { "Good" },
                "Serial": c.serial,
                "Certificate": c.pem,
            });
            if let Some(at) = c.revoked_ms {
                v["RevokedAt"] = rfc3339(at).into();
                v["Reason"] = c.revoked_reason.unwrap_or(0).into();
            }
            axum::Json(v).into_response()
        }
        Ok(None) => crate::error::problem_response(&Problem::not_found(&format!(
            "certificate with serial {serial}"
        ))),
        Err(e) => crate::error::problem_response(&crate::error::store_problem(e)),
    }
}

/// The management router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/roots/{i}", get(roots))
        .route("/root-keys/{i}", get(root_keys))
        .route("/intermediates/{i}", get(intermediates))
        .route("/intermediate-keys/{i}", get(intermediate_keys))
        .route("/cert-status-by-serial/{serial}", get(cert_status))
        .fallback(|| async { crate::error::problem_response(&Problem::not_found("this resource")) })
        .with_state(state)
}
