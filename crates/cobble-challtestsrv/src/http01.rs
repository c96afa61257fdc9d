//! The http-01 responder (RFC 8555 §8.3): `GET /.well-known/acme-challenge/<token>` answers
//! the key authorization set with `/add-http01`; a path set with `/add-redirect` answers
//! 302 to its target; anything else 200 with an empty body, as pebble-challtestsrv answers
//! (observed with Debian's 2.4; clients' suites can see it). Every request is recorded in
//! the history. The same
//! router serves the https-01 listener (HTTPS with a self-signed certificate, the target of
//! http-01 redirects to https), where redirects are not served, as in pebble-challtestsrv,
//! so that a redirect from http to https for the same path does not loop.

use crate::history::{HttpRequestEvent, RequestEvent};
use crate::state::ChallState;
use crate::tls::TlsPeer;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};

/// RFC 8555 §8.3: where http-01 key authorizations are served.
pub const WELL_KNOWN: &str = "/.well-known/acme-challenge/";

/// The http-01 router: one fallback handler for every path and method.
pub(crate) fn router(state: ChallState) -> Router {
    Router::new().fallback(respond).with_state(state)
}

async fn respond(
    State(state): State<ChallState>,
    tls: Option<Extension<ConnectInfo<TlsPeer>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let https = tls.is_some();
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
        https,
        server_name: tls.map(|t| t.0.0.server_name.clone()).unwrap_or_default(),
        user_agent: text(header::USER_AGENT),
    }));
    if let Some(target) = state.redirect(path).filter(|_| !https) {
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
            tracing::debug!(%path, "http-01: nothing here; an empty answer, as pebble-challtestsrv gives");
            StatusCode::OK.into_response()
        }
    }
}
