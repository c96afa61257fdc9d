//! Cobble's ACME web front end: axum routes, JWS authentication, nonces, accounts.
//!
//! [`start`] binds the HTTPS listener and returns a [`Running`] server; the binary and
//! the integration tests both use it.
#![forbid(unsafe_code)]

pub mod admin;
pub mod admin_api;
pub mod auth;
pub mod config;
pub mod error;
pub mod faults;
pub mod issuer;
pub mod metrics;
pub mod pebble_config;
pub mod pebble_mgmt;
pub mod proxy;
pub mod ra;
pub mod ratelimit;
pub mod routes;
pub mod state;
pub mod tls;
pub mod validate;
pub mod worker;

use crate::config::ServerConfig;
use crate::error::problem_response;
use crate::state::{AppState, Inner};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use cobble_core::Problem;
use cobble_core::clock::Clock;
use cobble_core::jwk::KeyPolicy;
use cobble_core::nonce::NonceSealer;
use cobble_store::{Store, StoreOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] cobble_store::StoreError),
    /// The HTTPS identity could not be made.
    #[error("HTTPS certificate: {0}")]
    Tls(#[from] tls::TlsError),
    /// The listener could not be bound, or a directory made.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The validation authority could not be built (e.g. no usable DNS configuration).
    #[error("validation: {0}")]
    Va(#[from] cobble_va::VaError),
    /// The CA hierarchy could not be made or loaded.
    #[error("CA: {0}")]
    Ca(#[from] cobble_ca::CaError),
    /// The listener stopped before it was ready.
    #[error("the listener did not come up")]
    NotListening,
    /// A setting that cannot be used.
    #[error("configuration: {0}")]
    Config(String),
}

/// A started server.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The directory URL clients use.
    pub directory_url: String,
    /// The HTTPS trust root clients must trust (`None` with an operator-supplied certificate).
    pub trust_root: Option<PathBuf>,
    /// The database URL in use.
    pub database_url: String,
    /// The issuing root, PEM file.
    pub issuing_root: PathBuf,
    /// The management listener's URL, when on.
    pub admin_url: Option<String>,
    /// Where the admin token is kept (`None` when it was given in the configuration).
    pub admin_token_file: Option<PathBuf>,
    /// The store, for tests and tools that look behind the API.
    pub store: Store,
    /// The plain-HTTP listener's address (for a TLS-terminating proxy), when on.
    pub http_addr: Option<SocketAddr>,
    http: Option<(
        axum_server::Handle<SocketAddr>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
    handle: axum_server::Handle<SocketAddr>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    admin: Option<(
        axum_server::Handle<SocketAddr>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
    housekeeping: tokio::task::JoinHandle<()>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    state: AppState,
    grace: Duration,
}

impl Running {
    /// Stops accepting connections, lets in-flight requests finish (up to the grace period), closes the store.
    pub async fn shutdown(self) {
        self.handle.graceful_shutdown(Some(self.grace));
        if let Some((h, task)) = self.admin {
            h.graceful_shutdown(Some(self.grace));
            let _ = task.await;
        }
        if let Some((h, task)) = self.http {
            h.graceful_shutdown(Some(self.grace));
            let _ = task.await;
        }
        let _ = self.server.await;
        self.housekeeping.abort();
        for w in &self.workers {
            w.abort();
        }
        for t in self
            .state
            .issuing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
        self.store.close().await;
    }
}

/// Builds the router over `state`.
pub fn router(state: AppState) -> Router {
    with_common_layers(acme_routes(), state)
}

fn acme_routes() -> Router<AppState> {
    use routes::{account, authz, directory, issuance, key_change, order, pki, revoke};
    Router::new()
        .route("/", get(directory::index))
        .route(
            "/dir",
            get(directory::directory).post(directory::directory_post),
        )
        .route(
            "/directory",
            get(directory::directory).post(directory::directory_post),
        )
        .route("/terms", get(directory::terms))
        .route(
            state::Urls::NEW_NONCE_PATH,
            get(directory::new_nonce_get)
                .head(directory::new_nonce_head)
                .post(directory::new_nonce_post),
        )
        .route("/acme/new-acct", post(account::new_account))
        .route("/acme/acct/{id}", post(account::account))
        .route("/acme/acct/{id}/orders", post(order::list))
        .route("/acme/new-order", post(order::new_order))
        .route("/acme/order/{id}", post(order::order))
        .route("/acme/order/{id}/finalize", post(issuance::finalize))
        .route("/acme/cert/{id}", post(issuance::certificate))
        .route("/acme/cert/{id}/{alt}", post(issuance::certificate))
        .route("/acme/issuer", get(issuance::issuer))
        .route("/crl", get(pki::crl))
        .route("/ocsp", post(pki::ocsp_post))
        .route("/ocsp/{*req}", get(pki::ocsp_get))
        .route("/acme/authz/{id}", post(authz::authz))
        .route("/acme/chall/{id}", post(authz::challenge))
        .route("/acme/new-authz", post(authz::new_authz))
        .route("/acme/revoke-cert", post(revoke::revoke))
        .route("/acme/key-change", post(key_change::key_change))
        .route("/acme/renewal-info/{id}", get(pki::renewal_info))
        .route("/renewal-info-explained", get(pki::renewal_explained))
        .route("/help/account/{id}", get(crate::ra::help::account))
        .route("/rate-limits", get(crate::ratelimit::page))
        .fallback(|| async { problem_response(&Problem::not_found("this resource")) })
}

/// Panics become `serverInternal` problems; then the common headers (outermost).
fn with_common_layers(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |panic: Box<dyn std::any::Any + Send>| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %what, "handler panicked");
                problem_response(&Problem::internal(
                    "the server hit an internal error handling this request; it has been logged",
                ))
            },
        ))
        .layer(axum::middleware::from_fn_with_state(
            (
                state.clone(),
                Arc::new(ratelimit::RequestLimiters::new(&state.cfg.rate_limits)),
            ),
            ratelimit::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            faults::middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), common))
        .with_state(state)
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

/// How much of an oversized body is read (and thrown away) before the 413 is sent, so
/// that the client sees the answer instead of a cut connection or a reset stream.
const DRAIN_CAP: usize = 16 << 20;

/// How long a client gets to send its whole request body.
const BODY_DEADLINE: Duration = Duration::from_secs(30);

/// Per-request span; the body read whole before routing; the nonce of a verified request
/// used up when the handler fails; `Replay-Nonce` on POST and newNonce responses and
/// `Link: rel="index"` on every response (RFC 8555 §6.5, §7.1, §7.2); problem bodies for
/// the router's own 405 responses.
async fn common(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = REQUEST_IDS.fetch_add(1, Ordering::Relaxed);
    let started = std::time::Instant::now();
    let endpoint = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = id, method = %req.method(), path = %req.uri().path(), account = tracing::field::Empty, order = tracing::field::Empty);
    let base = s.base_url(req.headers(), req.uri());
    let gets_nonce =
        req.method() == Method::POST || req.uri().path() == state::Urls::NEW_NONCE_PATH;
    let slot = auth::NonceSlot::default();
    req.extensions_mut().insert(slot.clone());
    let mut resp = match read_body(req, s.cfg.max_body_bytes).await {
        Ok(req) => tracing::Instrument::instrument(next.run(req), span.clone()).await,
        Err(problem) => problem_response(&problem),
    };
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && !resp.headers().contains_key(header::CONTENT_TYPE)
    {
        let allow = resp.headers().get(header::ALLOW).cloned();
        resp = problem_response(
            &Problem::malformed(
                "method not allowed: ACME resources are read with POST-as-GET (RFC 8555 §6.3)",
            )
            .with_status(405),
        );
        if let Some(a) = allow {
            resp.headers_mut().insert(header::ALLOW, a);
        }
    }
    // When the database is unreachable (503) there is no using the nonce up either.
    let nonce = slot.take();
    if resp.status().is_success() && nonce.is_some() {
        s.metrics.nonce_redeemed();
    }
    if !resp.status().is_success()
        && resp.status() != StatusCode::SERVICE_UNAVAILABLE
        && let Some(nonce) = nonce
    {
        // RFC 8555 §6.5: one request per nonce, whatever its outcome. A handler that
        // failed after its transaction redeemed the nonce finds it used: nothing to do.
        match s.store.redeem_nonce(&nonce).await {
            Ok(()) => s.metrics.nonce_redeemed(),
            Err(cobble_store::StoreError::NonceReused) => {}
            Err(e) => span.in_scope(
                || tracing::warn!(error = %e, "could not use up the nonce of a failed request"),
            ),
        }
    }
    let problem = resp.extensions().get::<error::ProblemTag>().copied();
    let h = resp.headers_mut();
    if gets_nonce && let Ok(v) = HeaderValue::from_str(&s.mint_nonce()) {
        h.insert("replay-nonce", v);
        s.metrics.nonce_issued();
    }
    h.insert("x-request-id", HeaderValue::from(id));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "<{}>;rel=\"index\"",
        state::Urls(&base).directory()
    )) {
        h.append(header::LINK, v);
    }
    span.in_scope(|| tracing::debug!(status = resp.status().as_u16(), "response"));
    s.metrics.request(
        &endpoint,
        method.as_str(),
        resp.status().as_u16(),
        started.elapsed(),
    );
    if let Some(p) = problem {
        s.metrics
            .problem(&endpoint, p.kind, p.code.unwrap_or_default());
    }
    resp
}

/// Reads the request body whole before any handler runs, so that every answer, the
/// earliest refusals included (415, 405, 404), goes out after the request was consumed:
/// HTTP/1.1 keeps the connection and HTTP/2 closes the stream cleanly. A body over
/// `limit` is read on (up to [`DRAIN_CAP`]) and dropped, then refused with 413.
async fn read_body(req: Request, limit: usize) -> Result<Request, Problem> {
    use http_body_util::BodyExt;
    let too_large = || {
        Problem::malformed(format!(
            "request body is larger than {limit} bytes (RFC 8555 §6.2 requests are small JWS objects)"
        ))
        .with_status(413)
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_CAP as u64) {
        return Err(too_large());
    }
    let (parts, mut body) = req.into_parts();
    let mut kept = Vec::new();
    let mut total = 0usize;
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|_| Problem::malformed("the request body could not be read to its end"))?;
            if let Ok(data) = frame.into_data() {
                total += data.len();
                if total <= limit {
                    kept.extend_from_slice(&data);
                } else if total > DRAIN_CAP {
                    break;
                }
            }
        }
        Ok::<_, Problem>(())
    };
    tokio::time::timeout(BODY_DEADLINE, read)
        .await
        .map_err(|_| {
            Problem::malformed(format!(
                "the request body did not arrive within {} seconds",
                BODY_DEADLINE.as_secs()
            ))
            .with_status(408)
        })??;
    if total > limit {
        return Err(too_large());
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(kept)))
}

/// Opens the store, makes the HTTPS identity, binds the listener and serves until shut down.
pub async fn start(cfg: ServerConfig, clock: Arc<dyn Clock>) -> Result<Running, StartError> {
    for (i, o) in cfg.rate_limits.overrides.iter().enumerate() {
        o.subject()
            .map_err(|e| StartError::Config(format!("rate-limits.overrides[{i}]: {e}")))?;
    }
    std::fs::create_dir_all(&cfg.data_dir)?;
    let database_url = cfg.effective_database_url();
    let store = Store::connect(
        &database_url,
        &StoreOptions {
            max_connections: cfg.database_max_connections,
            acquire_timeout: Duration::from_millis(cfg.database_acquire_timeout_ms.max(1)),
            ..StoreOptions::default()
        },
    )
    .await?;
    let key = store.nonce_key().await?;
    if !cfg.eab_mac_keys.is_empty() {
        // Pre-made EAB keys (Pebble's externalAccountMACKeys): valid, unrestricted external
        // accounts, made once; an operator's later changes to them are kept.
        let mut tx = store.begin().await?;
        for (kid, mac) in &cfg.eab_mac_keys {
            if tx
                .ensure_external_account(kid, mac.trim_end_matches('='), clock.now_ms())
                .await?
            {
                tracing::info!(%kid, "external account made from the configured MAC keys");
            }
        }
        tx.commit().await?;
    }
    let mut seed = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
        .expect("system RNG");
    let sealer = NonceSealer::new(
        &key,
        u64::from_be_bytes(seed),
        cfg.nonce_lifetime_secs as i64 * 1000,
    );

    let mut tls_names = cfg.tls_names.clone();
    if let Some(host) = cfg
        .external_url
        .split("://")
        .nth(1)
        .and_then(|r| r.split(['/', ':']).next())
        && !host.is_empty()
    {
        tls_names.push(host.to_owned());
    }
    let ident = tls::identity(
        &cfg.data_dir,
        cfg.tls_cert.as_deref(),
        cfg.tls_key.as_deref(),
        &tls_names,
        clock.now_ms(),
    )?;
    let rustls_cfg = axum_server::tls_rustls::RustlsConfig::from_pem(
        ident.cert_chain_pem.into_bytes(),
        ident.key_pem.into_bytes(),
    )
    .await?;

    let listener = std::net::TcpListener::bind(cfg.listen)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let fallback_authority = if addr.ip().is_loopback() && addr.is_ipv4() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    };
    let grace = Duration::from_secs(cfg.shutdown_grace_secs);
    let ca_dir = cfg.data_dir.join("ca");
    let now = time::OffsetDateTime::from_unix_timestamp(clock.now_ms() / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let hierarchy = {
        let (dir, ca_cfg, files) = (ca_dir.clone(), cfg.ca.clone(), cfg.ca_files.clone());
        tokio::task::spawn_blocking(move || match files {
            Some(f) => cobble_ca::Hierarchy::from_pem_files(
                &f.root,
                f.intermediates.as_deref(),
                &f.issuer_key,
            ),
            None => cobble_ca::Hierarchy::load_or_create(&dir, &ca_cfg, now),
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??
    };
    std::fs::create_dir_all(&ca_dir)?;
    let issuing_root = ca_dir.join("root.pem");
    std::fs::write(&issuing_root, hierarchy.roots().concat())?;
    let validator = make_validator(&cfg)?;
    let (admin_token, admin_token_file) = admin::token(&cfg)?;
    let state = AppState(Arc::new(Inner {
        ca: Arc::new(hierarchy),
        validator: validator.clone(),
        crl: tokio::sync::Mutex::new(None),
        metrics: Default::default(),
        faults: Arc::new(faults::Faults::new(cfg.faults.clone(), cfg.seed)),
        key_policy: KeyPolicy {
            rsa_min_bits: cfg.rsa_min_bits,
            ..KeyPolicy::default()
        },
        random_dir_key: cobble_store::random_id()[..11].to_owned(),
        fallback_authority: fallback_authority.clone(),
        id_policy: cfg.identifier_policy(),
        validations: worker::Validations::new(cfg.validation_workers.max(1)),
        admin_token,
        instance_id: cobble_store::random_id(),
        issuing: Default::default(),
        cfg,
        store: store.clone(),
        sealer,
        clock: clock.clone(),
    }));
    let directory_url = if state.cfg.external_url.is_empty() {
        format!("https://{fallback_authority}/dir")
    } else {
        format!("{}/dir", state.cfg.external_url.trim_end_matches('/'))
    };
    let app = router(state.clone());
    let handle = axum_server::Handle::new();
    let (admin, admin_url) = match state.cfg.admin_listen {
        Some(addr) => {
            let l = std::net::TcpListener::bind(addr)?;
            l.set_nonblocking(true)?;
            let bound = l.local_addr()?;
            let h = axum_server::Handle::new();
            let task = tokio::spawn(
                axum_server::from_tcp_rustls(l, rustls_cfg.clone())?
                    .handle(h.clone())
                    .serve(admin::router(state.clone()).into_make_service()),
            );
            h.listening().await.ok_or(StartError::NotListening)?;
            let host = if bound.ip().is_loopback() && bound.is_ipv4() {
                format!("localhost:{}", bound.port())
            } else {
                bound.to_string()
            };
            (Some((h, task)), Some(format!("https://{host}")))
        }
        None => (None, None),
    };
    let server = tokio::spawn(
        axum_server::from_tcp_rustls(listener, rustls_cfg)?
            .handle(handle.clone())
            .serve(app.into_make_service_with_connect_info::<SocketAddr>()),
    );
    handle.listening().await.ok_or(StartError::NotListening)?;
    let (http, http_addr) = match state.cfg.http_listen {
        Some(addr) => {
            let l = std::net::TcpListener::bind(addr)?;
            l.set_nonblocking(true)?;
            let bound = l.local_addr()?;
            let h = axum_server::Handle::new();
            let app = router(state.clone()).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                proxy::forwarded,
            ));
            let task = tokio::spawn(
                axum_server::from_tcp(l)?
                    .handle(h.clone())
                    .serve(app.into_make_service_with_connect_info::<SocketAddr>()),
            );
            h.listening().await.ok_or(StartError::NotListening)?;
            (Some((h, task)), Some(bound))
        }
        None => (None, None),
    };
    let housekeeping = tokio::spawn(housekeeping(state.clone()));
    let mut workers = worker::spawn(state.clone());
    workers.push(issuer::spawn_worker(state.clone()));
    Ok(Running {
        addr,
        directory_url,
        trust_root: ident.trust_root,
        database_url,
        issuing_root,
        admin_url,
        admin_token_file,
        admin,
        store,
        http,
        http_addr,
        handle,
        server,
        housekeeping,
        workers,
        state,
        grace,
    })
}

/// The validator the configuration asks for.
fn make_validator(cfg: &ServerConfig) -> Result<Arc<dyn validate::ChallengeValidator>, StartError> {
    if cfg.va_always_valid {
        tracing::warn!("va-always-valid is on: every challenge passes without a network check");
        return Ok(Arc::new(validate::AlwaysValid));
    }
    let va = cobble_va::Validator::new(cobble_va::VaConfig {
        http01_port: cfg.http01_port,
        https01_port: cfg.https01_port,
        redirect_any_port: cfg.va_redirect_any_port,
        tlsalpn01_port: cfg.tlsalpn01_port,
        dns_server: cfg.dns_server,
        timeout: Duration::from_secs(cfg.validation_timeout_secs.max(1)),
        caa_identities: cfg.caa_identities.clone(),
        addresses: cfg.address_policy(),
    })?;
    if !cfg.caa_check {
        tracing::info!("caa-check is off: no CAA lookups before validation or issuance");
        return Ok(Arc::new(validate::WithoutCaa(Arc::new(va))));
    }
    Ok(Arc::new(va))
}

/// Rows per pruning transaction: small, so the writer is never held for long.
const PRUNE_BATCH: usize = 500;

/// Periodic upkeep: prunes expired nonces, and orders, authorizations and certificates
/// past the retention period, in small batches (see `Store::prune`); and the rate limits'
/// state nothing can count any more (see [`rate_limit_horizon_ms`]).
async fn housekeeping(s: AppState) {
    let retention_ms = (s.cfg.retention_days as i64).saturating_mul(86_400_000);
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tick.tick().await;
        let now = s.clock.now_ms();
        match s.store.prune(now, retention_ms, PRUNE_BATCH).await {
            Ok(p) if p != Default::default() => tracing::debug!(?p, "pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning failed"),
        }
        let horizon = match s.store.limit_overrides().await {
            Ok(stored) => {
                let stored: Vec<_> = stored.into_iter().map(|o| o.rule).collect();
                rate_limit_horizon_ms(&s, &stored, retention_ms)
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the rate-limit overrides failed");
                continue;
            }
        };
        match s
            .store
            .prune_rate_limit_state(now - horizon, now.saturating_mul(1000), PRUNE_BATCH)
            .await
        {
            Ok((0, 0)) => {}
            Ok((events, buckets)) => tracing::debug!(events, buckets, "pruned rate-limit state"),
            Err(e) => tracing::warn!(error = %e, "pruning the rate-limit state failed"),
        }
    }
}

/// How long an issuance event can still matter: for the longest window of any limit or
/// override, and, because an event also marks a later order for the same names as a
/// renewal, for as long as a certificate can live (398 days, the longest TLS validity)
/// plus the retention period.
fn rate_limit_horizon_ms(
    s: &AppState,
    stored: &[cobble_core::ratelimit::Override],
    retention_ms: i64,
) -> i64 {
    const LONGEST_VALIDITY_MS: i64 = 398 * 86_400_000;
    crate::ra::limits::longest_window_ms(s, stored)
        .max(LONGEST_VALIDITY_MS.saturating_add(retention_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    async fn state() -> AppState {
        let store = Store::connect("sqlite::memory:", &StoreOptions::default())
            .await
            .unwrap();
        AppState(Arc::new(Inner {
            cfg: ServerConfig::default(),
            sealer: NonceSealer::new(b"k", 1, 60_000),
            store,
            clock: Arc::new(cobble_core::clock::SystemClock),
            key_policy: KeyPolicy::default(),
            random_dir_key: "r".into(),
            fallback_authority: "localhost:1".into(),
            id_policy: Default::default(),
            validations: worker::Validations::new(1),
            admin_token: "t".into(),
            instance_id: "i".into(),
            issuing: Default::default(),
            ca: Arc::new(
                cobble_ca::Hierarchy::generate(
                    &Default::default(),
                    time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000),
                )
                .unwrap(),
            ),
            validator: Arc::new(validate::AlwaysValid),
            crl: Default::default(),
            metrics: Default::default(),
            faults: Arc::new(faults::Faults::new(Vec::new(), Some(1))),
        }))
    }

    #[tokio::test]
    async fn a_panicking_handler_becomes_server_internal() {
        let s = state().await;
        let app = with_common_layers(
            Router::new().route(
                "/boom",
                get(|| async {
                    let fail = true;
                    if fail {
                        panic!("handler bug");
                    }
                    "unreachable"
                }),
            ),
            s,
        );
        let resp = app
            .oneshot(Request::builder().uri("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 500);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        // RFC 8555 §6.5: nonces ride on POST and newNonce responses only.
        assert!(!resp.headers().contains_key("replay-nonce"));
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], "urn:ietf:params:acme:error:serverInternal");
        assert_eq!(v["status"], 500);
    }
}
