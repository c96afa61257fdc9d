//! The http-01 responder (RFC 8555 §8.3): `GET /.well-known/acme-challenge/<token>` answers
//! the key authorization set with `/add-http01`; a path set with `/add-redirect` answers
//! 302 to its target; anything else 404. Every request is recorded in the history.

use crate::history::{HttpRequestEvent, RequestEvent};
use crate::state::ChallState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// RFC 8555 §8.3: where http-01 key authorizations are served.
pub const WELL_KNOWN: &str = "/.well-known/acme-challenge/";

/// The http-01 router: one fallback handler for every path and method.
pub(crate) fn router(state: ChallState) -> Router {
    Router::new().fallback(respond).with_state(state)
}

async fn respond(State(state): State<ChallState>, uri: Uri, headers: HeaderMap) -> Response {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let host = uri
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_else(|| text(header::HOST));
    let path = uri.path();
    state.record(RequestEvent::Http(HttpRequestEvent {
        url: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_else(|| path.to_owned()),
        host,
        https: false,
        server_name: String::new(),
        user_agent: text(header::USER_AGENT),
    }));
    if let Some(target) = state.redirect(path) {
        tracing::debug!(%path, %target, "http-01: redirect");
        return (StatusCode::FOUND, [(header::LOCATION, target)]).into_response();
    }
    let keyauth = path.strip_prefix(WELL_KNOWN).and_then(|t| state.http01(t));
    match keyauth {
        Some(k) => {
            tracing::debug!(%path, "http-01: key authorization served");
            let headers = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
            (StatusCode::OK, headers, k).into_response()
        }
        None => {
            tracing::debug!(%path, "http-01: nothing here");
            (StatusCode::NOT_FOUND, "not found\n").into_response()
        }
    }
}
