//! The management listener as Pebble 2.4 serves it, for the Pebble drop-in
//! (`ServerConfig::pebble_management`): Pebble's routes answer without a token, to any
//! method, routed as Go's `ServeMux` routes them (a prefix, the index or serial after it, a
//! bare prefix redirected to its slash form, `404 page not found` for anything else), with
//! Pebble's bodies and headers: one certificate per PEM resource (`/intermediates/<i>` is the
//! leaf's issuer only), RSA keys as PKCS#1, empty 404s and 400s, and the certificate status
//! as Pebble's indented JSON. Observed against Debian's Pebble 2.4 (the drop-in tests compare
//! the two side by side).

use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Pebble's media types: certificates, then private keys (Go adds the charset).
const PEM_CHAIN: &str = "application/pem-certificate-chain; charset=utf-8";
const PEM_KEY: &str = "application/x-pem-file; charset=utf-8";

/// Pebble's management routes: the prefix Go's `ServeMux` matches, and what it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Roots,
    RootKeys,
    Intermediates,
    IntermediateKeys,
    CertStatus,
    SetRenewalInfo,
}

/// One row per route: the path prefix (with its slash) and the route.
const ROUTES: &[(&str, Route)] = &[
    ("/roots/", Route::Roots),
    ("/root-keys/", Route::RootKeys),
    ("/intermediates/", Route::Intermediates),
    ("/intermediate-keys/", Route::IntermediateKeys),
    ("/cert-status-by-serial/", Route::CertStatus),
    ("/set-renewal-info/", Route::SetRenewalInfo),
];

/// The fallback of the drop-in's management router: Pebble's mux over every method.
pub async fn mux(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    for (prefix, route) in ROUTES {
        if path.len() + 1 == prefix.len() && prefix.starts_with(path) {
            return moved_to_slash(&method, prefix, uri.query());
        }
        let Some(rest) = path.strip_prefix(prefix) else {
            continue;
        };
        let host = crate::admin::authority(&uri, &headers);
        return match route {
            Route::Roots => {
                let list = s.ca.roots();
                let count = list.len();
                family(host, "roots", rest, count, PEM_CHAIN, |i| {
                    list.get(i).cloned()
                })
            }
            Route::RootKeys => family(host, "root-keys", rest, s.ca.roots().len(), PEM_KEY, |i| {
                s.ca.root_key_pem(i).map(cobble_ca::keys::traditional_pem)
            }),
            Route::Intermediates => {
                let count = s.ca.roots().len();
                family(host, "intermediates", rest, count, PEM_CHAIN, |i| {
                    s.ca.intermediates(i).into_iter().next()
                })
            }
            Route::IntermediateKeys => {
                let count = s.ca.roots().len();
                family(host, "intermediate-keys", rest, count, PEM_KEY, |i| {
                    s.ca.intermediate_key_pem(i)
                        .map(cobble_ca::keys::traditional_pem)
                })
            }
            Route::CertStatus => cert_status(&s, rest).await,
            Route::SetRenewalInfo => crate::admin::set_renewal_info(State(s), body).await,
        };
    }
    not_found_page()
}

/// Go's `ServeMux` answer to a path that names a prefix without its slash: 301 to it.
fn moved_to_slash(method: &Method, prefix: &str, query: Option<&str>) -> Response {
    let to = match query {
        Some(q) => format!("{prefix}?{q}"),
        None => prefix.to_owned(),
    };
    let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
    if let Ok(v) = HeaderValue::from_str(&to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if method == Method::GET || method == Method::HEAD {
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    if method == Method::GET {
        *r.body_mut() = format!("<a href=\"{to}\">Moved Permanently</a>.\n\n").into();
    }
    r
}

/// Go's `http.NotFound`: `404 page not found` as plain text.
fn not_found_page() -> Response {
    (
        StatusCode::NOT_FOUND,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        "404 page not found\n",
    )
        .into_response()
}

/// A bare status with an empty body (Pebble's `w.WriteHeader(...)` answers).
fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// One PEM resource of a family indexed by chain: the index after the prefix as Go's
/// `strconv.Atoi` reads it, 404 (empty) when it does not parse or names nothing, else the
/// PEM with one `Link: <https://HOST/{kind}/{j}>;rel="alternate"` per other chain `j`.
fn family(
    host: Option<String>,
    kind: &str,
    rest: &str,
    count: usize,
    media: &'static str,
    get: impl Fn(usize) -> Option<String>,
) -> Response {
    let Some(i) = rest
        .parse::<i64>()
        .ok()
        .and_then(|i| usize::try_from(i).ok())
    else {
        return empty(StatusCode::NOT_FOUND);
    };
    let Some(text) = get(i) else {
        return empty(StatusCode::NOT_FOUND);
    };
    let mut r = ([(header::CONTENT_TYPE, media)], text).into_response();
    if let Some(host) = host {
        crate::admin::link_alternates(&mut r, &host, kind, i, count);
    }
    r
}

/// Pebble 2.4's certificate status, its fields in its order.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CertStatus {
    status: &'static str,
    serial: String,
    certificate: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
}

/// `/cert-status-by-serial/<hex>`: the serial read as Go's `big.Int.SetString(s, 16)` does
/// (400, empty, when it does not parse; leading zeros and either case are fine), 404 (empty)
/// for no such certificate, else `Valid` or `Revoked` with the leaf, indented by three spaces.
async fn cert_status(s: &AppState, rest: &str) -> Response {
    let Some(serial) = normalize_serial(rest) else {
        return empty(StatusCode::BAD_REQUEST);
    };
    // Cobble's serials are 20 bytes: 40 hex digits with their leading zeros.
    if serial.len() > 40 {
        return empty(StatusCode::NOT_FOUND);
    }
    let stored = format!("{serial:0>40}");
    let cert = match s.store.certificate_by_serial(&stored).await {
        Ok(Some(c)) => c,
        Ok(None) => return empty(StatusCode::NOT_FOUND),
        Err(e) => {
            tracing::warn!(error = %e, "cert-status-by-serial: the store failed");
            return empty(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let leaf = cobble_ca::pem::certificates(&cert.pem)
        .ok()
        .and_then(|c| c.into_iter().next())
        .map_or_else(
            || cert.pem.clone(),
            |der| cobble_ca::pem::encode("CERTIFICATE", &der),
        );
    let body = CertStatus {
        status: if cert.revoked_ms.is_some() {
            "Revoked"
        } else {
            "Valid"
        },
        serial,
        certificate: leaf,
        reason: cert
            .revoked_ms
            .map(|_| cert.revoked_reason.unwrap_or_default()),
        revoked_at: cert.revoked_ms.map(go_time_string),
    };
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"   "),
    );
    if body.serialize(&mut ser).is_err() {
        return empty(StatusCode::INTERNAL_SERVER_ERROR);
    }
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        out,
    )
        .into_response()
}

/// The serial as Go prints a `big.Int` with `%x`: lowercase, no leading zeros; `None` when
/// `text` is not hexadecimal (an optional `+` sign allowed, as `SetString` allows).
fn normalize_serial(text: &str) -> Option<String> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let trimmed = digits.trim_start_matches('0').to_ascii_lowercase();
    Some(if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed
    })
}

/// Go's `time.Time.String()` of a UTC time, as Pebble writes `RevokedAt`:
/// `2006-01-02 15:04:05.999999999 +0000 UTC` (trailing zeros of the fraction dropped).
fn go_time_string(ms: i64) -> String {
    let base = cobble_core::clock::rfc3339(ms);
    let base = base.trim_end_matches('Z').replacen('T', " ", 1);
    let frac = format!("{:03}", ms.rem_euclid(1000));
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{base} +0000 UTC")
    } else {
        format!("{base}.{frac} +0000 UTC")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_read_as_go_reads_hex() {
        let rows = [
            ("042E19BFBF7C3793", Some("42e19bfbf7c3793")),
            ("42e19bfbf7c3793", Some("42e19bfbf7c3793")),
            ("+00ab", Some("ab")),
            ("000", Some("0")),
            ("", None),
            ("0x42", None),
            ("zz", None),
            ("-5", None),
            ("12/x", None),
        ];
        for (text, want) in rows {
            assert_eq!(normalize_serial(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn revocation_times_print_as_go_does() {
        // 2026-11-27T23:57:53.659Z
        let ms = 1_795_823_873_659;
        assert_eq!(go_time_string(ms), "2026-11-27 23:57:53.659 +0000 UTC");
        assert_eq!(
            go_time_string(ms - 659 + 500),
            "2026-11-27 23:57:53.5 +0000 UTC"
        );
        assert_eq!(go_time_string(ms - 659), "2026-11-27 23:57:53 +0000 UTC");
    }

    #[test]
    fn every_route_prefix_ends_with_a_slash() {
        for (prefix, _) in ROUTES {
            assert!(prefix.starts_with('/') && prefix.ends_with('/'), "{prefix}");
        }
    }
}
