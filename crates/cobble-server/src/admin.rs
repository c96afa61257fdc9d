//! The management listener (Pebble's port 15000, HTTPS). Public PKI data needs no token,
//! as Pebble serves it: the roots, the intermediates, a certificate's status by serial, and
//! `/health` and `/ready` for load balancers. Everything else needs the admin token as
//! `Authorization: Bearer`: today the CA's private keys, which are served only for a
//! generated CA and only with `--serve-ca-keys`.

use crate::config::ServerConfig;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cobble_core::Problem;
use cobble_core::clock::rfc3339;
use serde_json::json;
use std::path::PathBuf;

/// Pebble's media types on the management listener: certificates as
/// `application/pem-certificate-chain`, private keys as `application/x-pem-file`.
const PEM_CHAIN: &str = "application/pem-certificate-chain; charset=utf-8";
const PEM_KEY: &str = "application/x-pem-file; charset=utf-8";

/// One PEM resource of a family indexed by chain (`/roots/{i}`, `/intermediates/{i}`,
/// `/root-keys/{i}`, `/intermediate-keys/{i}`): `text` with `media`, and, as Pebble does when
/// there are alternate chains (`PEBBLE_ALTERNATE_ROOTS`), one `Link: <.../{kind}/{j}>;
/// rel="alternate"` per other chain `j`, so that client suites find every issuer.
/// One `Link: <https://HOST/{kind}/{j}>;rel="alternate"` per chain `j` other than `index`
/// (Pebble's way of naming every issuer), here and on the Pebble drop-in's listener.
pub(crate) fn link_alternates(
    resp: &mut Response,
    host: &str,
    kind: &str,
    index: usize,
    count: usize,
) {
    for j in (0..count).filter(|j| *j != index) {
        if let Ok(v) =
            HeaderValue::from_str(&format!("<https://{host}/{kind}/{j}>;rel=\"alternate\""))
        {
            resp.headers_mut().append(header::LINK, v);
        }
    }
}

fn pem(
    text: Option<String>,
    media: &'static str,
    alternates: Alternates<'_>,
    what: &str,
) -> Response {
    let Some(t) = text else {
        return crate::error::problem_response(&Problem::not_found(what));
    };
    let mut resp = ([(header::CONTENT_TYPE, media)], t).into_response();
    let Alternates {
        host,
        kind,
        index,
        count,
    } = alternates;
    if let Some(host) = host {
        link_alternates(&mut resp, host, kind, index, count);
    }
    resp
}

/// What [`pem`] needs to name the alternates of resource `index` of family `kind`.
struct Alternates<'a> {
    /// The authority the client asked for (HTTP/2 `:authority` or HTTP/1.1 `Host`).
    host: Option<&'a str>,
    kind: &'static str,
    index: usize,
    count: usize,
}

/// The authority of a request: the URI's (HTTP/2) or the Host header (HTTP/1.1).
pub(crate) fn authority(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    uri.authority().map(|a| a.to_string()).or_else(|| {
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
    })
}

async fn roots(
    State(s): State<AppState>,
    Path(i): Path<usize>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let host = authority(&uri, &headers);
    let roots = s.ca.roots();
    let alt = Alternates {
        host: host.as_deref(),
        kind: "roots",
        index: i,
        count: roots.len(),
    };
    pem(roots.get(i).cloned(), PEM_CHAIN, alt, &format!("root {i}"))
}

/// Why a private key is not served, if it is not.
fn key_refusal(s: &AppState) -> Option<Response> {
    let why = if s.cfg.ca_files.is_some() {
        "the private keys of an operator-supplied CA are never served"
    } else if !s.cfg.serve_ca_keys {
        "private keys are served only when the server runs with --serve-ca-keys"
    } else {
        return None;
    };
    Some(crate::error::problem_response(&Problem::unauthorized(why)))
}

async fn root_keys(
    State(s): State<AppState>,
    Path(i): Path<usize>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let host = authority(&uri, &headers);
    if let Some(r) = key_refusal(&s) {
        return r;
    }
    let alt = Alternates {
        host: host.as_deref(),
        kind: "root-keys",
        index: i,
        count: s.ca.roots().len(),
    };
    pem(
        s.ca.root_key_pem(i).map(str::to_owned),
        PEM_KEY,
        alt,
        &format!("root key {i}"),
    )
}

async fn intermediates(
    State(s): State<AppState>,
    Path(i): Path<usize>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let host = authority(&uri, &headers);
    let list = s.ca.intermediates(i);
    let alt = Alternates {
        host: host.as_deref(),
        kind: "intermediates",
        index: i,
        count: s.ca.roots().len(),
    };
    pem(
        (!list.is_empty()).then(|| list.concat()),
        PEM_CHAIN,
        alt,
        &format!("intermediates of root {i}"),
    )
}

async fn intermediate_keys(
    State(s): State<AppState>,
    Path(i): Path<usize>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let host = authority(&uri, &headers);
    if let Some(r) = key_refusal(&s) {
        return r;
    }
    let alt = Alternates {
        host: host.as_deref(),
        kind: "intermediate-keys",
        index: i,
        count: s.ca.roots().len(),
    };
    pem(
        s.ca.intermediate_key_pem(i).map(str::to_owned),
        PEM_KEY,
        alt,
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

/// `/health`: the process is up.
async fn health() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `/ready`: the database answers and its schema is current; otherwise 503 with
/// `Retry-After`, so a load balancer sends requests elsewhere meanwhile.
async fn ready(State(s): State<AppState>) -> Response {
    match s.store.ready().await {
        Ok(true) => axum::Json(json!({"status": "ready"})).into_response(),
        Ok(false) => unavailable("the database schema is not current yet"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            unavailable("the database cannot be reached")
        }
    }
}

fn unavailable(why: &str) -> Response {
    let mut r = crate::error::problem_response(&Problem::internal(why).with_status(503));
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// `/metrics`: this instance's Prometheus metrics (text format 0.0.4), with the job queues
/// and the database pool read now. Behind the admin token like every admin route but the
/// public PKI data and `/health`, `/ready`; Prometheus sends it as a bearer token.
async fn metrics(State(s): State<AppState>) -> Response {
    let mut g = crate::metrics::Gauges {
        pool: s.store.pool_stats(),
        ..Default::default()
    };
    match s.store.queue_stats(s.clock.now_ms()).await {
        Ok((v, i)) => {
            g.validation_queue = v;
            g.issuance_queue = i;
        }
        Err(e) => tracing::warn!(error = %e, "metrics: the job queues could not be read"),
    }
    g.acquire = s.store.acquire_probe().await.ok();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(&g),
    )
        .into_response()
}

/// `GET /admin/faults`: the fault rules in force and the seed.
async fn get_faults(State(s): State<AppState>) -> Response {
    axum::Json(s.faults.settings()).into_response()
}

/// `PUT /admin/faults`: replaces the fault rules (`{"rules": [...], "seed": N}`; a seed
/// restarts the random sequence), so a CI job can turn faults on for one test.
async fn put_faults(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    let settings: crate::faults::FaultSettings = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return crate::error::problem_response(&Problem::malformed(format!(
                "the body must be {{\"rules\": [{{\"kind\": ..., \"percent\": ..., \"endpoint\": ...}}], \"seed\": N}}: {e}"
            )));
        }
    };
    match s.faults.replace(settings) {
        Ok(()) => {
            tracing::info!(rules = ?s.faults.settings().rules, "fault rules replaced");
            axum::Json(s.faults.settings()).into_response()
        }
        Err(why) => crate::error::problem_response(&Problem::malformed(why)),
    }
}

/// Pebble's `POST /set-renewal-info/`: `{"certificate": PEM, "ariResponse": "<JSON text>"}`
/// (keys matched without case, as Pebble's decoder does) makes this instance answer that
/// renewalInfo for the certificate (RFC 9773), so clients can be tested against any window.
pub(crate) async fn set_renewal_info(
    State(s): State<AppState>,
    body: axum::body::Bytes,
) -> Response {
    let bad = |why: String| crate::error::problem_response(&Problem::malformed(why));
    let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(&body)
    else {
        return bad(
            "the body must be a JSON object {\"certificate\": PEM, \"ariResponse\": \"...\"}"
                .into(),
        );
    };
    let field = |name: &str| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    };
    let (Some(pem), Some(answer)) = (field("certificate"), field("ariResponse")) else {
        return bad("both \"certificate\" (PEM) and \"ariResponse\" (JSON text) are needed".into());
    };
    let answer: serde_json::Value = match serde_json::from_str(answer) {
        Ok(v @ serde_json::Value::Object(_)) if v["suggestedWindow"].is_object() => v,
        _ => {
            return bad(
                "\"ariResponse\" must be the JSON text of a renewalInfo object with a suggestedWindow (RFC 9773 §4.2)"
                    .into(),
            );
        }
    };
    let serial = match x509_parser::pem::parse_x509_pem(pem.as_bytes()) {
        Ok((_, p)) => match p.parse_x509() {
            Ok(c) => c
                .tbs_certificate
                .raw_serial()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            Err(e) => return bad(format!("\"certificate\" is not a certificate: {e}")),
        },
        Err(e) => return bad(format!("\"certificate\" is not PEM: {e}")),
    };
    s.faults.set_renewal_info(&serial, answer);
    tracing::info!(%serial, "renewalInfo overridden");
    axum::http::StatusCode::OK.into_response()
}

/// Lets a request through only with the admin token (compared in constant time); anything
/// else gets 401 with a problem document, and is logged.
async fn require_token(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let detail = match given {
        Some(t) if constant_time_eq(t.as_bytes(), s.admin_token.as_bytes()) => {
            return next.run(req).await;
        }
        Some(_) => "the admin token is wrong",
        None => {
            "this admin route needs Authorization: Bearer <token>; the token is in <data-dir>/admin-token"
        }
    };
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    tracing::warn!(path = %req.uri().path(), %peer, detail, "admin request refused");
    let mut r = crate::error::problem_response(&Problem::unauthorized(detail).with_status(401));
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// Equality whose time depends on the lengths only, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The admin token in effect and the file it lives in: the configured one, else the one
/// in `<data-dir>/admin-token`, made (random, mode 0600) when missing.
pub fn token(cfg: &ServerConfig) -> std::io::Result<(String, Option<PathBuf>)> {
    if let Some(t) = cfg.admin_token.as_deref().filter(|t| !t.is_empty()) {
        return Ok((t.to_owned(), None));
    }
    let path = cfg.data_dir.join("admin-token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok((t.trim().to_owned(), Some(path))),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut raw = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
        .map_err(|_| std::io::Error::other("the system RNG failed"))?;
    let t = cobble_core::b64::encode(raw);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(&mut opts.open(&path)?, format!("{t}\n").as_bytes())?;
    Ok((t, Some(path)))
}

/// The management router. With `pebble_management` (the Pebble drop-in), Pebble's routes
/// answer as Pebble 2.4's do, without the token ([`crate::pebble_mgmt`]); Cobble's own
/// routes keep the token either way.
pub fn router(state: AppState) -> Router {
    let cobble_only = Router::new()
        .merge(crate::admin_api::router())
        .route("/metrics", get(metrics))
        .route("/admin/faults", get(get_faults).put(put_faults));
    if state.cfg.pebble_management {
        return Router::new()
            .route("/health", get(health))
            .route("/ready", get(ready))
            .merge(
                cobble_only.route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    require_token,
                )),
            )
            .fallback(crate::pebble_mgmt::mux)
            .with_state(state);
    }
    let protected = cobble_only
        .route("/root-keys/{i}", get(root_keys))
        .route("/intermediate-keys/{i}", get(intermediate_keys))
        .route("/set-renewal-info/", axum::routing::post(set_renewal_info))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ));
    Router::new()
        .route("/roots/{i}", get(roots))
        .route("/intermediates/{i}", get(intermediates))
        .route("/cert-status-by-serial/{serial}", get(cert_status))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .merge(protected)
        .fallback(|| async { crate::error::problem_response(&Problem::not_found("this resource")) })
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn the_token_is_made_once_with_mode_0600_and_kept() {
        let dir = std::env::temp_dir().join(format!("cobble-admin-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_file(dir.join("admin-token"));
        let cfg = ServerConfig {
            data_dir: dir.clone(),
            ..ServerConfig::default()
        };
        let (a, path) = token(&cfg).unwrap();
        let path = path.unwrap();
        assert!(a.len() >= 40, "{a}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(token(&cfg).unwrap().0, a, "kept across starts");
        let given = ServerConfig {
            admin_token: Some("given".into()),
            ..cfg
        };
        assert_eq!(token(&given).unwrap(), ("given".to_owned(), None));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
