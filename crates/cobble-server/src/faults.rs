//! Fault knobs for client authors (issue 14; pebble#82, pebble#399): per endpoint and by
//! percentage, answer `429 rateLimited` or `503` with `Retry-After`, `500 serverInternal`,
//! `400 badNonce`, delay the answer, or keep a finalized order in `processing` for a while.
//! Rules come from the configuration (`[[faults]]`, `--fault`) and can be replaced at run
//! time through the management listener (`GET`/`PUT /admin/faults`, with the admin token).
//!
//! Every random choice of the server's test knobs (injected faults, delays, nonce rejection,
//! authorization reuse, validation sleep) draws from one generator here; `--seed` makes it
//! reproducible: the same seed and the same request sequence give the same faults (pebble#321).

use crate::error::problem_response;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use cobble_core::{Problem, ProblemType};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a fault rule does to a request it picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// `429` `rateLimited` with `Retry-After`.
    RateLimited,
    /// `503` `serverInternal` with `Retry-After`.
    Unavailable,
    /// `500` `serverInternal`.
    Internal,
    /// `400` `badNonce` (POST only), before the nonce is looked at, so it stays usable.
    BadNonce,
    /// The answer comes `delay-ms` (plus up to `jitter-ms`) later, otherwise unchanged.
    Delay,
    /// On finalize: the order answers `processing` and stays so for `stuck-secs`.
    StuckProcessing,
}

impl FaultKind {
    /// The kebab-case name, as in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::RateLimited => "rate-limited",
            FaultKind::Unavailable => "unavailable",
            FaultKind::Internal => "internal",
            FaultKind::BadNonce => "bad-nonce",
            FaultKind::Delay => "delay",
            FaultKind::StuckProcessing => "stuck-processing",
        }
    }
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FaultRule {
    /// The route pattern it applies to, e.g. `/acme/new-order` or `/acme/order/{id}/finalize`;
    /// `*` for every ACME endpoint.
    #[serde(default = "any_endpoint")]
    pub endpoint: String,
    /// What it does.
    pub kind: FaultKind,
    /// Share of the matching requests it picks, 0 to 100.
    #[serde(default = "all")]
    pub percent: f64,
    /// `Retry-After` of `rate-limited` and `unavailable` answers, in seconds.
    #[serde(default = "one")]
    pub retry_after_secs: u64,
    /// Fixed delay of `delay`, in ms.
    #[serde(default)]
    pub delay_ms: u64,
    /// Random extra delay of `delay`, up to this many ms.
    #[serde(default)]
    pub jitter_ms: u64,
    /// How long `stuck-processing` keeps an order in `processing`, in seconds.
    #[serde(default = "ten")]
    pub stuck_secs: u64,
}

fn any_endpoint() -> String {
    "*".into()
}
fn all() -> f64 {
    100.0
}
fn one() -> u64 {
    1
}
fn ten() -> u64 {
    10
}

impl FaultRule {
    /// Parses the `--fault` form: `kind=rate-limited,percent=10,endpoint=/acme/new-order`
    /// (keys as in the config file; only `kind` is required).
    pub fn parse_flag(spec: &str) -> Result<Self, String> {
        let mut table = toml::Table::new();
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not key=value"))?;
            let (k, v) = (k.trim(), v.trim());
            let value = match k {
                "percent" => toml::Value::Float(
                    v.parse::<f64>()
                        .map_err(|_| format!("percent {v:?} is not a number"))?,
                ),
                "retry-after-secs" | "delay-ms" | "jitter-ms" | "stuck-secs" => {
                    toml::Value::Integer(
                        v.parse::<i64>()
                            .map_err(|_| format!("{k} {v:?} is not a whole number"))?,
                    )
                }
                _ => toml::Value::String(v.to_owned()),
            };
            table.insert(k.to_owned(), value);
        }
        let rule: FaultRule = table.try_into().map_err(|e| format!("{spec:?}: {e}"))?;
        rule.check()?;
        Ok(rule)
    }

    /// Refuses rules that cannot mean anything.
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=100.0).contains(&self.percent) {
            return Err(format!("percent {} is not within 0-100", self.percent));
        }
        if self.endpoint != "*" && !self.endpoint.starts_with('/') {
            return Err(format!(
                "endpoint {:?} is neither * nor a route pattern such as /acme/new-order",
                self.endpoint
            ));
        }
        Ok(())
    }

    fn applies(&self, endpoint: &str, method: &Method) -> bool {
        let at = self.endpoint == "*" || self.endpoint == endpoint;
        let kind_fits = match self.kind {
            FaultKind::BadNonce => method == Method::POST,
            FaultKind::StuckProcessing => endpoint == "/acme/order/{id}/finalize",
            _ => true,
        };
        at && kind_fits
    }
}

/// SplitMix64: small, fast, and the same sequence for the same seed on every platform.
#[derive(Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D4_9BB1_3311_EB51);
        z ^ (z >> 31)
    }
}

/// The rules in force and the knobs' random generator.
#[derive(Debug)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    rng: Mutex<(u64, SplitMix)>,
    stuck: Mutex<HashMap<String, Instant>>,
    /// Pebble's ARI override: serial (lower-case hex) -> the renewalInfo JSON to answer.
    ari: Mutex<HashMap<String, serde_json::Value>>,
}

/// What `GET /admin/faults` shows and `PUT /admin/faults` takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    /// The rules, applied in order; the first that picks a request decides.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    /// The seed of the random choices; setting it restarts the sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Faults {
    /// Rules from the configuration; `seed` fixes the random sequence (otherwise the system
    /// RNG picks one, shown by `GET /admin/faults`).
    pub fn new(rules: Vec<FaultRule>, seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or_else(|| {
            let mut b = [0u8; 8];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
                .expect("system RNG");
            u64::from_be_bytes(b)
        });
        Faults {
            rules: Mutex::new(rules),
            rng: Mutex::new((seed, SplitMix(seed))),
            stuck: Mutex::new(HashMap::new()),
            ari: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the renewalInfo answer for the certificate with `serial` (Pebble's
    /// `/set-renewal-info/`).
    pub fn set_renewal_info(&self, serial: &str, answer: serde_json::Value) {
        self.ari
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(serial_key(serial), answer);
    }

    /// The renewalInfo answer set for `serial`, if any.
    pub fn renewal_info(&self, serial: &str) -> Option<serde_json::Value> {
        self.ari
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&serial_key(serial))
            .cloned()
    }

    /// The rules and seed now.
    pub fn settings(&self) -> FaultSettings {
        FaultSettings {
            rules: self.rules.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            seed: Some(self.rng.lock().unwrap_or_else(|e| e.into_inner()).0),
        }
    }

    /// Replaces the rules, and with a seed restarts the random sequence.
    pub fn replace(&self, s: FaultSettings) -> Result<(), String> {
        for r in &s.rules {
            r.check()?;
        }
        *self.rules.lock().unwrap_or_else(|e| e.into_inner()) = s.rules;
        if let Some(seed) = s.seed {
            *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = (seed, SplitMix(seed));
        }
        Ok(())
    }

    /// A number in `0..n` (0 when `n` is 0) from the knobs' generator.
    pub fn below(&self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).1.next() % n
    }

    /// True with probability `percent`/100; 100 and above are always true without a draw,
    /// 0 and below never, so a knob left off consumes nothing of the sequence.
    pub fn roll(&self, percent: f64) -> bool {
        if percent >= 100.0 {
            return true;
        }
        if percent <= 0.0 {
            return false;
        }
        (self.below(1_000_000) as f64) < percent * 10_000.0
    }

    /// The first rule that picks this request, if any.
    fn pick(&self, endpoint: &str, method: &Method) -> Option<FaultRule> {
        let rules = self.rules.lock().unwrap_or_else(|e| e.into_inner()).clone();
        rules
            .into_iter()
            .filter(|r| r.applies(endpoint, method))
            .find(|r| self.roll(r.percent))
    }

    /// How much longer order `id` is held in `processing` by a `stuck-processing` fault.
    pub fn stuck_for(&self, order_id: &str) -> Option<Duration> {
        let mut m = self.stuck.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        m.retain(|_, until| *until > now);
        m.get(order_id).map(|until| *until - now)
    }
}

/// A serial in hex, compared without case or leading zeros (DER may add a 00 byte).
fn serial_key(hex: &str) -> String {
    hex.to_ascii_lowercase().trim_start_matches('0').to_owned()
}

fn with_retry_after(mut r: Response, secs: u64) -> Response {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// The middleware: the first rule that picks the request answers it (or delays it).
/// Injected answers are whole problem documents; the request body was already read, so
/// they arrive cleanly over HTTP/1.1 and HTTP/2.
pub async fn middleware(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let Some(rule) = s.faults.pick(&endpoint, req.method()) else {
        return next.run(req).await;
    };
    s.metrics.fault(&endpoint, rule.kind.name());
    tracing::info!(endpoint, fault = rule.kind.name(), "injecting a fault");
    let note = "(injected by Cobble's fault knobs)";
    match rule.kind {
        FaultKind::RateLimited => with_retry_after(
            problem_response(&Problem::new(
                ProblemType::RateLimited,
                format!(
                    "too many requests to {endpoint} {note}; retry after {} s",
                    rule.retry_after_secs
                ),
            )),
            rule.retry_after_secs,
        ),
        FaultKind::Unavailable => with_retry_after(
            problem_response(
                &Problem::internal(format!(
                    "the service is unavailable {note}; retry after {} s",
                    rule.retry_after_secs
                ))
                .with_status(503),
            ),
            rule.retry_after_secs,
        ),
        FaultKind::Internal => problem_response(&Problem::internal(format!(
            "the server failed {note}; retry later"
        ))),
        FaultKind::BadNonce => problem_response(&Problem::bad_nonce(format!(
            "rejected {note}; retry with the fresh nonce in this response"
        ))),
        FaultKind::Delay => {
            let ms = rule.delay_ms + s.faults.below(rule.jitter_ms + 1);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(req).await
        }
        FaultKind::StuckProcessing => {
            // /acme/order/{id}/finalize: the order id is the path's third segment.
            if let Some(id) = req.uri().path().split('/').nth(3) {
                s.faults
                    .stuck
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        id.to_owned(),
                        Instant::now() + Duration::from_secs(rule.stuck_secs),
                    );
            }
            next.run(req).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_choices() {
        let a = Faults::new(Vec::new(), Some(42));
        let b = Faults::new(Vec::new(), Some(42));
        let c = Faults::new(Vec::new(), Some(43));
        let draw = |f: &Faults| (0..64).map(|_| f.roll(30.0)).collect::<Vec<_>>();
        let (da, db, dc) = (draw(&a), draw(&b), draw(&c));
        assert_eq!(da, db);
        assert_ne!(da, dc);
        let picked = da.iter().filter(|x| **x).count();
        assert!((5..=35).contains(&picked), "{picked} of 64 at 30%");
        // Off and always-on knobs draw nothing.
        let d = Faults::new(Vec::new(), Some(42));
        assert!(d.roll(100.0) && !d.roll(0.0));
        assert_eq!(draw(&d), da);
    }

    #[test]
    fn flags_parse_into_rules() {
        let r = FaultRule::parse_flag(
            "kind=rate-limited,percent=12.5,endpoint=/acme/new-order,retry-after-secs=3",
        )
        .unwrap();
        assert_eq!(r.kind, FaultKind::RateLimited);
        assert_eq!((r.percent, r.retry_after_secs), (12.5, 3));
        assert_eq!(r.endpoint, "/acme/new-order");
        let d = FaultRule::parse_flag("kind=delay,delay-ms=200").unwrap();
        assert_eq!(
            (d.endpoint.as_str(), d.percent, d.delay_ms),
            ("*", 100.0, 200)
        );
        for bad in [
            "percent=10",
            "kind=explode",
            "kind=delay,percent=101",
            "kind=delay,endpoint=acme",
            "kind=delay,colour=red",
            "kind",
        ] {
            assert!(FaultRule::parse_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kinds_apply_where_they_mean_something() {
        let r = |k| FaultRule {
            kind: k,
            ..FaultRule::parse_flag("kind=internal").unwrap()
        };
        assert!(!r(FaultKind::BadNonce).applies("/dir", &Method::GET));
        assert!(r(FaultKind::BadNonce).applies("/acme/new-order", &Method::POST));
        assert!(!r(FaultKind::StuckProcessing).applies("/acme/new-order", &Method::POST));
        assert!(r(FaultKind::StuckProcessing).applies("/acme/order/{id}/finalize", &Method::POST));
    }
}
