//! Prometheus metrics, served as text (exposition format 0.0.4) at `/metrics` on the
//! management listener. Each instance keeps its own registry in its state (no process-wide
//! recorder), so two instances in one process, as in the tests, count apart. Counters and
//! histograms are recorded by small hooks (the request middleware, the problem renderer,
//! the validation worker, the issuer); gauges (job queues, the database pool) are read at
//! scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the request and validation latency histograms.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A cumulative histogram over fixed buckets.
#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; LATENCY_BUCKETS.len()],
            sum: 0.0,
            count: 0,
        }
    }
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Registry {
    requests: BTreeMap<(String, String, u16), u64>,
    request_seconds: BTreeMap<String, Histogram>,
    problems: BTreeMap<(String, String), u64>,
    rate_limited: BTreeMap<String, u64>,
    validations: BTreeMap<(String, String), u64>,
    validation_seconds: BTreeMap<String, Histogram>,
    issuances: BTreeMap<String, u64>,
    issuance_seconds: Histogram,
    nonces_issued: u64,
    nonces_redeemed: u64,
    nonces_rejected: u64,
    faults: BTreeMap<(String, String), u64>,
}

/// Gauges read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// The validation queue.
    pub validation_queue: cobble_store::QueueStats,
    /// The issuance queue.
    pub issuance_queue: cobble_store::QueueStats,
    /// The connection pool.
    pub pool: cobble_store::PoolStats,
    /// Time to get a pooled connection at scrape time.
    pub acquire: Option<Duration>,
}

/// One instance's metrics.
#[derive(Debug, Default)]
pub struct Metrics(Mutex<Registry>);

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Registry)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// One ACME request answered: `endpoint` is the route's path pattern (never the
    /// concrete URL, so the label set stays small).
    pub fn request(&self, endpoint: &str, method: &str, status: u16, took: Duration) {
        self.with(|r| {
            *r.requests
                .entry((endpoint.to_owned(), method.to_owned(), status))
                .or_default() += 1;
            r.request_seconds
                .entry(endpoint.to_owned())
                .or_default()
                .observe(took.as_secs_f64());
        });
    }

    /// A problem document sent: its ACME type (short name) and Certigna code, if any.
    pub fn problem(&self, endpoint: &str, kind: &str, code: &str) {
        self.with(|r| {
            *r.problems
                .entry((kind.to_owned(), code.to_owned()))
                .or_default() += 1;
            match kind {
                "rateLimited" => *r.rate_limited.entry(endpoint.to_owned()).or_default() += 1,
                "badNonce" => r.nonces_rejected += 1,
                _ => {}
            }
        });
    }

    /// A validation finished with `outcome` (`valid` or `invalid`).
    pub fn validation(&self, challenge_type: &str, outcome: &str, took: Duration) {
        self.with(|r| {
            *r.validations
                .entry((challenge_type.to_owned(), outcome.to_owned()))
                .or_default() += 1;
            r.validation_seconds
                .entry(challenge_type.to_owned())
                .or_default()
                .observe(took.as_secs_f64());
        });
    }

    /// An issuance job ended with `outcome` (`issued`, `failed`, `superseded`).
    pub fn issuance(&self, outcome: &str, took: Duration) {
        self.with(|r| {
            *r.issuances.entry(outcome.to_owned()).or_default() += 1;
            if outcome == "issued" {
                r.issuance_seconds.observe(took.as_secs_f64());
            }
        });
    }

    /// A nonce minted.
    pub fn nonce_issued(&self) {
        self.with(|r| r.nonces_issued += 1);
    }

    /// A nonce redeemed (a verified request used it up).
    pub fn nonce_redeemed(&self) {
        self.with(|r| r.nonces_redeemed += 1);
    }

    /// A fault injected by the fault knobs (see `faults`).
    pub fn fault(&self, endpoint: &str, kind: &str) {
        self.with(|r| {
            *r.faults
                .entry((endpoint.to_owned(), kind.to_owned()))
                .or_default() += 1
        });
    }

    /// The whole registry in Prometheus text format.
    pub fn render(&self, g: &Gauges) -> String {
        let r = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut o = String::new();
        family(
            &mut o,
            "cobble_http_requests_total",
            "counter",
            "ACME requests answered, by endpoint (route pattern), method and status.",
        );
        for ((e, m, s), n) in &r.requests {
            sample(
                &mut o,
                "cobble_http_requests_total",
                &[("endpoint", e), ("method", m), ("status", &s.to_string())],
                *n as f64,
            );
        }
        histograms(
            &mut o,
            "cobble_http_request_duration_seconds",
            "ACME request latency by endpoint.",
            "endpoint",
            &r.request_seconds,
        );
        family(
            &mut o,
            "cobble_acme_problems_total",
            "counter",
            "Problem documents sent, by ACME error type and result code (empty when none).",
        );
        for ((t, c), n) in &r.problems {
            sample(
                &mut o,
                "cobble_acme_problems_total",
                &[("type", t), ("code", c)],
                *n as f64,
            );
        }
        family(
            &mut o,
            "cobble_rate_limit_refusals_total",
            "counter",
            "Requests refused with rateLimited, by endpoint.",
        );
        for (e, n) in &r.rate_limited {
            sample(
                &mut o,
                "cobble_rate_limit_refusals_total",
                &[("endpoint", e)],
                *n as f64,
            );
        }
        family(
            &mut o,
            "cobble_validations_total",
            "counter",
            "Challenge validations run by this instance, by challenge type and outcome.",
        );
        for ((t, out), n) in &r.validations {
            sample(
                &mut o,
                "cobble_validations_total",
                &[("challenge_type", t), ("outcome", out)],
                *n as f64,
            );
        }
        histograms(
            &mut o,
            "cobble_validation_duration_seconds",
            "Validation latency (every network step and CAA together), by challenge type.",
            "challenge_type",
            &r.validation_seconds,
        );
        family(
            &mut o,
            "cobble_issuances_total",
            "counter",
            "Issuance jobs ended by this instance, by outcome.",
        );
        for (out, n) in &r.issuances {
            sample(
                &mut o,
                "cobble_issuances_total",
                &[("outcome", out)],
                *n as f64,
            );
        }
        let mut one = BTreeMap::new();
        one.insert(String::new(), r.issuance_seconds.clone());
        histograms(
            &mut o,
            "cobble_issuance_duration_seconds",
            "Time from the issuance job's start to the certificate's commit.",
            "",
            &one,
        );
        for (name, help, v) in [
            (
                "cobble_nonces_issued_total",
                "Nonces minted (Replay-Nonce headers sent).",
                r.nonces_issued,
            ),
            (
                "cobble_nonces_redeemed_total",
                "Nonces used up by verified requests.",
                r.nonces_redeemed,
            ),
            (
                "cobble_nonces_rejected_total",
                "Requests refused with badNonce.",
                r.nonces_rejected,
            ),
        ] {
            family(&mut o, name, "counter", help);
            sample(&mut o, name, &[], v as f64);
        }
        family(
            &mut o,
            "cobble_faults_injected_total",
            "counter",
            "Answers made by the fault knobs, by endpoint and kind.",
        );
        for ((e, k), n) in &r.faults {
            sample(
                &mut o,
                "cobble_faults_injected_total",
                &[("endpoint", e), ("kind", k)],
                *n as f64,
            );
        }
        family(
            &mut o,
            "cobble_job_queue_depth",
            "gauge",
            "Jobs queued or running in the store (all instances), by queue.",
        );
        family(
            &mut o,
            "cobble_job_queue_oldest_age_seconds",
            "gauge",
            "Age of the oldest job in the queue (0 when empty).",
        );
        for (q, s) in [
            ("validation", g.validation_queue),
            ("issuance", g.issuance_queue),
        ] {
            sample(
                &mut o,
                "cobble_job_queue_depth",
                &[("queue", q)],
                s.depth as f64,
            );
            sample(
                &mut o,
                "cobble_job_queue_oldest_age_seconds",
                &[("queue", q)],
                s.oldest_age_ms as f64 / 1000.0,
            );
        }
        family(
            &mut o,
            "cobble_db_pool_connections",
            "gauge",
            "Database pool connections of this instance, by state (in_use, idle, max).",
        );
        let p = g.pool;
        for (state, v) in [
            ("in_use", p.open.saturating_sub(p.idle)),
            ("idle", p.idle),
            ("max", p.max),
        ] {
            sample(
                &mut o,
                "cobble_db_pool_connections",
                &[("state", state)],
                v as f64,
            );
        }
        if let Some(d) = g.acquire {
            family(
                &mut o,
                "cobble_db_acquire_seconds",
                "gauge",
                "Time to get a pooled database connection, probed at scrape time.",
            );
            sample(&mut o, "cobble_db_acquire_seconds", &[], d.as_secs_f64());
        }
        o
    }
}

fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// A label value escaped as the text format wants (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn sample(o: &mut String, name: &str, labels: &[(&str, &str)], v: f64) {
    o.push_str(name);
    if !labels.is_empty() {
        o.push('{');
        for (i, (k, val)) in labels.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "{k}=\"{}\"", escape(val));
        }
        o.push('}');
    }
    let _ = writeln!(o, " {v}");
}

fn histograms(
    o: &mut String,
    name: &str,
    help: &str,
    label: &str,
    hs: &BTreeMap<String, Histogram>,
) {
    family(o, name, "histogram", help);
    for (lv, h) in hs {
        let mut labels: Vec<(&str, &str)> = Vec::new();
        if !label.is_empty() {
            labels.push((label, lv));
        }
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            let le = le.to_string();
            let mut l = labels.clone();
            l.push(("le", &le));
            sample(o, &format!("{name}_bucket"), &l, h.counts[i] as f64);
        }
        let mut l = labels.clone();
        l.push(("le", "+Inf"));
        sample(o, &format!("{name}_bucket"), &l, h.count as f64);
        sample(o, &format!("{name}_sum"), &labels, h.sum);
        sample(o, &format!("{name}_count"), &labels, h.count as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_count_everything() {
        let m = Metrics::default();
        m.validation("http-01", "valid", Duration::from_millis(3));
        m.validation("http-01", "invalid", Duration::from_secs(100));
        let text = m.render(&Gauges::default());
        assert!(text.contains(
            "cobble_validation_duration_seconds_bucket{challenge_type=\"http-01\",le=\"0.005\"} 1\n"
        ));
        assert!(text.contains(
            "cobble_validation_duration_seconds_bucket{challenge_type=\"http-01\",le=\"60\"} 1\n"
        ));
        assert!(text.contains(
            "cobble_validation_duration_seconds_bucket{challenge_type=\"http-01\",le=\"+Inf\"} 2\n"
        ));
        assert!(
            text.contains(
                "cobble_validation_duration_seconds_count{challenge_type=\"http-01\"} 2\n"
            )
        );
        assert!(text.contains(
            "cobble_validations_total{challenge_type=\"http-01\",outcome=\"invalid\"} 1\n"
        ));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
