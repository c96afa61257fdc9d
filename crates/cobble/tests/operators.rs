//! The operator half (issue 11): External Account Binding, external accounts with domain
//! lists, profile kinds, credits and organizations, operator approval, Certigna's result
//! codes, cascading revocation, the admin API and `cobble admin`, with certbot and lego
//! where a person would use them. Every test runs on SQLite and PostgreSQL.

mod common;

use cobble_core::b64;
use cobble_core::jwk::Curve;
use cobble_core::sign::Signer;
use common::{
    Engine, Reply, TestServer, ValidationEnv, admin_api as api, admin_url, cobble_admin, eab,
    eab_with, jwk_of, register_eab,
};
use serde_json::{Value, json};

both_engines!(
    certigna_flow_with_certbot_and_cobble_admin,
    lego_binds_with_eab_and_a_key_binds_once,
    eab_bad_paths,
    every_result_code_is_raised_by_its_situation,
    documents_gate_orders,
    internal_result_codes,
    admin_api_needs_the_token_and_matches_its_openapi,
    conformance_eab_checks_pass,
    instant_acme_binds_with_eab,
    reusable_keys_admin_revocation_and_filters,
    finalize_is_refused_once_approval_is_withdrawn,
    cobble_admin_finds_the_listener_from_the_data_dir,
);

mod credits {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exact_across_two_instances_on_postgres() {
        super::credits_exact_across_two_instances(super::common::Engine::Postgres).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exact_on_sqlite() {
        super::credits_exact_across_two_instances(super::common::Engine::Sqlite).await
    }
}

/// Creates an external account through the admin API; returns (kid, hmac key).
async fn new_ea(s: &TestServer, body: Value) -> (String, String) {
    let r = api(s, "POST", "/admin/external-accounts", Some(body)).await;
    assert_eq!(r.status, 201, "{r:?}");
    (
        r.body["kid"].as_str().unwrap().to_owned(),
        r.body["hmac_key"].as_str().unwrap().to_owned(),
    )
}

async fn new_order(s: &TestServer, k: &Signer, kid: &str, names: &[&str]) -> Reply {
    let ids: Vec<Value> = names
        .iter()
        .map(|n| json!({"type": "dns", "value": n}))
        .collect();
    s.post_kid(
        k,
        kid,
        &s.url("/acme/new-order"),
        Some(&json!({"identifiers": ids})),
    )
    .await
}

#[track_caller]
fn assert_code(r: &Reply, kind: &str, status: u16, code: &str) {
    r.assert_problem(kind, status, code);
    assert_eq!(r.body["code"], code, "{r:?}");
    assert!(
        r.body["detail"].as_str().unwrap().starts_with(code),
        "the detail starts with the code: {r:?}"
    );
}

fn account_id(kid: &str) -> String {
    kid.rsplit('/').next().unwrap().to_owned()
}

fn ec() -> Signer {
    Signer::generate_ec(Curve::P256).unwrap()
}

/// Runs a client program that is expected to fail; returns its output.
async fn run_failing(mut cmd: tokio::process::Command, what: &str) -> String {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        cmd.kill_on_drop(true).output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{what} finishes within 2 minutes"))
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "{what} was expected to fail:\n{text}"
    );
    text
}

/// The certbot to run: scripts/test.sh installs a current one from PyPI
/// (`COBBLE_TEST_CERTBOT`); Debian's 2.1 loses a server's problem text on its error path.
fn certbot_program() -> String {
    std::env::var("COBBLE_TEST_CERTBOT").unwrap_or_else(|_| "certbot".into())
}

/// What certbot told the user about a refusal: its output, or with Debian's 2.1 (whose error
/// path prints only "AttributeError: can't set attribute") the same message from its log.
fn certbot_said(out: &str, work: &std::path::Path) -> String {
    if std::env::var("COBBLE_TEST_CERTBOT").is_err() && out.contains("AttributeError") {
        return std::fs::read_to_string(work.join("logs/letsencrypt.log")).unwrap_or_default();
    }
    out.to_owned()
}

fn certbot_cmd(s: &TestServer, work: &std::path::Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(certbot_program());
    cmd.args(args)
        .args(["--server", &s.directory_url, "-n", "--config-dir"])
        .arg(work.join("conf"))
        .arg("--work-dir")
        .arg(work.join("work"))
        .arg("--logs-dir")
        .arg(work.join("logs"))
        .env("REQUESTS_CA_BUNDLE", s.trust_root());
    cmd
}

fn client_available(program: &str) -> bool {
    if std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok()
    {
        return true;
    }
    assert!(
        std::env::var("COBBLE_TEST_NO_CLIENTS").is_ok(),
        "{program} is not installed: run scripts/test.sh"
    );
    false
}

/// openssl's view of `leaf` in OCSP, and whether its serial is on the CRL.
async fn ocsp_and_crl(
    s: &TestServer,
    leaf: &std::path::Path,
    chain: &std::path::Path,
) -> (String, bool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(leaf, dir.path().join("leaf.pem")).unwrap();
    std::fs::copy(chain, dir.path().join("issuer.pem")).unwrap();
    std::fs::write(
        dir.path().join("root.pem"),
        common::admin_get(s, "/roots/0").await,
    )
    .unwrap();
    let ocsp = common::ocsp_query(s, dir.path()).await;
    let (_, serial) = common::openssl(
        &["x509", "-in", "leaf.pem", "-noout", "-serial"],
        dir.path(),
    );
    let serial = serial.trim().trim_start_matches("serial=").to_owned();
    let crl = s
        .http
        .get(s.url("/crl"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(dir.path().join("crl.der"), &crl).unwrap();
    let (_, text) = common::openssl(
        &["crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text"],
        dir.path(),
    );
    (ocsp, text.contains(&serial))
}

/// Certigna's flow with certbot, as an operator and a customer would run it: the operator
/// creates the external account with `cobble admin`, the customer registers with EAB and is
/// told PENDING_EXTERNAL_ACCOUNT, the operator approves, the customer issues, a name
/// outside the list is refused with DOMAIN_NOT_FOUND in what certbot prints, the credit is
/// spent, and revoking the account revokes its certificate in OCSP and the CRL.
async fn certigna_flow_with_certbot_and_cobble_admin(e: Engine) {
    if !client_available(&certbot_program()) {
        return;
    }
    let port = common::ports::free_port();
    let env = ValidationEnv::start(e, |c| {
        c.http01_port = port;
        c.eab_required = true;
        c.operator_approval = true;
    })
    .await;
    let s = &env.server;
    let created = cobble_admin(
        s,
        &[
            "eab",
            "create",
            "--org",
            "Acme Corp",
            "--domain",
            "example.com",
            "--domain",
            "*.example.com",
            "--credits",
            "10",
        ],
    )
    .await;
    let kid = created["kid"].as_str().unwrap().to_owned();
    let hmac = created["hmac_key"].as_str().unwrap().to_owned();
    assert!(
        created["certbot"].as_str().unwrap().contains(&kid),
        "{created}"
    );
    let work = tempfile::tempdir().unwrap();
    let p = port.to_string();
    // `=`: a base64url key may begin with "-", which argparse would take for an option.
    let hmac_arg = format!("--eab-hmac-key={hmac}");
    let issue = |names: &[&str]| {
        let mut args = vec![
            "certonly",
            "--standalone",
            "--http-01-port",
            &p,
            "--http-01-address",
            "127.0.0.1",
            "--agree-tos",
            "-m",
            "ops@example.com",
            "--eab-kid",
            &kid,
            &hmac_arg,
            "--cert-name",
            "flow",
        ];
        for n in names {
            args.push("-d");
            args.push(n);
        }
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let a = issue(&["www.example.com"]);
    let args: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = run_failing(
        certbot_cmd(s, work.path(), &args),
        "certbot before approval",
    )
    .await;
    let said = certbot_said(&out, work.path());
    assert!(said.contains("PENDING_EXTERNAL_ACCOUNT"), "{out}");
    assert!(
        said.contains("/help/account/"),
        "the instance page is named: {out}"
    );

    let pending = cobble_admin(s, &["accounts", "list", "--status", "pending"]).await;
    let items = pending["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{pending}");
    assert_eq!(items[0]["external_account"], kid.as_str());
    let id = items[0]["id"].as_str().unwrap().to_owned();
    let approved = cobble_admin(s, &["accounts", "approve", &id]).await;
    assert_eq!(approved["approval"], "approved");

    let out =
        common::run_client(certbot_cmd(s, work.path(), &args), "certbot after approval").await;
    assert!(out.contains("Successfully received certificate"), "{out}");
    let ea = cobble_admin(s, &["external-accounts", "show", &kid]).await;
    assert_eq!(ea["credits"], 9, "one credit per certificate: {ea}");

    let a = issue(&["www.example.org"]);
    let args: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = run_failing(
        certbot_cmd(s, work.path(), &args),
        "certbot outside the list",
    )
    .await;
    assert!(
        certbot_said(&out, work.path()).contains(
            "DOMAIN_NOT_FOUND: www.example.org is not in the domain list of external account"
        ),
        "{out}"
    );

    let live = work.path().join("conf/live/flow");
    let (ocsp, on_crl) = ocsp_and_crl(s, &live.join("cert.pem"), &live.join("chain.pem")).await;
    assert!(ocsp.contains(": good") && !on_crl, "{ocsp}");
    let revoked = cobble_admin(s, &["accounts", "revoke", &id]).await;
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["certificates_revoked"], 1);
    let (ocsp, on_crl) = ocsp_and_crl(s, &live.join("cert.pem"), &live.join("chain.pem")).await;
    assert!(ocsp.contains(": revoked"), "{ocsp}");
    assert!(on_crl, "the revoked certificate is on the CRL at once");
    let audit = cobble_admin(s, &["audit"]).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    for a in [
        "external-account.create",
        "account.approve",
        "account.revoke",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert!(
        !audit.to_string().contains(&hmac),
        "the audit log never holds the HMAC key"
    );
    env.stop().await;
}

/// lego registers with `--eab`, issues, and an external account's revocation revokes the
/// certificate; a second account key cannot reuse the single-use EAB key.
async fn lego_binds_with_eab_and_a_key_binds_once(e: Engine) {
    if !client_available("lego") {
        return;
    }
    let port = common::ports::free_port();
    let env = ValidationEnv::start(e, |c| {
        c.http01_port = port;
        c.eab_required = true;
        c.operator_approval = true;
    })
    .await;
    let s = &env.server;
    let (kid, hmac) = new_ea(
        s,
        json!({"organization": "Lego Org", "domains": ["*.example.com"]}),
    )
    .await;
    let lego_for = |work: &std::path::Path, email: &str, domain: &str, extra: &[&str]| {
        let mut cmd = tokio::process::Command::new("timeout");
        cmd.args(["60", "lego", "--server", &s.directory_url, "--path"])
            .arg(work)
            .args([
                "--accept-tos",
                "--email",
                email,
                "--eab",
                "--kid",
                &kid,
                &format!("--hmac={hmac}"),
            ])
            .args(["--domains", domain, "--http", "--http.port"])
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .env("LEGO_CA_CERTIFICATES", s.trust_root());
        cmd
    };
    let lego = |work: &std::path::Path, email: &str, extra: &[&str]| {
        lego_for(work, email, "lego.example.com", extra)
    };
    // The Certigna flow: registered, refused until the operator approves, then issued; a
    // name outside the list is refused with DOMAIN_NOT_FOUND in what lego prints.
    let work = tempfile::tempdir().unwrap();
    let out = run_failing(
        lego(work.path(), "one@example.com", &["run"]),
        "lego before approval",
    )
    .await;
    assert!(out.contains("PENDING_EXTERNAL_ACCOUNT"), "{out}");
    let pending = api(s, "GET", "/admin/accounts?status=pending", None).await;
    let id = pending.body["items"][0]["id"].as_str().unwrap().to_owned();
    let r = api(s, "POST", &format!("/admin/accounts/{id}/approve"), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    common::run_client(lego(work.path(), "one@example.com", &["run"]), "lego run").await;
    let out = run_failing(
        lego_for(work.path(), "one@example.com", "lego.example.org", &["run"]),
        "lego outside the list",
    )
    .await;
    assert!(
        out.contains("DOMAIN_NOT_FOUND: lego.example.org is not in the domain list"),
        "{out}"
    );
    let certs = work.path().join("certificates");
    let (leaf, issuer) = (
        certs.join("lego.example.com.crt"),
        certs.join("lego.example.com.issuer.crt"),
    );
    let other = tempfile::tempdir().unwrap();
    let out = run_failing(
        lego(other.path(), "two@example.com", &["run"]),
        "lego with a used key",
    )
    .await;
    assert!(out.contains("already bound"), "{out}");

    let r = api(
        s,
        "PATCH",
        &format!("/admin/external-accounts/{kid}"),
        Some(json!({"status": "revoked"})),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["certificates_revoked"], 1, "{r:?}");
    let (ocsp, on_crl) = ocsp_and_crl(s, &leaf, &issuer).await;
    assert!(ocsp.contains(": revoked") && on_crl, "{ocsp}");
    env.stop().await;
}

async fn eab_bad_paths(e: Engine) {
    let s = TestServer::start_with(
        e,
        |c| {
            c.eab_required = true;
            c.va_always_valid = true;
        },
        false,
    )
    .await;
    let dir = s
        .http
        .get(&s.directory_url)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(dir["meta"]["externalAccountRequired"], true);
    let (kid, hmac) = new_ea(&s, json!({})).await;
    let url = s.url("/acme/new-acct");
    let k = ec();
    let tos = |b: Value| json!({"termsOfServiceAgreed": true, "externalAccountBinding": b});

    let r = s
        .new_account(&k, json!({"termsOfServiceAgreed": true}))
        .await;
    r.assert_problem(
        "externalAccountRequired",
        401,
        "requires External Account Binding",
    );
    let r = s
        .new_account(
            &k,
            tos(eab(
                "6136f1b5-39c8-4417-b8a7-c4114b092be6",
                &hmac,
                &url,
                &jwk_of(&k),
                "HS256",
            )),
        )
        .await;
    assert_code(&r, "unauthorized", 403, "EXTERNAL_ACCOUNT_NOT_FOUND");
    let wrong_key = b64::encode([7u8; 32]);
    let r = s
        .new_account(&k, tos(eab(&kid, &wrong_key, &url, &jwk_of(&k), "HS256")))
        .await;
    r.assert_problem("unauthorized", 403, "MAC does not verify");
    let r = s
        .new_account(
            &k,
            tos(eab(
                &kid,
                &hmac,
                &s.url("/acme/new-order"),
                &jwk_of(&k),
                "HS256",
            )),
        )
        .await;
    r.assert_problem("malformed", 400, "is not the newAccount URL");
    let r = s
        .new_account(&k, tos(eab(&kid, &hmac, &url, &jwk_of(&ec()), "HS256")))
        .await;
    r.assert_problem(
        "unauthorized",
        403,
        "not the key this request is signed with",
    );
    let r = s
        .new_account(
            &k,
            tos(eab_with(
                json!({"alg": "HS256", "kid": kid, "url": url, "nonce": "x"}),
                &hmac,
                &jwk_of(&k),
            )),
        )
        .await;
    r.assert_problem("malformed", 400, "must not carry a nonce");
    let r = s
        .new_account(&k, tos(eab(&kid, &hmac, &url, &jwk_of(&k), "RS256")))
        .await;
    r.assert_problem("badSignatureAlgorithm", 400, "HS256");
    let r = s
        .new_account(&k, tos(json!({"protected": "e30", "payload": "e30"})))
        .await;
    r.assert_problem("malformed", 400, "flattened JWS");

    // The right binding; the same key again returns the account; another key is refused.
    let r = register_eab(&s, &k, &kid, &hmac).await;
    assert_eq!(r.status, 201, "{r:?}");
    let again = register_eab(&s, &k, &kid, &hmac).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.location, r.location);
    let r = register_eab(&s, &ec(), &kid, &hmac).await;
    r.assert_problem("unauthorized", 403, "already bound to another ACME account");
    let shown = api(&s, "GET", &format!("/admin/external-accounts/{kid}"), None).await;
    assert_eq!(shown.body["bindings"], 1, "{shown:?}");
    assert!(
        shown.body.get("hmac_key").is_none(),
        "the key is shown only at creation"
    );

    // A revoked external account cannot bind.
    let (kid2, hmac2) = new_ea(&s, json!({"status": "revoked"})).await;
    let r = register_eab(&s, &ec(), &kid2, &hmac2).await;
    assert_code(&r, "unauthorized", 403, "REVOKED_EXTERNAL_ACCOUNT");
    s.stop().await;
}

/// Each of Certigna's codes that a request can provoke, provoked once: type, status, code.
async fn every_result_code_is_raised_by_its_situation(e: Engine) {
    let s = TestServer::start_with(
        e,
        |c| {
            c.va_always_valid = true;
            c.account_lifetime_days = 30;
        },
        true,
    )
    .await;
    let clock = s.clock.clone().unwrap();
    // Organization A with an account whose list has an exact name, a subtree and a name
    // kept but not authorized; organization B owns two.test.
    let (kid, hmac) = new_ea(
        &s,
        json!({"organization": "Org A", "domains": ["one.test", "*.sub.one.test", {"name": "held.one.test", "authorized": false}], "credits": 5}),
    )
    .await;
    new_ea(
        &s,
        json!({"organization": "Org B", "domains": ["*.two.test"]}),
    )
    .await;
    let k = ec();
    let acct = register_eab(&s, &k, &kid, &hmac).await.location.unwrap();
    let ok = new_order(&s, &k, &acct, &["one.test", "a.sub.one.test"]).await;
    assert_eq!(ok.status, 201, "{ok:?}");

    let r = new_order(&s, &k, &acct, &["www.one.test", "x.sub.one.test"]).await;
    assert_code(&r, "rejectedIdentifier", 400, "DOMAIN_NOT_FOUND");
    assert_eq!(r.body["subproblems"].as_array().unwrap().len(), 1, "{r:?}");
    assert_eq!(
        r.body["subproblems"][0]["identifier"]["value"],
        "www.one.test"
    );
    let r = new_order(&s, &k, &acct, &["held.one.test"]).await;
    assert_code(&r, "rejectedIdentifier", 400, "UNAUTHORIZED_DOMAIN");
    let r = new_order(&s, &k, &acct, &["a.sub.one.test", "b.two.test"]).await;
    assert_code(&r, "rejectedIdentifier", 400, "NOT_SAME_ORGANIZATION");
    let r = new_order(&s, &k, &acct, &["co.uk"]).await;
    assert_code(&r, "rejectedIdentifier", 400, "INVALID_DOMAIN");

    let patch = |body: Value| {
        let s = &s;
        let kid = kid.clone();
        async move {
            let r = api(
                s,
                "PATCH",
                &format!("/admin/external-accounts/{kid}"),
                Some(body),
            )
            .await;
            assert_eq!(r.status, 200, "{r:?}");
        }
    };
    patch(json!({"profile_kind": "wildcard"})).await;
    let r = new_order(&s, &k, &acct, &["a.sub.one.test"]).await;
    assert_code(
        &r,
        "rejectedIdentifier",
        400,
        "INVALID_DOMAIN_FOR_WILDCARD_PROFILE",
    );
    patch(json!({"profile_kind": "non-wildcard"})).await;
    let r = new_order(&s, &k, &acct, &["*.sub.one.test"]).await;
    assert_code(
        &r,
        "rejectedIdentifier",
        400,
        "INVALID_PROFILE_FOR_WILDCARD",
    );
    patch(json!({"profile_kind": "any", "credits": 0})).await;
    let r = new_order(&s, &k, &acct, &["one.test"]).await;
    assert_code(&r, "userActionRequired", 403, "OUT_OF_CREDIT");
    patch(json!({"credits": null})).await;

    for (status, code, kind) in [
        ("pending", "PENDING_EXTERNAL_ACCOUNT", "userActionRequired"),
        ("suspended", "SUSPENDED_EXTERNAL_ACCOUNT", "unauthorized"),
        ("expired", "EXPIRED_EXTERNAL_ACCOUNT", "unauthorized"),
        (
            "deactivated",
            "DEACTIVATED_EXTERNAL_ACCOUNT",
            "unauthorized",
        ),
        ("revoked", "REVOKED_EXTERNAL_ACCOUNT", "unauthorized"),
    ] {
        patch(json!({"status": status})).await;
        let r = new_order(&s, &k, &acct, &["one.test"]).await;
        assert_code(&r, kind, 403, code);
    }
    patch(json!({"status": "valid"})).await;
    let org = api(&s, "GET", "/admin/organizations/Org%20A", None).await;
    assert_eq!(org.status, 200, "{org:?}");
    let org_id = org.body["id"].as_str().unwrap().to_owned();
    api(
        &s,
        "PATCH",
        &format!("/admin/organizations/{org_id}"),
        Some(json!({"status": "suspended"})),
    )
    .await;
    let r = new_order(&s, &k, &acct, &["one.test"]).await;
    assert_code(&r, "userActionRequired", 403, "ORGANIZATION_IS_NOT_VALID");
    api(
        &s,
        "PATCH",
        &format!("/admin/organizations/{org_id}"),
        Some(json!({"status": "valid"})),
    )
    .await;

    // The ACME account: suspended, pending (with the instance page), expired, revoked.
    let id = account_id(&acct);
    assert_eq!(
        api(&s, "POST", &format!("/admin/accounts/{id}/suspend"), None)
            .await
            .status,
        200
    );
    let r = new_order(&s, &k, &acct, &["one.test"]).await;
    assert_code(&r, "unauthorized", 403, "SUSPENDED_ACCOUNT");
    assert_eq!(
        api(
            &s,
            "POST",
            &format!("/admin/accounts/{id}/reactivate"),
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(new_order(&s, &k, &acct, &["one.test"]).await.status, 201);

    let k2 = ec();
    let (kid2, hmac2) = new_ea(&s, json!({})).await;
    let acct2 = register_eab(&s, &k2, &kid2, &hmac2).await.location.unwrap();
    api(
        &s,
        "POST",
        &format!("/admin/accounts/{}/suspend", account_id(&acct2)),
        None,
    )
    .await;
    // Deactivating by its holder is final: DEACTIVATED_ACCOUNT, 401 (RFC 8555 §7.3.6).
    let r = s
        .post_kid(&k2, &acct2, &acct2, Some(&json!({"status": "deactivated"})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = new_order(&s, &k2, &acct2, &["one.test"]).await;
    assert_code(&r, "unauthorized", 401, "DEACTIVATED_ACCOUNT");

    // EXPIRED_EXTERNAL_ACCOUNT by its end date passing, not by the operator's hand.
    let (kid3, hmac3) = new_ea(
        &s,
        json!({"domains": ["three.test"], "expires": cobble_core::clock::rfc3339(cobble_core::clock::Clock::now_ms(&clock) + 86_400_000)}),
    )
    .await;
    let k3 = ec();
    let acct3 = register_eab(&s, &k3, &kid3, &hmac3).await.location.unwrap();
    assert_eq!(
        new_order(&s, &k3, &acct3, &["three.test"]).await.status,
        201
    );
    clock.advance(2 * 86_400_000);
    let r = new_order(&s, &k3, &acct3, &["three.test"]).await;
    assert_code(&r, "unauthorized", 403, "EXPIRED_EXTERNAL_ACCOUNT");
    let shown = api(&s, "GET", &format!("/admin/external-accounts/{kid3}"), None).await;
    assert_eq!(shown.body["status"], "expired", "{shown:?}");

    clock.advance(29 * 86_400_000);
    let r = new_order(&s, &k, &acct, &["one.test"]).await;
    assert_code(&r, "unauthorized", 403, "EXPIRED_ACCOUNT");
    let r = api(
        &s,
        "POST",
        &format!("/admin/accounts/{id}/revoke"),
        Some(json!({"reason": "privilegeWithdrawn"})),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = new_order(&s, &k, &acct, &["one.test"]).await;
    assert_code(&r, "unauthorized", 401, "REVOKED_ACCOUNT");
    s.stop().await;
}

/// Operator approval without EAB, the `instance` page, and the document codes.
async fn documents_gate_orders(e: Engine) {
    let s = TestServer::start_with(
        e,
        |c| {
            c.va_always_valid = true;
            c.require_documents = true;
            c.operator_approval = true;
        },
        false,
    )
    .await;
    let k = ec();
    let plain = s.account(&k).await;
    let r = new_order(&s, &k, &plain, &["docs.test"]).await;
    assert_code(&r, "userActionRequired", 403, "PENDING_EXTERNAL_ACCOUNT");
    let page = r.body["instance"].as_str().unwrap().to_owned();
    let html = s.http.get(&page).send().await.unwrap();
    assert_eq!(html.headers()["content-type"], "text/html; charset=utf-8");
    let html = html.text().await.unwrap();
    assert!(
        html.contains("PENDING_EXTERNAL_ACCOUNT") && html.contains("operator"),
        "{html}"
    );
    api(
        &s,
        "POST",
        &format!("/admin/accounts/{}/approve", account_id(&plain)),
        None,
    )
    .await;
    // Approved, but no organization: its documents cannot be on record.
    let r = new_order(&s, &k, &plain, &["docs.test"]).await;
    assert_code(
        &r,
        "userActionRequired",
        403,
        "NO_VALID_ORGANIZATION_DOCUMENT_FOUND",
    );

    let (kid, hmac) = new_ea(
        &s,
        json!({"organization": "Doc Org", "domains": ["*.docs.test"]}),
    )
    .await;
    let k2 = ec();
    let acct = register_eab(&s, &k2, &kid, &hmac).await.location.unwrap();
    api(
        &s,
        "POST",
        &format!("/admin/accounts/{}/approve", account_id(&acct)),
        None,
    )
    .await;
    let r = new_order(&s, &k2, &acct, &["a.docs.test"]).await;
    assert_code(&r, "userActionRequired", 403, "NO_DOCUMENT_FORM_FOUND");
    assert!(r.body["instance"].is_string(), "{r:?}");
    let add = |kind: &str, until: &str| {
        api(
            &s,
            "POST",
            "/admin/organizations/Doc%20Org/documents",
            Some(
                json!({"kind": kind, "valid_until": until, "file_name": "form.pdf", "content_base64": "JVBERi0xLjQK"}),
            ),
        )
    };
    assert_eq!(add("registration-form", "2999-12-31").await.status, 201);
    let r = new_order(&s, &k2, &acct, &["a.docs.test"]).await;
    assert_code(
        &r,
        "userActionRequired",
        403,
        "NO_VALID_ORGANIZATION_DOCUMENT_FOUND",
    );
    // An expired proof is no proof.
    assert_eq!(add("organization-proof", "2001-01-01").await.status, 201);
    let r = new_order(&s, &k2, &acct, &["a.docs.test"]).await;
    assert_code(
        &r,
        "userActionRequired",
        403,
        "NO_VALID_ORGANIZATION_DOCUMENT_FOUND",
    );
    assert_eq!(add("organization-proof", "2999-12-31").await.status, 201);
    let r = new_order(&s, &k2, &acct, &["a.docs.test"]).await;
    assert_code(&r, "userActionRequired", 403, "ORGANIZATION_IS_NOT_VALID");
    let org = add("manager-mandate", "2999-12-31").await;
    assert_eq!(org.body["issuing"], true, "{org:?}");
    let stored = std::fs::read_dir(s.dir.path().join("documents"))
        .unwrap()
        .count();
    assert_eq!(stored, 4, "uploaded files are kept in the data directory");
    assert_eq!(
        new_order(&s, &k2, &acct, &["a.docs.test"]).await.status,
        201
    );
    s.stop().await;
}

/// The internal codes, each from the failure it names: an unreadable order, an unreadable
/// certificate request, a CA failure, issuance given up after its attempts, an unreadable
/// account row, and a challenge of an authorization the client deactivated.
async fn internal_result_codes(e: Engine) {
    let s = TestServer::start_with(
        e,
        |c| {
            c.va_always_valid = true;
            c.validation_poll_ms = 50;
        },
        false,
    )
    .await;
    let k = ec();
    let acct = s.account(&k).await;
    let store = s.running.as_ref().unwrap().store.clone();
    // Ready orders, moved to `processing` with a crafted issuance job each.
    let mut orders = Vec::new();
    for (i, request) in [
        r#"{"spki_der":"AA","spki_sha256":"00","must_staple":false,"profile":"classic"}"#,
        "not json",
        r#"{"spki_der":"AA","spki_sha256":"00","must_staple":false,"profile":"no-such-profile"}"#,
        r#"{"spki_der":"AA","spki_sha256":"00","must_staple":false,"profile":"classic"}"#,
    ]
    .iter()
    .enumerate()
    {
        let name = format!("internal{i}.test");
        let r = new_order(&s, &k, &acct, &[&name]).await;
        let url = r.location.clone().unwrap();
        for a in r.body["authorizations"].as_array().unwrap() {
            let authz = s.post_kid(&k, &acct, a.as_str().unwrap(), None).await.body;
            let ch = authz["challenges"][0]["url"].as_str().unwrap().to_owned();
            s.post_kid(&k, &acct, &ch, Some(&json!({}))).await;
        }
        common::poll_until(&s, &k, &acct, &url, |o| o["status"] == "ready").await;
        orders.push((account_id(&url), request.to_string())); // (order id, job request)
    }
    let attempts = [0, 0, 0, 9];
    exec(
        &s,
        &orders
            .iter()
            .zip(attempts)
            .enumerate()
            .flat_map(|(i, ((id, req), n))| {
                let mut v = Vec::new();
                if i == 0 {
                    v.push(format!("UPDATE orders SET identifiers = 'garbage' WHERE id = '{id}'"));
                }
                v.extend([
                    format!("UPDATE orders SET status = 'processing' WHERE id = '{id}'"),
                    format!(
                        "INSERT INTO issuance_jobs (order_id, request, run_after_ms, attempts, created_ms) VALUES ('{id}', '{}', 0, {n}, 0)",
                        req.replace('\'', "''")
                    ),
                ]);
                v
            })
            .collect::<Vec<_>>(),
    )
    .await;
    // (code, HTTP status) as problem.rs's code table has them.
    let wanted = [
        ("ACME_ORDER_NOT_READ", 500),
        ("ACME_REQUEST_NOT_FOUND", 500),
        ("ACME_CA_ERROR", 500),
        ("ACME_ORDER_FINALIZE_ERROR", 500),
    ];
    for ((id, _), (code, status)) in orders.iter().zip(wanted) {
        let mut error = None;
        for _ in 0..200 {
            let o = store.order(id).await;
            let err = match o {
                Ok(Some(o)) => o.error,
                // The corrupt order cannot be read back as a whole: read its error column.
                _ => read_error(&s, id).await,
            };
            if err.is_some() {
                error = err;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let p: Value =
            serde_json::from_str(&error.unwrap_or_else(|| panic!("order {id} failed with {code}")))
                .unwrap();
        assert_eq!(p["code"], code, "{p}");
        assert_eq!(
            p["type"], "urn:ietf:params:acme:error:serverInternal",
            "{p}"
        );
        assert_eq!(p["status"], status, "{p}");
        assert!(
            p["detail"].as_str().unwrap().starts_with(code),
            "the detail starts with the code: {p}"
        );
    }

    // ACME_DEACTIVATED: a challenge of an authorization the client deactivated.
    let r = new_order(&s, &k, &acct, &["deact.test"]).await;
    let authz_url = r.body["authorizations"][0].as_str().unwrap().to_owned();
    let authz = s.post_kid(&k, &acct, &authz_url, None).await.body;
    let ch = authz["challenges"][0]["url"].as_str().unwrap().to_owned();
    let d = s
        .post_kid(
            &k,
            &acct,
            &authz_url,
            Some(&json!({"status": "deactivated"})),
        )
        .await;
    assert_eq!(d.status, 200, "{d:?}");
    let r = s.post_kid(&k, &acct, &ch, Some(&json!({}))).await;
    assert_code(&r, "unauthorized", 403, "ACME_DEACTIVATED");

    // ACME_OTHER_ERROR: an account row the server cannot read.
    let k3 = ec();
    let acct3 = s.account(&k3).await;
    exec(
        &s,
        &[format!(
            "UPDATE accounts SET status = 'bogus' WHERE id = '{}'",
            account_id(&acct3)
        )],
    )
    .await;
    let r = new_order(&s, &k3, &acct3, &["other.test"]).await;
    assert_code(&r, "serverInternal", 500, "ACME_OTHER_ERROR");
    s.stop().await;
}

/// Runs raw SQL on the test's database (to make the failures the codes name).
async fn exec(s: &TestServer, stmts: &[String]) {
    if s.database_url.starts_with("postgres") {
        let p = sqlx::PgPool::connect(&s.database_url).await.unwrap();
        for q in stmts {
            sqlx::query(sqlx::AssertSqlSafe(q.clone()))
                .execute(&p)
                .await
                .unwrap();
        }
        p.close().await;
    } else {
        let p = sqlx::SqlitePool::connect(&s.database_url).await.unwrap();
        for q in stmts {
            sqlx::query(sqlx::AssertSqlSafe(q.clone()))
                .execute(&p)
                .await
                .unwrap();
        }
        p.close().await;
    }
}

async fn read_error(s: &TestServer, id: &str) -> Option<String> {
    let q = sqlx::AssertSqlSafe(format!("SELECT error FROM orders WHERE id = '{id}'"));
    if s.database_url.starts_with("postgres") {
        let p = sqlx::PgPool::connect(&s.database_url).await.unwrap();
        let v: Option<String> = sqlx::query_scalar(q).fetch_one(&p).await.unwrap();
        p.close().await;
        v
    } else {
        let p = sqlx::SqlitePool::connect(&s.database_url).await.unwrap();
        let v: Option<String> = sqlx::query_scalar(q).fetch_one(&p).await.unwrap();
        p.close().await;
        v
    }
}

/// Credits are exact: with a balance of 3 and 8 ready orders finalized at once through two
/// `cobble serve` processes on one database (this test's and a child process), exactly 3
/// certificates are issued and the balance ends at 0.
async fn credits_exact_across_two_instances(e: Engine) {
    let a = TestServer::start_with(e, |c| c.va_always_valid = true, false).await;
    let (mut child, b) = common::spawn_instance(&a, &["--no-rate-limits"]).await;
    let (kid, hmac) = new_ea(&a, json!({"credits": 3})).await;
    let k = ec();
    let acct = register_eab(&a, &k, &kid, &hmac).await.location.unwrap();
    let mut finalizes = Vec::new();
    for i in 0..8 {
        let name = format!("credit{i}.test");
        let r = new_order(&a, &k, &acct, &[&name]).await;
        assert_eq!(r.status, 201, "{r:?}");
        for au in r.body["authorizations"].as_array().unwrap() {
            let authz = a.post_kid(&k, &acct, au.as_str().unwrap(), None).await.body;
            let ch = authz["challenges"][0]["url"].as_str().unwrap().to_owned();
            a.post_kid(&k, &acct, &ch, Some(&json!({}))).await;
        }
        common::poll_until(&a, &k, &acct, r.location.as_deref().unwrap(), |o| {
            o["status"] == "ready"
        })
        .await;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        finalizes.push((
            r.body["finalize"].as_str().unwrap().to_owned(),
            common::rcgen_csr(&[&name], &key),
            i,
        ));
    }
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let k = std::sync::Arc::new(k);
    let mut tasks = Vec::new();
    for (url, csr, i) in finalizes {
        let (s, k, acct) = (
            if i % 2 == 0 { a.clone() } else { b.clone() },
            k.clone(),
            acct.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // The other instance's URLs name the same resources under its own base.
            let path = url.split_once("/acme/").unwrap().1.to_owned();
            let url = s.url(&format!("/acme/{path}"));
            let kid = acct.replace(&a_base(&acct), &s.base);
            let body = k.sign_with_kid(
                &kid,
                &url,
                &s.nonce().await,
                Some(&json!({"csr": b64::encode(&csr)})),
            );
            s.post(&url, &body).await
        }));
    }
    let mut refused = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.status != 200 {
            assert_code(&r, "userActionRequired", 403, "OUT_OF_CREDIT");
            refused += 1;
        } else if r.body["status"] == "invalid" {
            assert_eq!(r.body["error"]["code"], "OUT_OF_CREDIT", "{r:?}");
            refused += 1;
        } else {
            assert_eq!(r.body["status"], "valid", "{r:?}");
        }
    }
    let store = a.running.as_ref().unwrap().store.clone();
    let ea = store.external_account(&kid).await.unwrap().unwrap();
    let issued = store
        .certificates_page(
            &cobble_store::ListQuery {
                account: Some(account_id(&acct)),
                limit: 50,
                ..Default::default()
            },
            0,
        )
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(issued, 3, "exactly the balance");
    assert_eq!(
        refused, 5,
        "every other finalize was refused with OUT_OF_CREDIT"
    );
    assert_eq!(ea.credits, Some(0));
    child.kill().await.unwrap();
    match std::sync::Arc::try_unwrap(a) {
        Ok(a) => a.stop().await,
        Err(_) => panic!("tasks are done"),
    }
}

/// The base URL an account URL is under.
fn a_base(acct: &str) -> String {
    acct.split("/acme/").next().unwrap().to_owned()
}

/// Every documented admin route refuses a missing or wrong token with 401, and answers
/// with the token (a handler's answer, not the fallback's).
async fn admin_api_needs_the_token_and_matches_its_openapi(e: Engine) {
    let s = TestServer::start(e).await;
    let doc = api(&s, "GET", "/admin/openapi.json", None).await;
    assert_eq!(doc.status, 200, "{doc:?}");
    assert_eq!(doc.body["openapi"], "3.1.0");
    let paths = doc.body["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{paths:?}");
    for (path, ops) in paths {
        let concrete = path
            .replace("{kid}", "6136f1b5-39c8-4417-b8a7-c4114b092be6")
            .replace("{id}", "no-such-id")
            .replace("{serial}", "abcdef");
        for method in ops.as_object().unwrap().keys() {
            let m: reqwest::Method = method.to_uppercase().parse().unwrap();
            let url = format!("{}{concrete}", admin_url(&s));
            for token in [None, Some("wrong")] {
                let mut req = s.http.request(m.clone(), &url);
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let r = Reply::from(req.send().await.unwrap()).await;
                assert_eq!(r.status, 401, "{method} {path} with {token:?}: {r:?}");
                assert_eq!(r.body["type"], "urn:ietf:params:acme:error:unauthorized");
            }
            let r = api(&s, &method.to_uppercase(), &concrete, Some(json!({}))).await;
            assert_ne!(r.status, 405, "{method} {path}: {r:?}");
            assert!(
                !r.text.contains("this resource does not exist"),
                "{method} {path} reaches its handler: {r:?}"
            );
            if r.status >= 400 {
                assert_eq!(
                    r.headers["content-type"], "application/problem+json",
                    "{method} {path}: {r:?}"
                );
            }
        }
    }
    // Bad inputs get problems.
    let r = api(
        &s,
        "POST",
        "/admin/external-accounts",
        Some(json!({"domains": ["bad name"]})),
    )
    .await;
    r.assert_problem("malformed", 400, "is not a domain name");
    let r = api(
        &s,
        "POST",
        "/admin/external-accounts",
        Some(json!({"credits": -1})),
    )
    .await;
    r.assert_problem("malformed", 400, "negative");
    let r = api(&s, "GET", "/admin/certificates?status=nope", None).await;
    r.assert_problem("malformed", 400, "not one of valid, revoked, expired");
    let r = api(&s, "GET", "/admin/accounts?after=zzz", None).await;
    r.assert_problem("malformed", 400, "cursor");
    let r = api(
        &s,
        "POST",
        "/admin/organizations",
        Some(json!({"name": "Twice"})),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = api(
        &s,
        "POST",
        "/admin/organizations",
        Some(json!({"name": "Twice"})),
    )
    .await;
    r.assert_problem("malformed", 409, "exists");
    // Paging: three accounts, two per page.
    for _ in 0..3 {
        s.account(&ec()).await;
    }
    let p1 = api(&s, "GET", "/admin/accounts?limit=2", None).await;
    assert_eq!(p1.body["items"].as_array().unwrap().len(), 2);
    let next = p1.body["next"].as_str().unwrap();
    let p2 = api(
        &s,
        "GET",
        &format!("/admin/accounts?limit=2&after={next}"),
        None,
    )
    .await;
    assert_eq!(p2.body["items"].as_array().unwrap().len(), 1, "{p2:?}");
    assert!(p2.body["next"].is_null());
    s.stop().await;
}

/// The conformance suite's EAB checks, with a fresh single-use key per account made by
/// `cobble admin eab create` (the suite's `--eab-cmd`).
async fn conformance_eab_checks_pass(e: Engine) {
    let env = ValidationEnv::start(e, |c| c.eab_required = true).await;
    let s = &env.server;
    let cmd = format!(
        "{} admin --data-dir {} --admin-url {} eab create | awk '/^kid:/{{k=$2}} /^hmac_key:/{{h=$2}} END{{print k, h}}'",
        env!("CARGO_BIN_EXE_cobble"),
        s.dir.path().display(),
        admin_url(s)
    );
    let mgmt = env.chall.management_addr().expect("management listener");
    let opts = cobble_conformance::Options {
        ca_bundle: Some(s.trust_root()),
        challtestsrv: Some(format!("http://{mgmt}")),
        eab_cmd: Some(cmd),
        only: vec!["eab".into()],
        ..cobble_conformance::Options::new(s.directory_url.clone())
    };
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        cobble_conformance::run(opts, |_, _, _| {}),
    )
    .await
    .expect("the EAB checks finish")
    .expect("the suite runs");
    env.stop().await;
    let ran: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.id.starts_with("eab."))
        .collect();
    assert!(ran.len() >= 5, "{} EAB checks ran", ran.len());
    for r in ran {
        assert!(
            matches!(r.outcome, cobble_conformance::Outcome::Pass),
            "{}",
            cobble_conformance::report::line(r)
        );
    }
}

/// A client library: instant-acme registers with its `ExternalAccountKey`, orders a listed
/// name, and is refused a name outside the list with DOMAIN_NOT_FOUND.
async fn instant_acme_binds_with_eab(e: Engine) {
    let s = TestServer::start_with(e, |c| c.eab_required = true, false).await;
    let (kid, hmac) = new_ea(&s, json!({"domains": ["*.lib.test"]})).await;
    let eak = instant_acme::ExternalAccountKey::new(kid.clone(), &b64::decode(&hmac).unwrap());
    let (account, _) = instant_acme::Account::builder_with_root(s.trust_root())
        .unwrap()
        .create(
            &instant_acme::NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            s.directory_url.clone(),
            Some(&eak),
        )
        .await
        .unwrap();
    let ok = account
        .new_order(&instant_acme::NewOrder::new(&[
            instant_acme::Identifier::Dns("www.lib.test".into()),
        ]))
        .await;
    assert!(ok.is_ok(), "{:?}", ok.err());
    let refused = account
        .new_order(&instant_acme::NewOrder::new(&[
            instant_acme::Identifier::Dns("www.other.test".into()),
        ]))
        .await;
    match refused {
        Err(instant_acme::Error::Api(p)) => {
            assert_eq!(
                p.r#type.as_deref(),
                Some("urn:ietf:params:acme:error:rejectedIdentifier")
            );
            assert!(
                p.detail
                    .as_deref()
                    .unwrap_or_default()
                    .starts_with("DOMAIN_NOT_FOUND"),
                "{p:?}"
            );
        }
        other => panic!("expected DOMAIN_NOT_FOUND, got {:?}", other.map(|_| ())),
    }
    let shown = api(&s, "GET", &format!("/admin/external-accounts/{kid}"), None).await;
    assert_eq!(shown.body["bindings"], 1);
    s.stop().await;
}

/// Splits a PEM chain into its certificates (PEM text each).
fn pem_blocks(chain: &str) -> Vec<String> {
    chain
        .split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("-----BEGIN CERTIFICATE-----"))
        .map(|b| format!("{}\n", b.trim_start()))
        .collect()
}

/// `--eab-reusable`: one key binds several ACME accounts, with every MAC algorithm. Then
/// the operator's side: certificates listed by account, name and status; one revoked by
/// serial with a named reason (seen in OCSP and the CRL, refused a second time, audited
/// with its before and after); the external account deactivated, which revokes the rest
/// with cessationOfOperation.
async fn reusable_keys_admin_revocation_and_filters(e: Engine) {
    let s = TestServer::start_with(
        e,
        |c| {
            c.eab_required = true;
            c.eab_reusable = true;
            c.va_always_valid = true;
        },
        false,
    )
    .await;
    let (kid, hmac) = new_ea(&s, json!({})).await;
    let url = s.url("/acme/new-acct");
    let mut accounts = Vec::new();
    for alg in ["HS256", "HS384", "HS512"] {
        let k = ec();
        let binding = eab(&kid, &hmac, &url, &jwk_of(&k), alg);
        let r = s
            .new_account(
                &k,
                json!({"termsOfServiceAgreed": true, "externalAccountBinding": binding}),
            )
            .await;
        assert_eq!(r.status, 201, "{alg}: {r:?}");
        accounts.push((k, r.location.clone().unwrap()));
    }
    let ea = api(&s, "GET", &format!("/admin/external-accounts/{kid}"), None).await;
    assert_eq!(ea.body["bindings"], 3, "{ea:?}");

    // Three certificates: two for the first account, one for the second.
    let dir = tempfile::tempdir().unwrap();
    for (i, name) in [
        (0, "a.example.com"),
        (0, "b.example.com"),
        (1, "c.example.com"),
    ] {
        let (k, acct) = &accounts[i];
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let r =
            common::finalize_by_hand(&s, k, acct, &[name], &common::rcgen_csr(&[name], &key)).await;
        assert!(r.status == 200, "{r:?}");
        let order_url = r.location.clone().unwrap();
        let order = common::poll_until(&s, k, acct, &order_url, |o| o["status"] == "valid").await;
        let chain = s
            .post_kid(k, acct, order["certificate"].as_str().unwrap(), None)
            .await
            .text;
        let blocks = pem_blocks(&chain);
        std::fs::write(dir.path().join(format!("{name}.pem")), &blocks[0]).unwrap();
        std::fs::write(dir.path().join("issuer.pem"), &blocks[1]).unwrap();
    }
    let list = |q: &str| {
        let q = q.to_owned();
        let s = &s;
        async move {
            let r = api(s, "GET", &format!("/admin/certificates?{q}"), None).await;
            assert_eq!(r.status, 200, "{q}: {r:?}");
            r.body["items"].as_array().unwrap().clone()
        }
    };
    let first = account_id(&accounts[0].1);
    let second = account_id(&accounts[1].1);
    assert_eq!(list(&format!("account={first}")).await.len(), 2);
    let c = list("name=c.example.com").await;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["account"], second.as_str());
    assert_eq!(list(&format!("external_account={kid}")).await.len(), 3);
    assert!(list("status=revoked").await.is_empty());
    let a = list("name=a.example.com").await;
    let serial = a[0]["serial"].as_str().unwrap().to_owned();
    assert_eq!(list(&format!("serial={serial}")).await.len(), 1);

    // Revoked by serial, reason by name.
    let path = format!("/admin/certificates/{serial}/revoke");
    let r = api(&s, "POST", &path, Some(json!({"reason": "superseded"}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "revoked");
    assert_eq!(r.body["revocation_reason"], 4);
    let (ocsp, on_crl) = ocsp_and_crl(
        &s,
        &dir.path().join("a.example.com.pem"),
        &dir.path().join("issuer.pem"),
    )
    .await;
    assert!(
        ocsp.contains(": revoked") && ocsp.contains("superseded"),
        "{ocsp}"
    );
    assert!(on_crl);
    let again = api(&s, "POST", &path, Some(json!({"reason": 1}))).await;
    assert_eq!(
        again.body["type"], "urn:ietf:params:acme:error:alreadyRevoked",
        "{again:?}"
    );
    let bad = api(&s, "POST", &path, Some(json!({"reason": "sometimes"}))).await;
    assert_eq!(bad.status, 400, "{bad:?}");
    let revoked = list("status=revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["serial"], serial.as_str());
    let audit = api(&s, "GET", "/admin/audit", None).await;
    let entry = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "certificate.revoke")
        .unwrap_or_else(|| panic!("no audit row: {audit:?}"))
        .clone();
    assert_eq!(entry["actor"], "admin-token");
    assert_eq!(entry["target"], serial.as_str());
    assert_eq!(entry["before"]["status"], "valid");
    assert_eq!(entry["after"]["status"], "revoked");
    assert_eq!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "certificate.revoke")
            .count(),
        1,
        "the refused revocations wrote no audit row"
    );

    // Deactivating the external account revokes the rest, as cessationOfOperation.
    let r = api(
        &s,
        "PATCH",
        &format!("/admin/external-accounts/{kid}"),
        Some(json!({"status": "deactivated"})),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["certificates_revoked"], 2, "{r:?}");
    let revoked = list("status=revoked").await;
    assert_eq!(revoked.len(), 3);
    for c in &revoked {
        let want = if c["serial"] == serial.as_str() { 4 } else { 5 };
        assert_eq!(c["revocation_reason"], want, "{c}");
    }
    let (ocsp, on_crl) = ocsp_and_crl(
        &s,
        &dir.path().join("c.example.com.pem"),
        &dir.path().join("issuer.pem"),
    )
    .await;
    assert!(
        ocsp.contains(": revoked") && ocsp.contains("cessationOfOperation"),
        "{ocsp}"
    );
    assert!(on_crl);
    // Its accounts can no longer order.
    let (k, acct) = &accounts[2];
    let r = new_order(&s, k, acct, &["d.example.com"]).await;
    assert_code(&r, "unauthorized", 403, "DEACTIVATED_EXTERNAL_ACCOUNT");
    s.stop().await;
}

/// Finalize asks what newOrder asks (RFC 8555 §7.4): an order made ready while the account
/// was approved is refused at finalize once the operator suspends the account or puts its
/// external account back to pending, with the result code and the `instance` page, and is
/// finalized once the operator relents.
async fn finalize_is_refused_once_approval_is_withdrawn(e: Engine) {
    let s = TestServer::start_with(
        e,
        |c| {
            c.va_always_valid = true;
            c.validation_poll_ms = 50;
            c.operator_approval = true;
        },
        false,
    )
    .await;
    let (kid, hmac) = new_ea(
        &s,
        json!({"organization": "Fin Org", "domains": ["*.fin.test"]}),
    )
    .await;
    let k = ec();
    let reg = register_eab(&s, &k, &kid, &hmac).await;
    // Waiting for the operator is Cobble's policy, not an RFC 8555 account state.
    assert_eq!(reg.body["status"], "valid", "{reg:?}");
    let acct = reg.location.unwrap();
    let id = account_id(&acct);
    let r = new_order(&s, &k, &acct, &["a.fin.test"]).await;
    assert_code(&r, "userActionRequired", 403, "PENDING_EXTERNAL_ACCOUNT");
    let approved = api(&s, "POST", &format!("/admin/accounts/{id}/approve"), None).await;
    assert_eq!(approved.status, 200, "{approved:?}");

    let r = new_order(&s, &k, &acct, &["a.fin.test"]).await;
    assert_eq!(r.status, 201, "{r:?}");
    let order_url = r.location.clone().unwrap();
    let finalize_url = r.body["finalize"].as_str().unwrap().to_owned();
    for a in r.body["authorizations"].as_array().unwrap() {
        let authz = s.post_kid(&k, &acct, a.as_str().unwrap(), None).await.body;
        let ch = authz["challenges"][0]["url"].as_str().unwrap().to_owned();
        s.post_kid(&k, &acct, &ch, Some(&json!({}))).await;
    }
    common::poll_until(&s, &k, &acct, &order_url, |o| o["status"] == "ready").await;
    let csr = common::rcgen_csr(&["a.fin.test"], &rcgen::KeyPair::generate().unwrap());
    let body = json!({"csr": b64::encode(&csr)});
    let finalize = || s.post_kid(&k, &acct, &finalize_url, Some(&body));
    let help = format!("/help/account/{id}");
    let refused = |r: &Reply, kind: &str, code: &str| {
        assert_code(r, kind, 403, code);
        let page = r.body["instance"]
            .as_str()
            .unwrap_or_else(|| panic!("an instance page: {r:?}"));
        assert!(page.ends_with(&help), "{page}");
        page.to_owned()
    };

    // The operator suspends the account.
    let r = api(&s, "POST", &format!("/admin/accounts/{id}/suspend"), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    refused(&finalize().await, "unauthorized", "SUSPENDED_ACCOUNT");
    let o = s.post_kid(&k, &acct, &order_url, None).await;
    assert_eq!(
        o.body["status"], "ready",
        "a refused finalize leaves the order: {o:?}"
    );
    let r = api(
        &s,
        "POST",
        &format!("/admin/accounts/{id}/reactivate"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");

    // The operator puts the external account back to pending approval.
    let pending = |status: &str| {
        let s = &s;
        let (kid, body) = (kid.clone(), json!({"status": status}));
        async move {
            let r = api(
                s,
                "PATCH",
                &format!("/admin/external-accounts/{kid}"),
                Some(body),
            )
            .await;
            assert_eq!(r.status, 200, "{r:?}");
        }
    };
    pending("pending").await;
    let page = refused(
        &finalize().await,
        "userActionRequired",
        "PENDING_EXTERNAL_ACCOUNT",
    );
    let html = s
        .http
        .get(&page)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("PENDING_EXTERNAL_ACCOUNT"), "{html}");

    pending("valid").await;
    let r = finalize().await;
    assert_eq!(r.status, 200, "{r:?}");
    common::poll_until(&s, &k, &acct, &order_url, |o| o["status"] == "valid").await;
    s.stop().await;
}

/// `cobble serve --data-dir D` on its own process, with `--admin-listen admin_listen`;
/// returns the child and the lines of its ready banner.
async fn serve_in(
    dir: &std::path::Path,
    database_url: &str,
    admin_listen: &str,
) -> (tokio::process::Child, Vec<String>) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cobble"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log", "warn"])
        .args([
            "--admin-listen",
            admin_listen,
            "--database-url",
            database_url,
        ])
        .arg("--data-dir")
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let banner = common::ready_banner(&mut child)
        .await
        .expect("cobble serve exited before it was ready");
    (child, banner)
}

/// `cobble serve` records the management listener it bound in `<data-dir>/admin-url`, so
/// `cobble admin --data-dir D` reaches a listener on a random port with no other flag; a
/// start with the listener off leaves no such file.
async fn cobble_admin_finds_the_listener_from_the_data_dir(e: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let db = common::database_url(e, dir.path()).await;
    let (mut child, banner) = serve_in(dir.path(), &db, "127.0.0.1:0").await;
    let served = common::banner_field(&banner, "admin")
        .unwrap_or_else(|| panic!("the banner names the admin URL: {banner:?}"));
    let port = |u: &str| u.trim().rsplit_once(':').unwrap().1.parse::<u16>().unwrap();
    let file = dir.path().join("admin-url");
    let recorded = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        recorded.trim(),
        format!("https://127.0.0.1:{}", port(&served)),
        "the bound port, on the configured address ({served})"
    );
    assert_ne!(port(&recorded), 15000);

    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_cobble"));
    cmd.args(["admin", "--json", "eab", "create", "--org", "Dir Org"])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("COBBLE_ADMIN_URL")
        .env_remove("COBBLE_ADMIN_TOKEN")
        .env_remove("COBBLE_DATA_DIR");
    let out = common::run_client(cmd, "cobble admin with only --data-dir").await;
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("JSON: {e}\n{out}"));
    assert!(v["kid"].is_string() && v["hmac_key"].is_string(), "{v}");
    child.kill().await.unwrap();

    // The listener off: no file pointing at a port nobody holds.
    let (mut child, banner) = serve_in(dir.path(), &db, "").await;
    assert!(
        !banner.iter().any(|l| l.trim().starts_with("admin:")),
        "{banner:?}"
    );
    assert!(!file.exists(), "{} is removed", file.display());
    child.kill().await.unwrap();
}
