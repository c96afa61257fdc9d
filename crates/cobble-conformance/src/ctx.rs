//! The state a run shares between checks: the HTTP clients, the directory, the challenge
//! test server, and the record of every problem seen (for the cross-cutting checks).

use crate::Options;
use crate::client::{Halt, Reply, describe_request, fail, fail_with, rate_limited, skip};
use cobble_core::b64;
use cobble_core::jwk::Curve;
use cobble_core::sign::Signer;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// One answer kept for the cross-cutting checks (problem documents, no 5xx).
#[derive(Debug, Clone)]
pub struct Seen {
    /// The check that caused it.
    pub check: String,
    /// The answer.
    pub reply: Reply,
}

/// An ACME account the suite created.
pub struct Account {
    /// Its key.
    pub key: Signer,
    /// Its URL (`kid`).
    pub kid: String,
    /// The account object returned at creation.
    pub body: Value,
}

/// Shared run state.
pub struct Ctx {
    /// The options of the run.
    pub opts: Options,
    /// The HTTPS client (HTTP/2 when the server offers it through ALPN).
    pub http: reqwest::Client,
    /// An HTTPS client limited to HTTP/1.1.
    pub http1: reqwest::Client,
    /// A plain client for the challenge test server's management API.
    pub plain: reqwest::Client,
    /// The directory object.
    pub dir: Value,
    /// The check currently running.
    pub current: Mutex<String>,
    /// Whether the check running judges rate limits (catalogue `rate_limits`); when it does
    /// not, a `429 rateLimited` answer skips it.
    pub judges_rate_limits: AtomicBool,
    /// Error and 5xx answers seen so far.
    pub seen: Mutex<Vec<Seen>>,
    /// The suite's own http-01 responder, with `--http01-port`.
    pub http01: Option<crate::responder::Http01>,
    counter: AtomicU64,
}

impl Ctx {
    /// Builds the clients and fetches the directory.
    pub async fn connect(opts: Options) -> Result<Ctx, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let build = |http1: bool| -> Result<reqwest::Client, String> {
            let mut b = reqwest::Client::builder()
                .timeout(Duration::from_secs(opts.request_timeout_secs))
                .redirect(reqwest::redirect::Policy::none());
            if http1 {
                b = b.http1_only();
            }
            if let Some(path) = &opts.ca_bundle {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("--ca-bundle {}: {e}", path.display()))?;
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
        };
        let http = build(false)?;
        let http1 = build(true)?;
        let plain = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let r = http
            .get(&opts.directory)
            .send()
            .await
            .map_err(|e| format!("GET {}: {}", opts.directory, error_chain(&e)))?;
        let status = r.status();
        let text = r.text().await.map_err(|e| format!("directory body: {e}"))?;
        let dir: Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "GET {} ({status}): not JSON ({e}): {}",
                opts.directory,
                crate::client::truncate(&text, 200)
            )
        })?;
        if !dir.is_object() {
            return Err(format!(
                "GET {}: the directory is not a JSON object",
                opts.directory
            ));
        }
        let http01 = match opts.http01_port {
            Some(port) => Some(crate::responder::Http01::start(&opts.directory, port).await?),
            None => None,
        };
        Ok(Ctx {
            http01,
            opts,
            http,
            http1,
            plain,
            dir,
            current: Mutex::new(String::new()),
            judges_rate_limits: AtomicBool::new(false),
            seen: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
        })
    }

    /// A directory URL by name (`newNonce`, ...), or a failure naming it.
    pub fn url(&self, name: &str) -> Result<String, Halt> {
        match self.dir[name].as_str() {
            Some(u) => Ok(u.to_owned()),
            None => fail(format!("the directory has no {name:?} URL")),
        }
    }

    /// A fresh, unique DNS name under the domain suffix.
    pub fn name(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut r = [0u8; 4];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut r).expect("rng");
        format!(
            "c{n}-{}.{}",
            r.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            self.opts.domain_suffix.trim_matches('.')
        )
    }

    fn record(&self, reply: &Reply) {
        if reply.status >= 400 {
            let check = self.current.lock().unwrap().clone();
            self.seen.lock().unwrap().push(Seen {
                check,
                reply: reply.clone(),
            });
        }
    }

    /// Sends `req` and reads the answer whole. A `429 rateLimited` answer skips the check
    /// (with the limit's detail and Retry-After) unless the check judges rate limits: a
    /// server that enforces its limits has not departed from the RFC (§6.6).
    pub async fn send(&self, req: reqwest::RequestBuilder, sent: String) -> Result<Reply, Halt> {
        let r = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Err(Halt::Fail(
                    format!("no answer: {}", error_chain(&e)),
                    Some(Box::new(crate::model::Exchange {
                        sent,
                        received: "(none)".into(),
                    })),
                ));
            }
        };
        let status = r.status().as_u16();
        let version = r.version();
        let headers = r.headers().clone();
        let bytes = match r.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Err(Halt::Fail(
                    format!(
                        "HTTP {status}, but the body did not arrive whole: {}",
                        error_chain(&e)
                    ),
                    Some(Box::new(crate::model::Exchange {
                        sent,
                        received: format!("{version:?} {status} (body cut off)"),
                    })),
                ));
            }
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let reply = Reply {
            status,
            headers,
            body,
            text,
            sent,
            version,
        };
        self.record(&reply);
        if let Some(reason) = rate_limited(&reply)
            && !self.judges_rate_limits.load(Ordering::Relaxed)
        {
            return Err(Halt::Skip(reason));
        }
        Ok(reply)
    }

    /// GET `url`.
    pub async fn get(&self, url: &str) -> Result<Reply, Halt> {
        self.send(self.http.get(url), describe_request("GET", url, None, b""))
            .await
    }

    /// HEAD `url`.
    pub async fn head(&self, url: &str) -> Result<Reply, Halt> {
        self.send(
            self.http.head(url),
            describe_request("HEAD", url, None, b""),
        )
        .await
    }

    /// POST raw bytes with a content type (None: no Content-Type header).
    pub async fn post_raw(
        &self,
        client: &reqwest::Client,
        url: &str,
        ctype: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Reply, Halt> {
        let sent = describe_request("POST", url, ctype, &body);
        let mut req = client.post(url).body(body);
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        self.send(req, sent).await
    }

    /// POST a JWS with `application/jose+json`.
    pub async fn post_jws(&self, url: &str, jws: &Value) -> Result<Reply, Halt> {
        self.post_raw(
            &self.http,
            url,
            Some("application/jose+json"),
            jws.to_string().into_bytes(),
        )
        .await
    }

    /// A fresh nonce from newNonce (HEAD).
    pub async fn nonce(&self) -> Result<String, Halt> {
        let r = self.head(&self.url("newNonce")?).await?;
        match r.nonce() {
            Some(n) => Ok(n),
            None => fail_with(&r, "newNonce answered without a Replay-Nonce header"),
        }
    }

    /// POSTs the JWS `build(nonce)` to `url`, retrying up to three times on `badNonce` with the
    /// nonce from the refusal (RFC 8555 §6.5), as a client should; fixtures use this.
    pub async fn post_retry(
        &self,
        url: &str,
        build: impl Fn(&str) -> Value,
    ) -> Result<Reply, Halt> {
        let mut nonce = self.nonce().await?;
        let mut last = None;
        for _ in 0..4 {
            let r = self.post_jws(url, &build(&nonce)).await?;
            if r.problem_type() != Some("badNonce") {
                return Ok(r);
            }
            nonce = match r.nonce() {
                Some(n) => n,
                None => self.nonce().await?,
            };
            last = Some(r);
        }
        fail_with(
            last.as_ref().expect("tried"),
            "badNonce four times in a row",
        )
    }

    /// A `kid`-signed POST (POST-as-GET when `payload` is None).
    pub async fn signed(
        &self,
        a: &Account,
        url: &str,
        payload: Option<&Value>,
    ) -> Result<Reply, Halt> {
        self.post_retry(url, |n| a.key.sign_with_kid(&a.kid, url, n, payload))
            .await
    }

    /// A `jwk`-signed POST.
    pub async fn signed_jwk(
        &self,
        key: &Signer,
        url: &str,
        payload: Option<&Value>,
    ) -> Result<Reply, Halt> {
        self.post_retry(url, |n| key.sign_with_jwk(url, Some(n), payload))
            .await
    }

    /// A fresh P-256 key.
    pub fn key(&self) -> Signer {
        Signer::generate_ec(Curve::P256).expect("P-256 key")
    }

    /// The External Account Binding credentials for the next account: a fresh pair from
    /// `--eab-cmd`, or the fixed `--eab-kid`/`--eab-hmac-key`, or None.
    pub async fn eab_pair(&self) -> Result<Option<(String, String)>, Halt> {
        if let Some(cmd) = &self.opts.eab_cmd {
            let out = tokio::time::timeout(
                Duration::from_secs(30),
                tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .map_err(|_| Halt::Skip(format!("--eab-cmd {cmd:?} did not finish within 30 s")))?
            .map_err(|e| Halt::Skip(format!("--eab-cmd {cmd:?}: {e}")))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut words = text.split_whitespace();
            return match (out.status.success(), words.next(), words.next()) {
                (true, Some(kid), Some(hmac)) => Ok(Some((kid.to_owned(), hmac.to_owned()))),
                _ => skip(format!(
                    "--eab-cmd {cmd:?} should print `KID HMAC-KEY`; it exited {} with {:?}",
                    out.status,
                    crate::client::truncate(&text, 200)
                )),
            };
        }
        Ok(self
            .opts
            .eab_kid
            .clone()
            .zip(self.opts.eab_hmac_key.clone()))
    }

    /// The newAccount payload for `key`: agreement to the terms, plus an External Account
    /// Binding (RFC 8555 §7.3.4) when credentials were given.
    pub async fn account_payload(&self, key: &Signer, extra: Value) -> Result<Value, Halt> {
        let mut p = json!({"termsOfServiceAgreed": true});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                p[k] = v;
            }
        }
        if let Some((kid, hmac)) = self.eab_pair().await? {
            p["externalAccountBinding"] = eab(&self.url("newAccount")?, &kid, &hmac, key)?;
        } else if self.dir["meta"]["externalAccountRequired"] == true {
            return skip(
                "the server requires External Account Binding; give --eab-kid and --eab-hmac-key, or --eab-cmd",
            );
        }
        Ok(p)
    }

    /// Creates an account for `key` with `extra` payload members.
    pub async fn new_account_with(&self, key: Signer, extra: Value) -> Result<Account, Halt> {
        let url = self.url("newAccount")?;
        let payload = self.account_payload(&key, extra).await?;
        let r = self.signed_jwk(&key, &url, Some(&payload)).await?;
        if r.status != 201 && r.status != 200 {
            if self.opts.eab_kid.is_some() && self.opts.eab_cmd.is_none() && r.status < 500 {
                return skip(format!(
                    "could not create another account with the given EAB key (HTTP {} {}); the \
                     server may allow each EAB key once",
                    r.status,
                    r.body["type"].as_str().unwrap_or_default()
                ));
            }
            return fail_with(&r, "prerequisite: newAccount did not create an account");
        }
        let Some(kid) = r.location() else {
            return fail_with(&r, "prerequisite: newAccount answered without Location");
        };
        Ok(Account {
            key,
            kid,
            body: r.body,
        })
    }

    /// A fresh account.
    pub async fn account(&self) -> Result<Account, Halt> {
        self.new_account_with(self.key(), json!({})).await
    }

    /// The challenge test server's management URL, or a skip.
    pub fn challtestsrv(&self) -> Result<&str, Halt> {
        match &self.opts.challtestsrv {
            Some(u) => Ok(u.trim_end_matches('/')),
            None => skip(
                "needs --challtestsrv (a pebble-challtestsrv compatible management API) to answer challenges",
            ),
        }
    }

    /// POSTs `body` to the challenge test server's `path`.
    pub async fn chall(&self, path: &str, body: Value) -> Result<(), Halt> {
        let url = format!("{}{path}", self.challtestsrv()?);
        let r = self
            .plain
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| Halt::Skip(format!("challtestsrv {url}: {}", error_chain(&e))))?;
        if !r.status().is_success() {
            let s = r.status();
            let t = r.text().await.unwrap_or_default();
            return skip(format!("challtestsrv {url} refused {body}: {s} {t}"));
        }
        Ok(())
    }

    /// Polls `url` (POST-as-GET) until `done(body)`, honouring Retry-After (capped at 1 s);
    /// at most 80 tries and 30 s.
    pub async fn poll(
        &self,
        a: &Account,
        url: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Reply, Halt> {
        let start = std::time::Instant::now();
        let mut last = None;
        for _ in 0..80 {
            let r = self.signed(a, url, None).await?;
            if r.status != 200 {
                return fail_with(&r, format!("polling {what}: expected 200"));
            }
            if done(&r.body) {
                return Ok(r);
            }
            let wait = r
                .header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(1)))
                .unwrap_or(Duration::from_millis(200))
                .max(Duration::from_millis(100));
            last = Some(r);
            if start.elapsed() > Duration::from_secs(30) {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        fail_with(
            last.as_ref().expect("polled"),
            format!("{what} did not settle within 30 s"),
        )
    }
}

/// The JWS of an External Account Binding (RFC 8555 §7.3.4): HS256 over the account's JWK.
pub fn eab(new_account_url: &str, kid: &str, hmac_b64: &str, key: &Signer) -> Result<Value, Halt> {
    let mac_key = b64::decode(hmac_b64.trim_end_matches('='))
        .or_else(|_| {
            use base64_std::decode_std;
            decode_std(hmac_b64)
        })
        .map_err(|_| Halt::Skip("--eab-hmac-key is not base64url".into()))?;
    let protected =
        b64::encode(json!({"alg": "HS256", "kid": kid, "url": new_account_url}).to_string());
    let payload = b64::encode(key.public_key().to_jwk().to_string());
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &mac_key);
    let sig = ring::hmac::sign(&k, format!("{protected}.{payload}").as_bytes());
    Ok(json!({"protected": protected, "payload": payload, "signature": b64::encode(sig.as_ref())}))
}

mod base64_std {
    /// Standard-alphabet base64 (some CAs hand out EAB keys that way).
    pub fn decode_std(s: &str) -> Result<Vec<u8>, ()> {
        let t = s
            .trim()
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_");
        cobble_core::b64::decode(&t).map_err(|_| ())
    }
}

/// An error with its sources, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(&format!(": {x}"));
        src = x.source();
    }
    s
}
