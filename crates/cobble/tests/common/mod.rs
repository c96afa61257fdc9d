//! Test harness: a real `cobble serve` (in-process, random port, HTTPS) on SQLite or on a
//! real PostgreSQL, and a hand-rolled ACME client for the bad paths.
#![allow(dead_code)]

pub mod dropin;
pub mod ports;
pub mod prom;

use cobble_core::b64;
use cobble_core::clock::{Clock, ManualClock, SystemClock};
use cobble_core::sign::Signer;
use cobble_server::config::ServerConfig;
use serde_json::{Value, json};
use std::sync::Arc;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per engine: `both_engines!(name);` expects `async fn name(e: Engine)`.
#[macro_export]
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Engine::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::Engine::Postgres).await
                }
            }
        )*
    };
}

/// A fresh database URL for one test.
pub async fn database_url(engine: Engine, dir: &std::path::Path) -> String {
    match engine {
        Engine::Sqlite => format!("sqlite://{}", dir.join("cobble.db").display()),
        Engine::Postgres => {
            let admin = std::env::var("COBBLE_TEST_PG_URL").expect(
                "COBBLE_TEST_PG_URL is not set: run the tests with scripts/test.sh, which starts a \
                 throwaway PostgreSQL, or point COBBLE_TEST_PG_URL at a server where databases can be created",
            );
            cobble_store::testdb::fresh_postgres_database(&admin, "t")
                .await
                .expect("create test database")
        }
    }
}

/// A running server and what a test needs to talk to it.
pub struct TestServer {
    pub running: Option<cobble_server::Running>,
    pub dir: tempfile::TempDir,
    pub directory_url: String,
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Option<ManualClock>,
    pub database_url: String,
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Server config for tests: random port, a temp data dir.
pub fn test_config(dir: &std::path::Path, database_url: String) -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_owned(),
        database_url,
        database_max_connections: 4,
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        shutdown_grace_secs: 2,
        // Tests that exercise the rate limits turn them on; the rest issue freely.
        no_rate_limits: true,
        ..ServerConfig::default()
    }
}

impl TestServer {
    /// Starts a server on `engine` with the default config.
    pub async fn start(engine: Engine) -> Self {
        Self::start_with(engine, |_| {}, false).await
    }

    /// Starts a server with a config tweak; `manual_clock` gives the test control of time.
    pub async fn start_with(
        engine: Engine,
        tweak: impl FnOnce(&mut ServerConfig),
        manual_clock: bool,
    ) -> Self {
        install_crypto();
        let dir = tempfile::tempdir().unwrap();
        let url = database_url(engine, dir.path()).await;
        let mut cfg = test_config(dir.path(), url.clone());
        tweak(&mut cfg);
        Self::start_cfg(cfg, dir, manual_clock).await
    }

    pub async fn start_cfg(cfg: ServerConfig, dir: tempfile::TempDir, manual_clock: bool) -> Self {
        install_crypto();
        let clock = manual_clock.then(|| ManualClock::new(SystemClock.now_ms()));
        let c: Arc<dyn Clock> = match &clock {
            Some(m) => Arc::new(m.clone()),
            None => Arc::new(SystemClock),
        };
        let database_url = cfg.effective_database_url();
        let running = cobble_server::start(cfg, c).await.expect("server starts");
        let root = std::fs::read(running.trust_root.as_ref().unwrap()).unwrap();
        let http = client_trusting(&root);
        let directory_url = running.directory_url.clone();
        let base = directory_url.trim_end_matches("/dir").to_owned();
        TestServer {
            running: Some(running),
            dir,
            directory_url,
            base,
            http,
            clock,
            database_url,
        }
    }

    pub fn trust_root(&self) -> std::path::PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A fresh nonce from newNonce.
    pub async fn nonce(&self) -> String {
        let r = self
            .http
            .head(self.url("/acme/new-nonce"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.headers()["replay-nonce"].to_str().unwrap().to_owned()
    }

    /// POSTs a JWS body with the ACME content type.
    pub async fn post(&self, url: &str, body: &Value) -> Reply {
        self.post_raw(url, body.to_string().into_bytes(), "application/jose+json")
            .await
    }

    pub async fn post_raw(&self, url: &str, body: Vec<u8>, ctype: &str) -> Reply {
        let r = self
            .http
            .post(url)
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        let mut reply = Reply::from(r).await;
        reply.post = true;
        reply
    }

    /// Creates an account for `signer` by hand; returns its URL.
    pub async fn new_account(&self, signer: &Signer, payload: Value) -> Reply {
        let url = self.url("/acme/new-acct");
        let body = signer.sign_with_jwk(&url, Some(&self.nonce().await), Some(&payload));
        self.post(&url, &body).await
    }

    /// Creates an account that agrees to the terms; returns its URL (kid).
    pub async fn account(&self, signer: &Signer) -> String {
        let r = self
            .new_account(signer, serde_json::json!({"termsOfServiceAgreed": true}))
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        r.location.unwrap()
    }

    /// A `kid`-signed POST.
    pub async fn post_kid(
        &self,
        signer: &Signer,
        kid: &str,
        url: &str,
        payload: Option<&Value>,
    ) -> Reply {
        let body = signer.sign_with_kid(kid, url, &self.nonce().await, payload);
        self.post(url, &body).await
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// A reqwest client that trusts only `root_pem`.
pub fn client_trusting(root_pem: &[u8]) -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(root_pem).unwrap())
        .build()
        .unwrap()
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub location: Option<String>,
    pub body: Value,
    pub text: String,
    /// Whether this answers a POST (then a problem carries `Replay-Nonce`, RFC 8555 §6.5).
    pub post: bool,
}

impl Reply {
    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let location = headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            location,
            body,
            text,
            post: false,
        }
    }

    /// Asserts an RFC 7807 problem of ACME type `kind`, HTTP `status`, with `fragment` in its detail.
    #[track_caller]
    pub fn assert_problem(&self, kind: &str, status: u16, fragment: &str) {
        assert_eq!(self.status, status, "status: {self:?}");
        assert_eq!(
            self.headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/problem+json"),
            "content type: {self:?}"
        );
        assert_eq!(
            self.body["type"],
            format!("urn:ietf:params:acme:error:{kind}"),
            "{self:?}"
        );
        assert_eq!(self.body["status"], status, "{self:?}");
        let detail = self.body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(fragment),
            "detail {detail:?} lacks {fragment:?}"
        );
        // RFC 8555 §6.5: answers to POST carry a fresh nonce for the retry, GET answers none.
        assert_eq!(
            self.headers.contains_key("replay-nonce"),
            self.post,
            "Replay-Nonce on POST answers only: {self:?}"
        );
    }
}

/// Encodes a protected header and payload without signing (for malformed-signature cases).
pub fn b64json(v: &Value) -> String {
    b64::encode(v.to_string())
}

/// A Cobble server whose validation goes to an in-process challtestsrv (mock DNS, http-01,
/// tls-alpn-01 responders), all on loopback.
pub struct ValidationEnv {
    pub server: TestServer,
    pub chall: cobble_challtestsrv::Running,
}

impl ValidationEnv {
    pub async fn start(engine: Engine, tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_clock(engine, tweak, false).await
    }

    pub async fn start_clock(
        engine: Engine,
        tweak: impl FnOnce(&mut ServerConfig),
        manual_clock: bool,
    ) -> Self {
        install_crypto();
        let cfg = cobble_challtestsrv::ChalltestConfig {
            default_ipv6: None,
            ..cobble_challtestsrv::ChalltestConfig::loopback_ephemeral()
        };
        let chall = cobble_challtestsrv::start(cfg)
            .await
            .expect("challtestsrv starts");
        let (dns, http, tls) = (
            chall.dns01_addr().unwrap(),
            chall.http01_addr().unwrap(),
            chall.tlsalpn01_addr().unwrap(),
        );
        let server = TestServer::start_with(
            engine,
            |c| {
                c.dns_server = Some(dns);
                c.http01_port = http.port();
                c.tlsalpn01_port = tls.port();
                c.validation_timeout_secs = 2;
                c.validation_poll_ms = 50;
                tweak(c);
            },
            manual_clock,
        )
        .await;
        ValidationEnv { server, chall }
    }

    pub async fn stop(self) {
        self.server.stop().await;
        self.chall.shutdown().await;
    }
}

/// Polls `url` (POST-as-GET as `kid`) until `done(body)` or 100 tries 50 ms apart.
pub async fn poll_until(
    s: &TestServer,
    k: &Signer,
    kid: &str,
    url: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let r = s.post_kid(k, kid, url, None).await;
        assert_eq!(r.status, 200, "{r:?}");
        if done(&r.body) {
            return r.body;
        }
        last = r.body;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{url} never reached the wanted state; last: {last}");
}

/// A listener on `ip:port` that accepts connections and never answers (for timeouts).
pub async fn hanging_listener(ip: &str, port: u16) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind((ip, port)).await.unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    })
}

/// A new account through instant-acme, trusting the server's HTTPS root.
pub async fn acme_account(s: &TestServer) -> instant_acme::Account {
    instant_acme::Account::builder_with_root(s.trust_root())
        .unwrap()
        .create(
            &instant_acme::NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            s.directory_url.clone(),
            None,
        )
        .await
        .unwrap()
        .0
}

/// Asserts that an instant-acme call failed with the ACME problem type `kind`.
#[track_caller]
pub fn assert_api_problem<T>(result: Result<T, instant_acme::Error>, kind: &str) {
    match result {
        Ok(_) => panic!("expected a {kind} problem, got success"),
        Err(instant_acme::Error::Api(p)) => {
            assert_eq!(
                p.r#type.as_deref(),
                Some(format!("urn:ietf:params:acme:error:{kind}").as_str()),
                "{p:?}"
            )
        }
        Err(other) => panic!("expected a {kind} problem, got {other:?}"),
    }
}

/// Runs the `openssl` CLI in `dir`: (success, stdout + stderr).
pub fn openssl(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// GET `path` on the management listener, as text.
pub async fn admin_get(s: &TestServer, path: &str) -> String {
    let base = s.running.as_ref().unwrap().admin_url.clone().unwrap();
    s.http
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Asks the server's OCSP responder (POST) about `leaf.pem` issued by `issuer.pem`, both in
/// `dir`, and returns `openssl ocsp`'s verified view of the answer.
pub async fn ocsp_query(s: &TestServer, dir: &std::path::Path) -> String {
    let (ok, out) = openssl(
        &[
            "ocsp",
            "-issuer",
            "issuer.pem",
            "-cert",
            "leaf.pem",
            "-reqout",
            "req.der",
        ],
        dir,
    );
    assert!(ok, "openssl ocsp -reqout: {out}");
    let req = std::fs::read(dir.join("req.der")).unwrap();
    let resp = s
        .http
        .post(s.url("/ocsp"))
        .header("content-type", "application/ocsp-request")
        .body(req)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/ocsp-response");
    std::fs::write(dir.join("resp.der"), resp.bytes().await.unwrap()).unwrap();
    let (_, out) = openssl(
        &[
            "ocsp",
            "-respin",
            "resp.der",
            "-issuer",
            "issuer.pem",
            "-VAfile",
            "issuer.pem",
            "-cert",
            "leaf.pem",
            "-no_nonce",
        ],
        dir,
    );
    assert!(out.contains("Response verify OK"), "{out}");
    out
}

/// Runs a real ACME client program (bounded in time) and returns its output; a failure
/// fails the test with that output.
pub async fn run_client(mut cmd: tokio::process::Command, what: &str) -> String {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        cmd.kill_on_drop(true).output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{what} finishes within 2 minutes"))
    .unwrap_or_else(|e| panic!("{what} runs: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// Orders `names` by hand on an always-valid server, answers one challenge each, waits
/// for `ready` and finalizes with `csr`; returns the finalize answer.
pub async fn finalize_by_hand(
    s: &TestServer,
    k: &Signer,
    kid: &str,
    names: &[&str],
    csr: &[u8],
) -> Reply {
    let ids: Vec<Value> = names
        .iter()
        .map(|n| json!({"type": "dns", "value": n}))
        .collect();
    let r = s
        .post_kid(
            k,
            kid,
            &s.url("/acme/new-order"),
            Some(&json!({"identifiers": ids})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    for a in r.body["authorizations"].as_array().unwrap() {
        let authz = s.post_kid(k, kid, a.as_str().unwrap(), None).await.body;
        if authz["status"] == "valid" {
            continue;
        }
        let ch = authz["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "http-01" || c["type"] == "dns-01")
            .unwrap()
            .clone();
        s.post_kid(k, kid, ch["url"].as_str().unwrap(), Some(&json!({})))
            .await;
    }
    let order_url = r.location.unwrap();
    poll_until(s, k, kid, &order_url, |o| o["status"] == "ready").await;
    s.post_kid(
        k,
        kid,
        r.body["finalize"].as_str().unwrap(),
        Some(&json!({"csr": b64::encode(csr)})),
    )
    .await
}

/// A CSR for `names` without a subject CN.
pub fn rcgen_csr(names: &[&str], key: &rcgen::KeyPair) -> Vec<u8> {
    let mut p =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.serialize_request(key).unwrap().der().to_vec()
}

/// A second instance on `first`'s database, trusting the same HTTPS root.
pub async fn second_instance(first: &TestServer) -> TestServer {
    second_instance_with(first, |_| {}).await
}

/// [`second_instance`] with a config tweak.
pub async fn second_instance_with(
    first: &TestServer,
    tweak: impl FnOnce(&mut ServerConfig),
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    // Same trust root, so one client can talk to both.
    std::fs::create_dir_all(dir.path().join("tls")).unwrap();
    for f in ["ca.pem", "ca-key.pem"] {
        std::fs::copy(
            first.dir.path().join("tls").join(f),
            dir.path().join("tls").join(f),
        )
        .unwrap();
    }
    let mut cfg = test_config(dir.path(), first.database_url.clone());
    tweak(&mut cfg);
    TestServer::start_cfg(cfg, dir, false).await
}

/// `cobble serve` in a process of its own on `first`'s database (same HTTPS root), with
/// always-valid validation and `extra` flags; the test talks to it through the returned
/// handle (no in-process server).
pub async fn spawn_instance(
    first: &TestServer,
    extra: &[&str],
) -> (tokio::process::Child, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tls")).unwrap();
    for f in ["ca.pem", "ca-key.pem"] {
        std::fs::copy(
            first.dir.path().join("tls").join(f),
            dir.path().join("tls").join(f),
        )
        .unwrap();
    }
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cobble"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "",
            "--va-always-valid",
            "--log",
            "warn",
            "--database-url",
            &first.database_url,
            "--data-dir",
        ])
        .arg(dir.path())
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let banner = ready_banner(&mut child)
        .await
        .expect("cobble serve exited before it was ready");
    let directory_url = banner_field(&banner, "directory").expect("the banner names the directory");
    let base = directory_url.trim_end_matches("/dir").to_owned();
    let handle = TestServer {
        running: None,
        dir,
        directory_url,
        base,
        http: first.http.clone(),
        clock: None,
        database_url: first.database_url.clone(),
    };
    (child, handle)
}

/// The ready banner of a `cobble serve` child, its lines from "Cobble ... is ready" to the
/// `database:` line (written in one piece), read from its piped stdout within 60 s; then its
/// stdout keeps being read so that it never writes into a closed pipe. `None` when the child
/// ended before it was ready.
pub async fn ready_banner(child: &mut tokio::process::Child) -> Option<Vec<String>> {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout piped")).lines();
    let banner = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut banner = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            let last = l.trim_start().starts_with("database:");
            banner.push(l);
            if last {
                return Some(banner);
            }
        }
        None
    })
    .await
    .expect("cobble serve is ready within 60 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    banner
}

/// The value of the banner line `name:` (e.g. `directory`, `admin`).
pub fn banner_field(banner: &[String], name: &str) -> Option<String> {
    banner
        .iter()
        .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

// ----- the admin API and External Account Binding -----

pub fn admin_url(s: &TestServer) -> String {
    s.running.as_ref().unwrap().admin_url.clone().unwrap()
}

pub fn token(s: &TestServer) -> String {
    std::fs::read_to_string(s.dir.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// An admin API call with the token.
pub async fn admin_api(s: &TestServer, method: &str, path: &str, body: Option<Value>) -> Reply {
    let mut req = s
        .http
        .request(method.parse().unwrap(), format!("{}{path}", admin_url(s)))
        .bearer_auth(token(s));
    if let Some(b) = body {
        req = req.json(&b);
    }
    Reply::from(req.send().await.unwrap()).await
}

/// The `externalAccountBinding` object for `account_key` (RFC 8555 §7.3.4).
pub fn eab(kid: &str, hmac_b64: &str, url: &str, account_key: &Value, alg: &str) -> Value {
    eab_with(
        json!({"alg": alg, "kid": kid, "url": url}),
        hmac_b64,
        account_key,
    )
}

pub fn eab_with(protected: Value, hmac_b64: &str, payload: &Value) -> Value {
    let p = b64::encode(protected.to_string());
    let pl = b64::encode(payload.to_string());
    // MACed as the header's `alg` says (HS256 for anything else, so that a test can send a
    // header whose alg the server must refuse).
    let alg = match protected["alg"].as_str() {
        Some("HS384") => ring::hmac::HMAC_SHA384,
        Some("HS512") => ring::hmac::HMAC_SHA512,
        _ => ring::hmac::HMAC_SHA256,
    };
    let key = ring::hmac::Key::new(alg, &b64::decode(hmac_b64).unwrap());
    let sig = ring::hmac::sign(&key, format!("{p}.{pl}").as_bytes());
    json!({"protected": p, "payload": pl, "signature": b64::encode(sig.as_ref())})
}

pub fn jwk_of(k: &Signer) -> Value {
    k.public_key().to_jwk()
}

/// Registers `k` with EAB; returns the reply.
pub async fn register_eab(s: &TestServer, k: &Signer, kid: &str, hmac: &str) -> Reply {
    let url = s.url("/acme/new-acct");
    s.new_account(
        k,
        json!({"termsOfServiceAgreed": true, "externalAccountBinding": eab(kid, hmac, &url, &jwk_of(k), "HS256")}),
    )
    .await
}

/// `cobble admin ...` (the real binary) against `s`, with `--json`.
pub async fn cobble_admin(s: &TestServer, args: &[&str]) -> Value {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_cobble"));
    cmd.arg("admin")
        .args(args)
        .args(["--json", "--admin-url", &admin_url(s), "--data-dir"])
        .arg(s.dir.path());
    let out = run_client(cmd, &format!("cobble admin {args:?}")).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("cobble admin printed JSON: {e}\n{out}"))
}
