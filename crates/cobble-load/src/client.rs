//! One load client: its own account key, one keep-alive HTTP/1.1 connection, and the whole
//! order loop of RFC 8555 §7.4 (newOrder, authorization, challenge, polls, finalize,
//! certificate), each step timed.

use crate::stats::Step;
use crate::{Options, Shared};
use cobble_core::b64;
use cobble_core::challenge::key_authorization;
use cobble_core::jwk::Curve;
use cobble_core::sign::Signer;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The ACME error namespace (RFC 8555 §6.7).
const ACME_ERROR: &str = "urn:ietf:params:acme:error:";
/// badNonce retries per request before the order counts as failed.
const MAX_BAD_NONCE_RETRIES: u32 = 5;
/// Retry-After waits per request (with --honor-retry-after) before the order counts as failed.
const MAX_RETRY_AFTER_WAITS: u32 = 3;
/// Longest Retry-After honoured, so a server cannot park a client.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Polls of one resource before the order counts as failed.
const MAX_POLLS: u32 = 2000;
/// Longest pause between polls when the server gives no Retry-After.
const MAX_POLL_PAUSE: Duration = Duration::from_millis(50);

/// The directory's URLs a client uses (RFC 8555 §7.1.1).
#[derive(Debug, Clone)]
pub struct Directory {
    /// newNonce.
    pub new_nonce: String,
    /// newAccount.
    pub new_account: String,
    /// newOrder.
    pub new_order: String,
}

impl Directory {
    /// Reads the URLs from a directory object.
    pub fn parse(dir: &Value) -> Result<Self, String> {
        let get = |k: &str| {
            dir[k]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("the directory has no \"{k}\" URL"))
        };
        Ok(Directory {
            new_nonce: get("newNonce")?,
            new_account: get("newAccount")?,
            new_order: get("newOrder")?,
        })
    }
}

/// Why an order failed.
#[derive(Debug)]
pub struct Fail {
    /// The kind counted in the report: a problem type without its URN prefix, `http-<status>`,
    /// `transport`, `timeout`, `invalid` or `protocol`.
    pub kind: String,
    /// What happened, for the report's examples.
    pub detail: String,
}

fn fail(kind: &str, detail: impl Into<String>) -> Fail {
    Fail {
        kind: kind.to_owned(),
        detail: detail.into(),
    }
}

/// A response read whole.
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
    text: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn location(&self) -> Result<String, Fail> {
        self.header("location")
            .map(str::to_owned)
            .ok_or_else(|| fail("protocol", format!("HTTP {} without Location", self.status)))
    }
    /// Retry-After in seconds (RFC 9110 §10.2.3; the HTTP-date form is not used by ACME servers).
    fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after")?
            .trim()
            .parse::<u64>()
            .ok()
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
    }
    fn status_field(&self) -> &str {
        self.body["status"].as_str().unwrap_or_default()
    }
    fn url_field(&self, name: &str) -> Result<String, Fail> {
        self.body[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| fail("protocol", format!("no \"{name}\" in {}", cut(&self.text))))
    }
}

fn cut(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Classifies a transport error.
pub(crate) fn transport(e: reqwest::Error, url: &str) -> Fail {
    let kind = if e.is_timeout() {
        "timeout"
    } else {
        "transport"
    };
    let mut detail = format!("{url}: {e}");
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        detail.push_str(&format!(": {s}"));
        src = s.source();
    }
    fail(kind, detail)
}

/// A load client with its account.
pub struct Client {
    http: reqwest::Client,
    signer: Signer,
    thumbprint: String,
    kid: String,
    nonce: Option<String>,
    shared: Arc<Shared>,
}

/// The HTTP client of one load client: HTTP/1.1 only, at most one idle (kept-alive) connection.
pub fn http_client(opts: &Options) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(opts.request_timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if let Some(path) = &opts.ca_bundle {
        let pem =
            std::fs::read(path).map_err(|e| format!("--ca-bundle {}: {e}", path.display()))?;
        for c in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("--ca-bundle {}: {e}", path.display()))?
        {
            b = b.add_root_certificate(c);
        }
    }
    if opts.insecure {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| format!("HTTP client: {e}"))
}

impl Client {
    /// Makes a P-256 account key and registers it (RFC 8555 §7.3).
    pub async fn register(shared: Arc<Shared>) -> Result<Client, String> {
        let http = http_client(&shared.opts)?;
        let signer = Signer::generate_ec(Curve::P256).map_err(|e| e.to_string())?;
        let thumbprint = signer.public_key().thumbprint();
        let mut c = Client {
            http,
            signer,
            thumbprint,
            kid: String::new(),
            nonce: None,
            shared,
        };
        let url = c.shared.dir.new_account.clone();
        let payload = json!({"termsOfServiceAgreed": true});
        let mut last = String::new();
        for _ in 0..=MAX_BAD_NONCE_RETRIES {
            let nonce = c.take_nonce().await.map_err(|f| f.detail)?;
            let body = c.signer.sign_with_jwk(&url, Some(&nonce), Some(&payload));
            let r = c.send(&url, body, None).await.map_err(|f| f.detail)?;
            if r.status == 200 || r.status == 201 {
                c.kid = r.location().map_err(|f| f.detail)?;
                return Ok(c);
            }
            last = format!("newAccount: HTTP {}: {}", r.status, cut(&r.text));
            if r.body["type"].as_str() != Some(&format!("{ACME_ERROR}badNonce")) {
                break;
            }
        }
        Err(last)
    }

    /// A nonce: the last Replay-Nonce seen, or a fresh one from newNonce (RFC 8555 §7.2).
    async fn take_nonce(&mut self) -> Result<String, Fail> {
        if let Some(n) = self.nonce.take() {
            return Ok(n);
        }
        let url = &self.shared.dir.new_nonce;
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        let r = self
            .http
            .head(url)
            .send()
            .await
            .map_err(|e| transport(e, url))?;
        r.headers()
            .get("replay-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| fail("protocol", format!("HEAD {url}: no Replay-Nonce")))
    }

    /// Sends one JWS and reads the answer whole, keeping its Replay-Nonce.
    async fn send(&mut self, url: &str, jws: Value, accept: Option<&str>) -> Result<Reply, Fail> {
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/jose+json")
            .body(jws.to_string());
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        self.shared.jws_sent.fetch_add(1, Ordering::Relaxed);
        let r = req.send().await.map_err(|e| transport(e, url))?;
        let status = r.status().as_u16();
        if status < 400 {
            self.shared.jws_accepted.fetch_add(1, Ordering::Relaxed);
        }
        let headers = r.headers().clone();
        let text = r.text().await.map_err(|e| transport(e, url))?;
        if let Some(n) = headers.get("replay-nonce").and_then(|v| v.to_str().ok()) {
            self.nonce = Some(n.to_owned());
        }
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            headers,
            body,
            text,
        })
    }

    /// A request signed with the account's `kid`; badNonce is retried with the error's
    /// Replay-Nonce, 429/503 with Retry-After waited out when asked; other errors fail the order.
    async fn post(&mut self, url: &str, payload: Option<&Value>) -> Result<Reply, Fail> {
        self.post_accept(url, payload, None).await
    }

    async fn post_accept(
        &mut self,
        url: &str,
        payload: Option<&Value>,
        accept: Option<&str>,
    ) -> Result<Reply, Fail> {
        let (mut bad_nonces, mut waits) = (0, 0);
        loop {
            let nonce = self.take_nonce().await?;
            let jws = self.signer.sign_with_kid(&self.kid, url, &nonce, payload);
            let r = self.send(url, jws, accept).await?;
            if r.status < 400 {
                return Ok(r);
            }
            let kind = match r.body["type"].as_str() {
                Some(t) => t.strip_prefix(ACME_ERROR).unwrap_or(t).to_owned(),
                None => format!("http-{}", r.status),
            };
            if kind == "badNonce" && bad_nonces < MAX_BAD_NONCE_RETRIES {
                bad_nonces += 1;
                self.shared
                    .bad_nonce_retries
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if self.shared.opts.honor_retry_after
                && (r.status == 429 || r.status == 503)
                && waits < MAX_RETRY_AFTER_WAITS
                && let Some(wait) = r.retry_after()
            {
                waits += 1;
                tokio::time::sleep(wait).await;
                continue;
            }
            let detail = r.body["detail"].as_str().unwrap_or(&r.text);
            return Err(fail(
                &kind,
                format!("HTTP {} from {url}: {}", r.status, cut(detail)),
            ));
        }
    }

    /// POST-as-GET `url` until its status is `want`; `invalid` (or any status not in `pass`)
    /// fails the order. Pauses grow from 1 ms to 50 ms, or follow Retry-After when asked.
    async fn poll(&mut self, url: &str, want: &str, pass: &[&str]) -> Result<Reply, Fail> {
        let mut pause = Duration::from_millis(1);
        for _ in 0..MAX_POLLS {
            let r = self.post(url, None).await?;
            let s = r.status_field();
            if s == want {
                return Ok(r);
            }
            if !pass.contains(&s) {
                return Err(fail(
                    "invalid",
                    format!("{url} is {s:?} (waiting for {want:?}): {}", cut(&r.text)),
                ));
            }
            let wait = match r.retry_after() {
                Some(ra) if self.shared.opts.honor_retry_after => ra,
                _ => pause,
            };
            tokio::time::sleep(wait).await;
            pause = (pause * 2).min(MAX_POLL_PAUSE);
        }
        Err(fail(
            "timeout",
            format!("{url} not {want:?} after {MAX_POLLS} polls"),
        ))
    }

    /// Runs one whole order, recording each step that succeeds; on failure, returns the step
    /// that failed and why.
    pub async fn order(&mut self) -> Result<Duration, (Step, Fail)> {
        let start = Instant::now();
        let mut step = Step::NewOrder;
        let mut t = Instant::now();
        let mut token = None;
        let result = self.order_steps(&mut step, &mut t, &mut token).await;
        if let (Some(token), Some(cts)) = (token, &self.shared.opts.challtestsrv) {
            // Best effort: a stale http-01 answer does no harm to later orders.
            let _ = self
                .shared
                .plain
                .post(format!("{}/del-http01", cts.trim_end_matches('/')))
                .body(json!({ "token": token }).to_string())
                .send()
                .await;
        }
        result.map(|()| start.elapsed()).map_err(|f| (step, f))
    }

    async fn order_steps(
        &mut self,
        step: &mut Step,
        t: &mut Instant,
        token: &mut Option<String>,
    ) -> Result<(), Fail> {
        let shared = self.shared.clone();
        let done = |s: Step, t: &mut Instant| {
            shared.record(s, t.elapsed());
            *t = Instant::now();
        };
        let name = format!("l{}.{}", random_hex(8), shared.opts.domain_suffix);

        *step = Step::NewOrder;
        let url = shared.dir.new_order.clone();
        let ids = json!({"identifiers": [{"type": "dns", "value": name}]});
        let r = self.post(&url, Some(&ids)).await?;
        let order_url = r.location()?;
        let finalize_url = r.url_field("finalize")?;
        let authz_url = r.body["authorizations"][0]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| fail("protocol", format!("no authorization: {}", cut(&r.text))))?;
        done(Step::NewOrder, t);

        *step = Step::Authz;
        let r = self.post(&authz_url, None).await?;
        let challenges = r.body["challenges"].as_array().cloned().unwrap_or_default();
        let chall = challenges
            .iter()
            .find(|c| c["type"] == "http-01")
            .or(challenges.first())
            .cloned()
            .ok_or_else(|| fail("protocol", format!("no challenge: {}", cut(&r.text))))?;
        let authz_valid = r.status_field() == "valid";
        done(Step::Authz, t);

        if !authz_valid {
            *step = Step::Challenge;
            let chall_url = chall["url"]
                .as_str()
                .ok_or_else(|| fail("protocol", "challenge without url"))?
                .to_owned();
            if let Some(cts) = &shared.opts.challtestsrv {
                let tok = chall["token"]
                    .as_str()
                    .ok_or_else(|| fail("protocol", "challenge without token"))?;
                let content = key_authorization(tok, &self.thumbprint);
                let u = format!("{}/add-http01", cts.trim_end_matches('/'));
                let r = shared
                    .plain
                    .post(&u)
                    .body(json!({"token": tok, "content": content}).to_string())
                    .send()
                    .await
                    .map_err(|e| transport(e, &u))?;
                if !r.status().is_success() {
                    return Err(fail("challtestsrv", format!("{u}: HTTP {}", r.status())));
                }
                *token = Some(tok.to_owned());
            }
            self.post(&chall_url, Some(&json!({}))).await?;
            done(Step::Challenge, t);
        }

        *step = Step::PollAuthz;
        self.poll(&authz_url, "valid", &["pending", "processing"])
            .await?;
        done(Step::PollAuthz, t);

        *step = Step::PollOrderReady;
        let r = self
            .poll(&order_url, "ready", &["pending", "processing"])
            .await?;
        drop(r);
        done(Step::PollOrderReady, t);

        *step = Step::Finalize;
        let csr = shared.csr(&name)?;
        let r = self
            .post(&finalize_url, Some(&json!({ "csr": b64::encode(csr) })))
            .await?;
        let mut order = r;
        let status = order.status_field().to_owned();
        if status != "valid" && status != "processing" {
            return Err(fail(
                "invalid",
                format!("finalize answered {status:?}: {}", cut(&order.text)),
            ));
        }
        done(Step::Finalize, t);

        if status == "processing" {
            *step = Step::PollOrderValid;
            order = self.poll(&order_url, "valid", &["processing"]).await?;
            done(Step::PollOrderValid, t);
        }

        *step = Step::Certificate;
        let cert_url = order.url_field("certificate")?;
        let r = self
            .post_accept(&cert_url, None, Some("application/pem-certificate-chain"))
            .await?;
        if !r.text.contains("-----BEGIN CERTIFICATE-----") {
            return Err(fail(
                "protocol",
                format!("the certificate is not PEM: {}", cut(&r.text)),
            ));
        }
        done(Step::Certificate, t);
        Ok(())
    }
}

/// `n` random bytes as lowercase hex (a DNS label that never repeats in practice).
fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("random");
    b.iter().map(|x| format!("{x:02x}")).collect()
}
