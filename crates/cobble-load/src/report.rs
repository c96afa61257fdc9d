//! The run's figures: built once at the end, printed for people and as one JSON object.

use crate::Options;
use crate::procstat::Sample;
use crate::stats::{Stats, Step, Summary, round3};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// CPU and memory of one server process tree over the run.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerUsage {
    /// The process measured (its descendants' CPU included).
    pub pid: u32,
    /// CPU time used during the run, in ms; `None` when the process could not be read.
    pub cpu_ms: Option<u64>,
    /// VmRSS before the run, in KiB.
    pub rss_kib_before: Option<u64>,
    /// VmRSS after the run, in KiB.
    pub rss_kib_after: Option<u64>,
    /// Processes in the tree at the end.
    pub processes: usize,
}

impl ServerUsage {
    /// The difference between two samples of `pid`.
    pub fn between(pid: u32, before: Option<Sample>, after: Option<Sample>) -> Self {
        ServerUsage {
            pid,
            cpu_ms: match (before, after) {
                (Some(b), Some(a)) => Some(a.cpu_ms.saturating_sub(b.cpu_ms)),
                _ => None,
            },
            rss_kib_before: before.map(|s| s.rss_kib),
            rss_kib_after: after.map(|s| s.rss_kib),
            processes: after.map(|s| s.processes).unwrap_or(0),
        }
    }
}

/// What [`Report::build`] needs.
pub struct Inputs<'a> {
    /// The run's options.
    pub opts: &'a Options,
    /// What the clients recorded.
    pub stats: Stats,
    /// From the first order started to the last client stopped.
    pub elapsed: Duration,
    /// HTTP requests sent during the run.
    pub requests: u64,
    /// badNonce answers retried.
    pub bad_nonce_retries: u64,
    /// JWS requests sent, registrations included.
    pub jws_sent: u64,
    /// JWS requests answered below 400.
    pub jws_accepted: u64,
    /// Time without a finished order when the run was stopped, if it was.
    pub stalled: Option<Duration>,
    /// This process's CPU time during the run, in ms.
    pub client_cpu_ms: u64,
    /// One entry per `--server-pid`.
    pub servers: Vec<ServerUsage>,
}

/// Every figure of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The directory URL driven.
    pub directory: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Seconds from the first order started to the last client stopped.
    pub elapsed_secs: f64,
    /// Orders that reached a downloaded certificate.
    pub orders_completed: u64,
    /// Orders that failed.
    pub orders_failed: u64,
    /// Completed orders per second.
    pub orders_per_sec: f64,
    /// HTTP requests sent during the run.
    pub requests: u64,
    /// badNonce answers retried.
    pub bad_nonce_retries: u64,
    /// JWS requests sent, account registrations included: an upper bound on the nonces
    /// the server redeemed for this run.
    pub jws_sent: u64,
    /// JWS requests answered below 400: each redeemed exactly one nonce, so the server's
    /// used-nonce count is at least this.
    pub jws_accepted: u64,
    /// Seconds without a finished order when the run was stopped as stalled.
    pub stalled_secs: Option<f64>,
    /// Whole-order latency (completed orders).
    pub order: Summary,
    /// Per-step latency, for the steps that ran.
    pub steps: Vec<(Step, Summary)>,
    /// Failed orders by kind.
    pub failures: BTreeMap<String, u64>,
    /// The first failure of each kind.
    pub failure_examples: BTreeMap<String, String>,
    /// The load generator's own CPU during the run, in ms.
    pub client_cpu_ms: u64,
    /// The servers measured.
    pub servers: Vec<ServerUsage>,
}

impl Report {
    /// Computes the figures.
    pub fn build(i: Inputs<'_>) -> Self {
        let secs = i.elapsed.as_secs_f64();
        let completed = i.stats.orders.len() as u64;
        Report {
            directory: i.opts.directory.clone(),
            clients: i.opts.clients,
            elapsed_secs: secs,
            orders_completed: completed,
            orders_failed: i.stats.failures.values().sum(),
            orders_per_sec: if secs > 0.0 {
                completed as f64 / secs
            } else {
                0.0
            },
            requests: i.requests,
            bad_nonce_retries: i.bad_nonce_retries,
            jws_sent: i.jws_sent,
            jws_accepted: i.jws_accepted,
            stalled_secs: i.stalled.map(|d| d.as_secs_f64()),
            order: i.stats.orders.summary(),
            steps: Step::ALL
                .iter()
                .filter_map(|s| i.stats.steps.get(s).map(|v| (*s, v.summary())))
                .collect(),
            failures: i.stats.failures,
            failure_examples: i.stats.failure_examples,
            client_cpu_ms: i.client_cpu_ms,
            servers: i.servers,
        }
    }

    /// 0: every order completed; 1: some failed; 3: the server stalled.
    /// (2, a run that could not start, is the CLI's.)
    pub fn exit_code(&self) -> i32 {
        if self.stalled_secs.is_some() {
            3
        } else if self.orders_failed > 0 {
            1
        } else {
            0
        }
    }

    fn per_order(&self, ms: u64) -> Option<f64> {
        (self.orders_completed > 0).then(|| round3(ms as f64 / self.orders_completed as f64))
    }

    /// Server CPU per completed order, summed over every `--server-pid`.
    pub fn server_cpu_ms_per_order(&self) -> Option<f64> {
        let total: Option<u64> = self.servers.iter().map(|s| s.cpu_ms).sum();
        if self.servers.is_empty() {
            return None;
        }
        self.per_order(total?)
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> Value {
        let mb = |k: Option<u64>| k.map(|k| round3(k as f64 / 1024.0));
        let steps: serde_json::Map<String, Value> = self
            .steps
            .iter()
            .map(|(s, m)| (s.name().to_owned(), m.to_json()))
            .collect();
        let servers: Vec<Value> = self
            .servers
            .iter()
            .map(|s| {
                json!({
                    "pid": s.pid,
                    "cpu_ms": s.cpu_ms,
                    "cpu_ms_per_order": s.cpu_ms.and_then(|c| self.per_order(c)),
                    "rss_mb_before": mb(s.rss_kib_before),
                    "rss_mb_after": mb(s.rss_kib_after),
                    "processes": s.processes,
                })
            })
            .collect();
        json!({
            "directory": self.directory,
            "clients": self.clients,
            "elapsed_secs": round3(self.elapsed_secs),
            "orders_completed": self.orders_completed,
            "orders_failed": self.orders_failed,
            "orders_per_sec": round3(self.orders_per_sec),
            "requests": self.requests,
            "requests_per_order": (self.orders_completed > 0)
                .then(|| round3(self.requests as f64 / self.orders_completed as f64)),
            "bad_nonce_retries": self.bad_nonce_retries,
            "jws_sent": self.jws_sent,
            "jws_accepted": self.jws_accepted,
            "stalled": self.stalled_secs.is_some(),
            "stalled_secs": self.stalled_secs.map(round3),
            "order": self.order.to_json(),
            "steps": steps,
            "failures": self.failures,
            "failure_examples": self.failure_examples,
            "client_cpu_ms": self.client_cpu_ms,
            "client_cpu_ms_per_order": self.per_order(self.client_cpu_ms),
            "servers": servers,
            "server_cpu_ms_per_order": self.server_cpu_ms_per_order(),
        })
    }

    /// The report for people, several lines.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} clients, {:.1} s: {} orders completed ({:.1}/s), {} failed, {} requests, {} badNonce retried",
            self.directory,
            self.clients,
            self.elapsed_secs,
            self.orders_completed,
            self.orders_per_sec,
            self.orders_failed,
            self.requests,
            self.bad_nonce_retries
        );
        if let Some(st) = self.stalled_secs {
            let _ = writeln!(
                s,
                "STALLED: no order finished for {st:.1} s; the run was stopped"
            );
        }
        let _ = writeln!(
            s,
            "{:<18} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "ms", "count", "mean", "p50", "p90", "p99", "max"
        );
        let row = |s: &mut String, name: &str, m: &Summary| {
            let _ = writeln!(
                s,
                "{name:<18} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                m.count, m.mean_ms, m.p50_ms, m.p90_ms, m.p99_ms, m.max_ms
            );
        };
        for (step, m) in &self.steps {
            row(&mut s, step.name(), m);
        }
        row(&mut s, "order", &self.order);
        for (kind, n) in &self.failures {
            let ex = self.failure_examples.get(kind).map_or("", String::as_str);
            let _ = writeln!(s, "failed: {n} x {kind} (first: {ex})");
        }
        let _ = writeln!(
            s,
            "client CPU: {} ms ({} ms per order)",
            self.client_cpu_ms,
            fmt_opt(self.per_order(self.client_cpu_ms))
        );
        for v in &self.servers {
            let _ = writeln!(
                s,
                "server pid {}: CPU {} ms ({} ms per order, {} processes), RSS {} -> {} MiB",
                v.pid,
                v.cpu_ms.map_or("?".into(), |c| c.to_string()),
                fmt_opt(v.cpu_ms.and_then(|c| self.per_order(c))),
                v.processes,
                fmt_opt(v.rss_kib_before.map(|k| k as f64 / 1024.0)),
                fmt_opt(v.rss_kib_after.map(|k| k as f64 / 1024.0)),
            );
        }
        s
    }
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or("?".into(), |v| format!("{v:.2}"))
}
