//! Latency samples and their summaries (percentiles by nearest rank), per step and per order.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// One step of the order loop (RFC 8555 §7.4 and §7.5), in the order a client runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// POST newOrder (§7.4).
    NewOrder,
    /// POST-as-GET of the authorization (§7.5).
    Authz,
    /// POST `{}` to the challenge (§7.5.1).
    Challenge,
    /// POST-as-GET of the authorization until it is `valid`.
    PollAuthz,
    /// POST-as-GET of the order until it is `ready`.
    PollOrderReady,
    /// POST finalize with a CSR (§7.4).
    Finalize,
    /// POST-as-GET of the order until it is `valid`, when finalize answered `processing`.
    PollOrderValid,
    /// POST-as-GET of the certificate (§7.4.2).
    Certificate,
}

impl Step {
    /// Every step, in the order they run.
    pub const ALL: [Step; 8] = [
        Step::NewOrder,
        Step::Authz,
        Step::Challenge,
        Step::PollAuthz,
        Step::PollOrderReady,
        Step::Finalize,
        Step::PollOrderValid,
        Step::Certificate,
    ];

    /// The step's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Step::NewOrder => "new_order",
            Step::Authz => "authz",
            Step::Challenge => "challenge",
            Step::PollAuthz => "poll_authz",
            Step::PollOrderReady => "poll_order_ready",
            Step::Finalize => "finalize",
            Step::PollOrderValid => "poll_order_valid",
            Step::Certificate => "certificate",
        }
    }
}

/// Durations in microseconds, kept whole so that percentiles are exact.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<u32>);

impl Samples {
    /// Adds one duration (saturating at about 71 minutes).
    pub fn push(&mut self, d: Duration) {
        self.0
            .push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
    }

    /// How many durations were added.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Count, mean, p50/p90/p99 and max, in milliseconds.
    pub fn summary(&self) -> Summary {
        let mut v = self.0.clone();
        v.sort_unstable();
        let ms = |us: u32| f64::from(us) / 1000.0;
        let rank = |p: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            // Nearest rank: the smallest sample with at least p % of the samples at or below it.
            let i = ((p / 100.0) * v.len() as f64).ceil() as usize;
            ms(v[i.clamp(1, v.len()) - 1])
        };
        let sum: u64 = v.iter().map(|&x| u64::from(x)).sum();
        Summary {
            count: v.len() as u64,
            mean_ms: if v.is_empty() {
                0.0
            } else {
                sum as f64 / v.len() as f64 / 1000.0
            },
            p50_ms: rank(50.0),
            p90_ms: rank(90.0),
            p99_ms: rank(99.0),
            max_ms: v.last().copied().map(ms).unwrap_or(0.0),
        }
    }
}

/// A latency summary in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub count: u64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl Summary {
    /// The summary as a JSON object (milliseconds, three decimals).
    pub fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "mean_ms": round3(self.mean_ms),
            "p50_ms": round3(self.p50_ms),
            "p90_ms": round3(self.p90_ms),
            "p99_ms": round3(self.p99_ms),
            "max_ms": round3(self.max_ms),
        })
    }
}

/// Rounds to three decimals for reports.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Everything the clients record while they run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Per-step durations (successful steps only).
    pub steps: BTreeMap<Step, Samples>,
    /// Whole-order durations (completed orders only).
    pub orders: Samples,
    /// Failed orders by failure kind (the ACME problem type without its URN prefix,
    /// `http-<status>`, `transport`, `timeout`, `invalid`, `protocol`).
    pub failures: BTreeMap<String, u64>,
    /// The first failure seen of each kind: `step: detail`.
    pub failure_examples: BTreeMap<String, String>,
}

impl Stats {
    /// Records a successful step.
    pub fn step(&mut self, step: Step, d: Duration) {
        self.steps.entry(step).or_default().push(d);
    }

    /// Records a failed order.
    pub fn failure(&mut self, kind: &str, step: Step, detail: &str) {
        *self.failures.entry(kind.to_owned()).or_default() += 1;
        self.failure_examples
            .entry(kind.to_owned())
            .or_insert_with(|| format!("{}: {detail}", step.name()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut s = Samples::default();
        for ms in 1..=100u64 {
            s.push(Duration::from_millis(ms));
        }
        let m = s.summary();
        assert_eq!(m.count, 100);
        assert_eq!(
            (m.p50_ms, m.p90_ms, m.p99_ms, m.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert!((m.mean_ms - 50.5).abs() < 1e-9);
    }

    #[test]
    fn empty_and_single_samples() {
        assert_eq!(Samples::default().summary(), Summary::default());
        let mut s = Samples::default();
        s.push(Duration::from_micros(1500));
        let m = s.summary();
        assert_eq!((m.count, m.p50_ms, m.p99_ms, m.max_ms), (1, 1.5, 1.5, 1.5));
    }

    #[test]
    fn failures_keep_the_first_example() {
        let mut st = Stats::default();
        st.failure("badNonce", Step::Finalize, "first");
        st.failure("badNonce", Step::NewOrder, "second");
        assert_eq!(st.failures["badNonce"], 2);
        assert_eq!(st.failure_examples["badNonce"], "finalize: first");
    }
}
