//! The renderings of a report (text lines, section summary and totals, JSON, JUnit) and the
//! reading of a `rateLimited` refusal, on hand-made results.

use cobble_conformance::client::{Reply, rate_limited};
use cobble_conformance::report::{json, junit, line, summary};
use cobble_conformance::{CheckResult, Exchange, Level, Outcome, Report};

fn result(id: &str, section: &str, level: Level, outcome: Outcome) -> CheckResult {
    CheckResult {
        id: id.into(),
        section: section.into(),
        level,
        title: format!("title of {id}"),
        outcome,
        millis: 1234,
    }
}

fn report() -> Report {
    Report {
        directory: "https://acme.test/dir".into(),
        results: vec![
            result("dir.a", "RFC 8555 §7.10", Level::Must, Outcome::Pass),
            result(
                "nonce.b",
                "RFC 8555 §7.9",
                Level::Should,
                Outcome::Fail {
                    reason: "said <no> & \"why\"".into(),
                    exchange: Some(Exchange {
                        sent: "POST https://acme.test/x\nline two".into(),
                        received: "HTTP/1.1 400".into(),
                    }),
                },
            ),
            result(
                "nonce.c",
                "RFC 8555 §7.9",
                Level::Must,
                Outcome::Skip {
                    reason: "needs --thing".into(),
                },
            ),
            result(
                "prob.d",
                "RFC 7807 §3",
                Level::May,
                Outcome::NotApplicable {
                    reason: "not offered".into(),
                },
            ),
        ],
    }
}

#[test]
fn a_line_per_check_with_the_evidence_of_a_failure() {
    let r = report();
    assert_eq!(
        line(&r.results[0]),
        format!(
            "{:<4} {:<6} {:<38} {:<18} {}",
            "pass", "MUST", "dir.a", "RFC 8555 §7.10", "title of dir.a"
        )
    );
    let fail = line(&r.results[1]);
    let lines: Vec<&str> = fail.lines().collect();
    assert!(lines[0].starts_with("FAIL SHOULD nonce.b"), "{fail}");
    assert_eq!(lines[1], "       why: said <no> & \"why\"");
    assert_eq!(lines[2], "       sent:");
    assert_eq!(lines[3], "          POST https://acme.test/x");
    assert_eq!(lines[4], "          line two");
    assert_eq!(lines[5], "       received:");
    assert_eq!(lines[6], "          HTTP/1.1 400");
    assert_eq!(lines.len(), 7);
    assert!(line(&r.results[2]).ends_with("\n       (needs --thing)"));
    assert!(line(&r.results[3]).starts_with("n/a  MAY"));
}

#[test]
fn summary_by_section_in_rfc_order_then_totals() {
    let s = summary(&report());
    let lines: Vec<String> = s
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        lines,
        [
            "by section:",
            "RFC 7807 §3 0 passed 0 failed 1 skipped",
            "RFC 8555 §7.9 0 passed 1 failed 1 skipped",
            "RFC 8555 §7.10 1 passed 0 failed 0 skipped",
            "1 passed, 1 failed, 2 skipped",
        ]
    );
    assert!(s.ends_with("\n1 passed, 1 failed, 2 skipped\n"));
}

#[test]
fn must_failed_only_for_a_must() {
    let mut r = report();
    assert!(!r.must_failed(), "only a SHOULD failed");
    r.results[1].level = Level::Must;
    assert!(r.must_failed());
}

#[test]
fn json_has_the_counts_and_each_outcome() {
    let v: serde_json::Value = serde_json::from_str(&json(&report())).unwrap();
    assert_eq!(v["directory"], "https://acme.test/dir");
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["skipped"], 2);
    assert_eq!(v["must_failed"], false);
    let rs = v["results"].as_array().unwrap();
    let outcomes: Vec<&str> = rs.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["pass", "fail", "skip", "not-applicable"]);
    assert_eq!(rs[1]["level"], "SHOULD");
    assert_eq!(rs[1]["reason"], "said <no> & \"why\"");
    assert_eq!(rs[1]["exchange"]["received"], "HTTP/1.1 400");
    assert_eq!(rs[2]["area"], "Nonces (RFC 8555 §6.5, §7.2)");
}

#[test]
fn junit_counts_and_escapes() {
    let x = junit(&report());
    assert!(x.starts_with(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"cobble conformance\" tests=\"4\" failures=\"1\" skipped=\"2\">\n"
    ));
    assert!(x.ends_with("</testsuites>\n"));
    assert_eq!(x.matches("<testsuite ").count(), 3, "one per section:\n{x}");
    assert_eq!(x.matches("<testcase ").count(), 4);
    assert_eq!(x.matches("</testcase>").count(), 4);
    assert!(
        x.contains("<testsuite name=\"RFC 8555 §7.9\" tests=\"2\" failures=\"1\" skipped=\"1\">")
    );
    assert!(x.contains("time=\"1.234\""));
    assert!(
        x.contains("<failure message=\"said &lt;no&gt; &amp; &quot;why&quot;\">sent:\nPOST"),
        "{x}"
    );
    assert!(x.contains("<skipped message=\"needs --thing\"/>"));
    assert!(x.contains("<skipped message=\"not offered\"/>"));
    assert!(!x.contains("<no>"), "the reason is escaped");
}

fn reply(status: u16, body: serde_json::Value, retry_after: Option<&str>) -> Reply {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(v) = retry_after {
        headers.insert("retry-after", v.parse().unwrap());
    }
    Reply {
        status,
        headers,
        text: body.to_string(),
        body,
        sent: "POST https://acme.test/new-order\ncontent-type: application/jose+json".into(),
        version: reqwest::Version::HTTP_11,
    }
}

#[test]
fn a_rate_limited_refusal_gives_its_detail_and_retry_after() {
    let limited = serde_json::json!({
        "type": "urn:ietf:params:acme:error:rateLimited",
        "detail": "too many certificates for example.com",
        "status": 429,
    });
    let reason = rate_limited(&reply(429, limited.clone(), Some("3600"))).unwrap();
    assert!(
        reason.contains("429 rateLimited to POST https://acme.test/new-order)"),
        "{reason}"
    );
    assert!(
        reason.ends_with("too many certificates for example.com; Retry-After: 3600"),
        "{reason}"
    );
    let reason = rate_limited(&reply(429, limited.clone(), None)).unwrap();
    assert!(reason.ends_with("; no Retry-After"), "{reason}");
    // Only a 429 with the rateLimited type is a rate limit.
    assert!(rate_limited(&reply(400, limited, None)).is_none());
    let other = serde_json::json!({"type": "urn:ietf:params:acme:error:serverInternal"});
    assert!(rate_limited(&reply(429, other, Some("1"))).is_none());
    assert!(rate_limited(&reply(429, serde_json::Value::Null, Some("1"))).is_none());
}
