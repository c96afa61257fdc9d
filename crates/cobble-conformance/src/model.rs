//! What a run produces: per-check outcomes with the evidence of a failure, and the report.

use serde::Serialize;

/// RFC 2119 requirement level of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Level {
    /// An absolute requirement; a failure makes the run fail.
    #[serde(rename = "MUST")]
    Must,
    /// A recommendation; a failure is reported but does not fail the run.
    #[serde(rename = "SHOULD")]
    Should,
    /// An option; checked only where the server offers it.
    #[serde(rename = "MAY")]
    May,
}

impl Level {
    /// The RFC 2119 keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }
}

/// One HTTP request and its answer, shown for a failed check.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// Method, URL, content type and the body (a JWS shown with its decoded header and payload).
    pub sent: String,
    /// Status, the ACME-relevant headers and the body (truncated).
    pub received: String,
}

/// How a check ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// The server behaved as the RFC requires.
    Pass,
    /// The server departed from the RFC.
    Fail {
        /// What was wrong.
        reason: String,
        /// The exchange that showed it, when there was one.
        exchange: Option<Exchange>,
    },
    /// The check could not run here (the server lacks an optional feature, or the suite was not
    /// given what it needs).
    Skip {
        /// Why.
        reason: String,
    },
    /// The requirement does not apply to this server's answers (e.g. a MAY feature it does not use).
    NotApplicable {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// A short word for the outcome.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail { .. } => "FAIL",
            Outcome::Skip { .. } => "skip",
            Outcome::NotApplicable { .. } => "n/a",
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Catalogue id, e.g. `nonce.replay`.
    pub id: String,
    /// RFC section, e.g. `RFC 8555 §6.5`.
    pub section: String,
    /// Requirement level.
    pub level: Level,
    /// One-line title from the catalogue.
    pub title: String,
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Wall time in milliseconds.
    pub millis: u64,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The directory URL judged.
    pub directory: String,
    /// One entry per check run, in catalogue order.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// Counts of (passed, failed, skipped incl. not-applicable).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for r in &self.results {
            match r.outcome {
                Outcome::Pass => c.0 += 1,
                Outcome::Fail { .. } => c.1 += 1,
                _ => c.2 += 1,
            }
        }
        c
    }

    /// Whether any MUST check failed (the run's exit status).
    pub fn must_failed(&self) -> bool {
        self.results
            .iter()
            .any(|r| r.level == Level::Must && matches!(r.outcome, Outcome::Fail { .. }))
    }

    /// The result for `id`, if it ran.
    pub fn get(&self, id: &str) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.id == id)
    }
}
