//! DNS over HTTPS (RFC 8484): `GET ?dns=<base64url>` and `POST` with an
//! `application/dns-message` body, on any path (as pebble-challtestsrv, which serves its
//! DoH handler at every path), answered from the same mock records as the UDP/TCP server
//! and recorded in the DNS history with the client's User-Agent. A bad request gets a
//! problem document (RFC 7807): 400 for a bad `dns` parameter or DNS message, 405 for another
//! method, 413 past 65535 bytes (RFC 1035's limit on a DNS message), 415 for another media type.

use crate::dns::{default_soa, resolve};
use crate::state::ChallState;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hickory_server::proto::op::{Message, MessageType, Metadata, OpCode, ResponseCode};

/// RFC 8484 §6: the media type of a DNS message.
pub const DNS_MESSAGE: &str = "application/dns-message";
/// Largest DNS message (a 16-bit length, RFC 1035 §4.2.2).
pub const MAX_MESSAGE: usize = 65_535;

/// The DoH router: one handler for every path.
pub(crate) fn router(state: ChallState) -> Router {
    Router::new().fallback(respond).with_state(state)
}

/// Why a request was refused: its status and a detail for the problem document.
#[derive(Debug)]
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        problem(self.0, self.1)
    }
}

/// A problem document (RFC 7807) with `status` and `detail`.
fn problem(status: StatusCode, detail: String) -> Response {
    tracing::info!(status = status.as_u16(), %detail, "doh: bad request");
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or_default(),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        resp.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, POST"));
    }
    resp
}

async fn respond(
    State(state): State<ChallState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let wire = match method {
        Method::GET => from_query(uri.query().unwrap_or_default()),
        Method::POST => from_body(&headers, body).await,
        other => Err(Refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{other} is not a DoH method; use GET with ?dns= or POST (RFC 8484 §4.1)"),
        )),
    };
    let wire = match wire {
        Ok(w) => w,
        Err(refusal) => return refusal.into_response(),
    };
    let request = match Message::from_vec(&wire) {
        Ok(m) => m,
        Err(e) => {
            return problem(StatusCode::BAD_REQUEST, format!("not a DNS message: {e}"));
        }
    };
    if request.metadata.message_type != MessageType::Query {
        return problem(
            StatusCode::BAD_REQUEST,
            "the DNS message is a response, not a query".to_owned(),
        );
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata = Metadata::response_from_request(&request.metadata);
    if request.metadata.op_code == OpCode::Query {
        let (answers, rcode) = resolve(&state, &request.queries, user_agent);
        response.metadata.response_code = rcode;
        response.answers = answers;
    } else {
        response.metadata.response_code = ResponseCode::NotImp;
    }
    response.queries = request.queries;
    response.authorities = vec![default_soa()];
    match response.to_vec() {
        Ok(bytes) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, DNS_MESSAGE),
                // Every mock record has TTL 0 (RFC 8484 §5.1: freshness follows the TTL).
                (header::CACHE_CONTROL, "max-age=0"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "doh: encoding the answer failed");
            let mut fail = Message::error_msg(
                request.metadata.id,
                request.metadata.op_code,
                ResponseCode::ServFail,
            );
            fail.metadata.recursion_desired = request.metadata.recursion_desired;
            let bytes = fail.to_vec().unwrap_or_default();
            (StatusCode::OK, [(header::CONTENT_TYPE, DNS_MESSAGE)], bytes).into_response()
        }
    }
}

/// RFC 8484 §4.1: the `dns` parameter, base64url without padding (padding is tolerated).
fn from_query(query: &str) -> Result<Vec<u8>, Refusal> {
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("dns="))
        .ok_or_else(|| {
            Refusal(
                StatusCode::BAD_REQUEST,
                "GET needs the dns query parameter (RFC 8484 §4.1)".to_owned(),
            )
        })?;
    // Base64 of a 65535-byte message is at most 87380 characters.
    if value.len() > MAX_MESSAGE.div_ceil(3) * 4 {
        return Err(Refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the dns parameter is longer than a {MAX_MESSAGE}-byte DNS message"),
        ));
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|e| {
            Refusal(
                StatusCode::BAD_REQUEST,
                format!("the dns parameter is not base64url: {e}"),
            )
        })
}

/// RFC 8484 §4.1: a POST body of media type `application/dns-message`, read up to the limit.
async fn from_body(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Refusal> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = media.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case(DNS_MESSAGE) {
        return Err(Refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be {DNS_MESSAGE}, not {media:?}"),
        ));
    }
    let too_large = || {
        Refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is longer than a {MAX_MESSAGE}-byte DNS message"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_MESSAGE as u64) {
        return Err(too_large());
    }
    match axum::body::to_bytes(body, MAX_MESSAGE).await {
        Ok(b) => Ok(b.to_vec()),
        Err(e) => {
            // A length-limit error is the only one a well-formed body can give.
            tracing::debug!(error = %e, "doh: body not read");
            Err(too_large())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_parameter_table() {
        // (query string, Ok(decoded) or the status of the refusal)
        let rows: [(&str, Result<&[u8], u16>); 7] = [
            ("dns=AAEC", Ok(&[0, 1, 2])),
            ("ct=x&dns=AAE", Ok(&[0, 1])),
            ("dns=AAE=", Ok(&[0, 1])),
            ("dns=-_8", Ok(&[0xfb, 0xff])),
            ("dns=not*base64", Err(400)),
            ("other=1", Err(400)),
            ("", Err(400)),
        ];
        for (q, want) in rows {
            match (from_query(q), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{q}"),
                (Err(refusal), Err(status)) => assert_eq!(refusal.0.as_u16(), status, "{q}"),
                (got, w) => panic!("{q}: got {got:?}, want {w:?}"),
            }
        }
        let long = format!("dns={}", "A".repeat(90_000));
        assert_eq!(
            from_query(&long).unwrap_err().0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
