//! Renderings of a report: the human one (one line per check, a summary per section, the
//! totals line), JSON and JUnit XML.

use crate::model::{CheckResult, Outcome, Report};
use std::collections::BTreeMap;

/// One line for a check, and for a failure the reason and the exchange, indented.
pub fn line(r: &CheckResult) -> String {
    let mut s = format!(
        "{:<4} {:<6} {:<38} {:<18} {}",
        r.outcome.word(),
        r.level.as_str(),
        r.id,
        r.section,
        r.title
    );
    match &r.outcome {
        Outcome::Fail { reason, exchange } => {
            s.push_str(&format!("\n       why: {reason}"));
            if let Some(x) = exchange {
                s.push_str(&format!("\n       sent:\n{}", indent(&x.sent, 10)));
                s.push_str(&format!("\n       received:\n{}", indent(&x.received, 10)));
            }
        }
        Outcome::Skip { reason } | Outcome::NotApplicable { reason } => {
            s.push_str(&format!("\n       ({reason})"));
        }
        Outcome::Pass => {}
    }
    s
}

fn indent(t: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    t.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The summary per RFC section, then `N passed, N failed, N skipped`.
pub fn summary(report: &Report) -> String {
    let mut by: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for r in &report.results {
        let e = by.entry(r.section.clone()).or_default();
        match r.outcome {
            Outcome::Pass => e.0 += 1,
            Outcome::Fail { .. } => e.1 += 1,
            _ => e.2 += 1,
        }
    }
    let mut keys: Vec<_> = by.keys().cloned().collect();
    keys.sort_by_key(|k| section_key(k));
    let mut s = String::from("\nby section:\n");
    for k in keys {
        let (p, f, sk) = by[&k];
        s.push_str(&format!(
            "  {k:<22} {p:>3} passed {f:>3} failed {sk:>3} skipped\n"
        ));
    }
    let (p, f, sk) = report.counts();
    s.push_str(&format!("\n{p} passed, {f} failed, {sk} skipped\n"));
    s
}

/// Sorts `RFC 8555 §7.10` after `RFC 8555 §7.9`.
fn section_key(s: &str) -> (String, Vec<u32>) {
    let (rfc, sec) = s.split_once('§').unwrap_or((s, ""));
    (
        rfc.trim().to_owned(),
        sec.split('.')
            .filter_map(|p| p.trim().parse().ok())
            .collect(),
    )
}

/// The report as pretty JSON; each result also names its catalogue area (`area`).
pub fn json(report: &Report) -> String {
    let (passed, failed, skipped) = report.counts();
    let results: Vec<serde_json::Value> = report
        .results
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).expect("result serializes");
            let prefix = r.id.split('.').next().unwrap_or_default();
            v["area"] = crate::catalogue::area_title(prefix).into();
            v
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "directory": report.directory,
        "passed": passed, "failed": failed, "skipped": skipped,
        "must_failed": report.must_failed(),
        "results": results,
    }))
    .expect("report serializes")
}

/// The report as JUnit XML: one test suite per RFC section, one test case per check.
pub fn junit(report: &Report) -> String {
    let mut by: BTreeMap<String, Vec<&CheckResult>> = BTreeMap::new();
    for r in &report.results {
        by.entry(r.section.clone()).or_default().push(r);
    }
    let (_, failed, skipped) = report.counts();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"cobble conformance\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\">\n",
        report.results.len()
    );
    for (sec, rs) in by {
        let f = rs
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Fail { .. }))
            .count();
        let sk = rs
            .iter()
            .filter(|r| {
                matches!(
                    r.outcome,
                    Outcome::Skip { .. } | Outcome::NotApplicable { .. }
                )
            })
            .count();
        x.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" skipped=\"{sk}\">\n",
            esc(&sec),
            rs.len()
        ));
        for r in rs {
            x.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{} [{}] {}\" time=\"{:.3}\">",
                esc(&sec),
                esc(&r.id),
                r.level.as_str(),
                esc(&r.title),
                r.millis as f64 / 1000.0
            ));
            match &r.outcome {
                Outcome::Pass => {}
                Outcome::Fail { reason, exchange } => {
                    let body = exchange
                        .as_ref()
                        .map(|e| format!("sent:\n{}\n\nreceived:\n{}", e.sent, e.received))
                        .unwrap_or_default();
                    x.push_str(&format!(
                        "<failure message=\"{}\">{}</failure>",
                        esc(reason),
                        esc(&body)
                    ));
                }
                Outcome::Skip { reason } | Outcome::NotApplicable { reason } => {
                    x.push_str(&format!("<skipped message=\"{}\"/>", esc(reason)));
                }
            }
            x.push_str("</testcase>\n");
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

fn esc(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
