//! The directory (RFC 8555 §7.1.1), newNonce (§7.2), the terms and the info page, and the
//! endpoints whose issues have not landed yet.

use crate::auth::{Authed, KeyMode};
use crate::error::AcmeResult;
use crate::state::{AppState, Urls};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cobble_core::Problem;
use serde_json::{Map, Value, json};

/// Boulder's explanation for the random directory entry.
const RANDOM_ENTRY_URL: &str =
    "https://community.letsencrypt.org/t/adding-random-entries-to-the-directory/33417";

/// Where the terms of service live for this request, if any.
pub fn terms_url(s: &AppState, base: &str) -> Option<String> {
    match s.cfg.terms_of_service.as_deref() {
        None => Some(Urls(base).path("/terms")),
        Some("") => None,
        Some(url) => Some(url.to_owned()),
    }
}

/// GET /dir and /directory.
pub async fn directory(State(s): State<AppState>, req: Request) -> Response {
    let base = s.base_url(req.headers(), req.uri());
    directory_object(&s, &base)
}

/// POST-as-GET /dir and /directory (RFC 8555 §6.3: every GET resource also answers POST-as-GET).
pub async fn directory_post(State(s): State<AppState>, req: Request) -> AcmeResult {
    let r = authenticated_read(&s, req, "the directory").await?;
    Ok(directory_object(&s, &r.base))
}

/// POST-as-GET newNonce: 204 like GET (RFC 8555 §6.3, §7.2); the nonce rides on every POST response.
pub async fn new_nonce_post(State(s): State<AppState>, req: Request) -> AcmeResult {
    authenticated_read(&s, req, "newNonce").await?;
    Ok(no_store(StatusCode::NO_CONTENT.into_response()))
}

/// Authenticates a POST-as-GET of a resource that is otherwise public, and uses its nonce up.
async fn authenticated_read(s: &AppState, req: Request, what: &str) -> AcmeResult<Authed> {
    let r = s.authenticate(req, KeyMode::Kid).await?;
    if !r.jws.is_post_as_get() {
        return Err(Problem::malformed(format!(
            "{what} is read with GET or POST-as-GET (empty payload)"
        ))
        .into());
    }
    s.store.redeem_nonce(&r.nonce).await?;
    Ok(r)
}

/// The directory object (RFC 8555 §7.1.1) for requests to `base`.
fn directory_object(s: &AppState, base: &str) -> Response {
    let u = Urls(base);
    let mut meta = Map::new();
    if let Some(t) = terms_url(s, base) {
        meta.insert("termsOfService".into(), t.into());
    }
    match s.cfg.website.as_deref() {
        None => {
            meta.insert("website".into(), u.path("/").into());
        }
        Some("") => {}
        Some(w) => {
            meta.insert("website".into(), w.into());
        }
    }
    meta.insert("caaIdentities".into(), json!(s.cfg.caa_identities));
    meta.insert("externalAccountRequired".into(), s.cfg.eab_required.into());
    let profiles: Map<String, Value> = s
        .cfg
        .profiles
        .iter()
        .map(|p| (p.name.clone(), Value::from(p.description.clone())))
        .collect();
    meta.insert("profiles".into(), Value::Object(profiles));
    let mut dir = Map::new();
    dir.insert("newNonce".into(), u.path(Urls::NEW_NONCE_PATH).into());
    dir.insert("newAccount".into(), u.path("/acme/new-acct").into());
    dir.insert("newOrder".into(), u.path("/acme/new-order").into());
    if s.cfg.pre_authorization {
        dir.insert("newAuthz".into(), u.path("/acme/new-authz").into());
    }
    dir.insert("revokeCert".into(), u.path("/acme/revoke-cert").into());
    dir.insert("keyChange".into(), u.path("/acme/key-change").into());
    dir.insert("renewalInfo".into(), u.path("/acme/renewal-info").into());
    dir.insert("meta".into(), Value::Object(meta));
    dir.insert(s.random_dir_key.clone(), RANDOM_ENTRY_URL.into());
    axum::Json(Value::Object(dir)).into_response()
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// HEAD newNonce: 200 (RFC 8555 §7.2). The common layer adds the nonce.
pub async fn new_nonce_head() -> Response {
    no_store(StatusCode::OK.into_response())
}

/// GET newNonce: 204 (RFC 8555 §7.2).
pub async fn new_nonce_get() -> Response {
    no_store(StatusCode::NO_CONTENT.into_response())
}

/// GET /terms: the built-in terms of service.
pub async fn terms() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Cobble test CA terms of service\n\nThis is a test certificate authority. Certificates it issues are for testing\n\
         and are not trusted by anything but your own test set-up. There is no warranty.\n",
    )
        .into_response()
}

/// GET /: a short page saying what this server is.
pub async fn index(State(s): State<AppState>, req: Request) -> Response {
    let base = s.base_url(req.headers(), req.uri());
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "Cobble {} - an ACME (RFC 8555) server and test CA.\nDirectory: {}\n",
            env!("CARGO_PKG_VERSION"),
            Urls(&base).directory()
        ),
    )
        .into_response()
}
