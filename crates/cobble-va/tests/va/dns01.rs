//! dns-01 (RFC 8555 §8.4) against the mock DNS server.

use crate::assert_problem;
use crate::fixtures::MockDns;
use cobble_core::ProblemType;
use cobble_core::challenge::{ChallengeType, dns01_txt_value};
use cobble_core::identifier::Identifier;

const KA: &str = "token-dns.thumbprint";

fn dns(name: &str) -> Identifier {
    Identifier::Dns(name.to_owned())
}

#[tokio::test]
async fn dns01_passes_and_fails_by_case() {
    let d = MockDns::start().await;
    let va = d.validator(1, 1);
    let good = dns01_txt_value(KA);
    // Several values, one matching.
    d.txt("_acme-challenge.ok.test", "unrelated");
    d.txt("_acme-challenge.ok.test", &good);
    // Wrong value only.
    d.txt("_acme-challenge.wrong.test", "not-the-digest");
    // Delegation: _acme-challenge.deleg.test CNAME to another zone (acme.sh alias mode).
    d.cname("_acme-challenge.deleg.test", "deleg-target.other-zone.test");
    d.txt("deleg-target.other-zone.test", &good);
    // Wildcards validate the base name.
    d.txt("_acme-challenge.wild.test", &good);
    d.servfail("_acme-challenge.broken.test");

    for name in ["ok.test", "deleg.test", "*.wild.test"] {
        let rec = va
            .validate(ChallengeType::Dns01, &dns(name), "token-dns", KA)
            .await
            .unwrap_or_else(|p| panic!("{name}: {p}"));
        assert!(rec.is_array(), "{rec}");
    }

    let rows: &[(&str, ProblemType, &str)] = &[
        (
            "missing.test",
            ProblemType::Unauthorized,
            "No TXT record found at _acme-challenge.missing.test",
        ),
        (
            "wrong.test",
            ProblemType::Unauthorized,
            "Incorrect TXT record \"not-the-digest\" found at _acme-challenge.wrong.test",
        ),
        (
            "broken.test",
            ProblemType::Dns,
            "SERVFAIL looking up TXT for _acme-challenge.broken.test",
        ),
    ];
    for (name, kind, fragment) in rows {
        let p = va
            .validate(ChallengeType::Dns01, &dns(name), "token-dns", KA)
            .await
            .unwrap_err();
        assert_problem(&p, *kind, fragment, name);
    }
}

#[tokio::test]
async fn dns01_sees_a_changed_record_at_once() {
    let d = MockDns::start().await;
    let va = d.validator(1, 1);
    let id = dns("changing.test");
    d.txt("_acme-challenge.changing.test", "old");
    let p = va
        .validate(ChallengeType::Dns01, &id, "t", KA)
        .await
        .unwrap_err();
    assert_problem(
        &p,
        ProblemType::Unauthorized,
        "Incorrect TXT record \"old\"",
        "changing.test",
    );
    d.clear("_acme-challenge.changing.test");
    d.txt("_acme-challenge.changing.test", &dns01_txt_value(KA));
    va.validate(ChallengeType::Dns01, &id, "t", KA)
        .await
        .unwrap();
}

#[tokio::test]
async fn dns01_refuses_ip_identifiers() {
    let d = MockDns::start().await;
    let va = d.validator(1, 1);
    let id = Identifier::Ip("127.0.0.1".parse().unwrap());
    let p = va
        .validate(ChallengeType::Dns01, &id, "t", KA)
        .await
        .unwrap_err();
    assert_problem(&p, ProblemType::Malformed, "RFC 8738", "127.0.0.1");
}
