//! CAA (RFC 8659, RFC 8657) through the mock DNS server: one row per case.

use crate::assert_problem;
use crate::fixtures::MockDns;
use cobble_core::challenge::ChallengeType;
use cobble_core::identifier::Identifier;
use cobble_core::{ProblemType, ResultCode};

const ACCT: &str = "https://localhost:14000/my-account/7";

/// (name, wildcard, account, method, Ok or a fragment of the forbidding detail)
type Row<'a> = (&'a str, bool, &'a str, ChallengeType, Result<(), &'a str>);

#[tokio::test]
async fn caa_table_through_dns() {
    let d = MockDns::start().await;
    let va = d.validator(1, 1);
    d.caa("us.test", false, "issue", "cobble.test");
    d.caa("other.test", false, "issue", "other-ca.test");
    d.caa("semi.test", false, "issue", ";");
    d.caa("wild.test", false, "issuewild", "cobble.test");
    d.caa("wild.test", false, "issue", ";");
    d.caa("wildfb.test", false, "issue", "cobble.test");
    d.caa("nowild.test", false, "issuewild", ";");
    d.caa("nowild.test", false, "issue", "cobble.test");
    d.caa("crit.test", true, "tbs", "unknown");
    d.caa("crit.test", false, "issue", "cobble.test");
    d.caa("noncrit.test", false, "tbs", "unknown");
    d.caa("noncrit.test", false, "issue", "cobble.test");
    d.caa(
        "acct.test",
        false,
        "issue",
        &format!("cobble.test; accounturi={ACCT}"),
    );
    d.caa(
        "vm.test",
        false,
        "issue",
        "cobble.test; validationmethods=dns-01,http-01",
    );
    d.caa("parent.test", false, "issue", "other-ca.test");
    d.cname("alias.test", "target.elsewhere.test");
    d.caa("target.elsewhere.test", false, "issue", "other-ca.test");
    d.servfail("fail.test");

    use ChallengeType::*;
    // (name, wildcard, account, method, Ok or fragment of the forbidding detail)
    let rows: &[Row<'_>] = &[
        ("none.test", false, ACCT, Http01, Ok(())),
        ("us.test", false, ACCT, Http01, Ok(())),
        ("www.us.test", false, ACCT, Http01, Ok(())),
        (
            "other.test",
            false,
            ACCT,
            Http01,
            Err(
                "CAA record for other.test prevents issuance for other.test: no issue property authorizes cobble.test (only other-ca.test may issue); found at other.test: 0 issue \"other-ca.test\"",
            ),
        ),
        (
            "semi.test",
            false,
            ACCT,
            Http01,
            Err("(no CA may issue); found at semi.test: 0 issue \";\""),
        ),
        ("wild.test", true, ACCT, Dns01, Ok(())),
        ("wild.test", false, ACCT, Dns01, Err("0 issue \";\"")),
        ("wildfb.test", true, ACCT, Dns01, Ok(())),
        ("nowild.test", true, ACCT, Dns01, Err("0 issuewild \";\"")),
        ("nowild.test", false, ACCT, Dns01, Ok(())),
        (
            "crit.test",
            false,
            ACCT,
            Http01,
            Err(
                "critical property this CA does not understand; found at crit.test: 128 tbs \"unknown\"",
            ),
        ),
        ("noncrit.test", false, ACCT, Http01, Ok(())),
        ("acct.test", false, ACCT, Http01, Ok(())),
        (
            "acct.test",
            false,
            "https://localhost:14000/my-account/8",
            Http01,
            Err("accounturi is not https://localhost:14000/my-account/8"),
        ),
        ("vm.test", false, ACCT, Http01, Ok(())),
        (
            "vm.test",
            false,
            ACCT,
            TlsAlpn01,
            Err("validationmethods does not include tls-alpn-01"),
        ),
        (
            "a.b.parent.test",
            false,
            ACCT,
            Http01,
            Err(
                "prevents issuance for a.b.parent.test: no issue property authorizes cobble.test (only other-ca.test may issue); found at parent.test:",
            ),
        ),
        ("alias.test", false, ACCT, Http01, Err("other-ca.test")),
    ];
    for (name, wildcard, acct, method, want) in rows {
        let id = Identifier::Dns(name.to_string());
        let got = va.check_caa(&id, *wildcard, acct, *method).await;
        match (want, got) {
            (Ok(()), Ok(())) => {}
            (Err(fragment), Err(p)) => {
                assert_problem(&p, ProblemType::Caa, fragment, name);
                assert!(p.detail.starts_with("INVALID_DNSCAA: "), "{p}");
                assert_eq!(p.code, Some(ResultCode::InvalidDnsCaa));
            }
            (want, got) => {
                panic!("{name} wildcard={wildcard} {acct} {method:?}: want {want:?}, got {got:?}")
            }
        }
    }

    // A `*.` identifier is treated as a wildcard even without the flag.
    let id = Identifier::Dns("*.nowild.test".into());
    let p = va.check_caa(&id, false, ACCT, Dns01).await.unwrap_err();
    assert_problem(&p, ProblemType::Caa, "issuewild", "*.nowild.test");

    // SERVFAIL is a failure, never "no CAA".
    let id = Identifier::Dns("www.fail.test".into());
    let p = va.check_caa(&id, false, ACCT, Http01).await.unwrap_err();
    assert_problem(
        &p,
        ProblemType::Dns,
        "SERVFAIL looking up CAA for",
        "www.fail.test",
    );

    // IP identifiers have no CAA.
    let id = Identifier::Ip("127.0.0.1".parse().unwrap());
    va.check_caa(&id, false, ACCT, Http01).await.unwrap();
}
