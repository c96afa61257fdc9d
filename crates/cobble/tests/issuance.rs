//! Issuance end to end (RFC 8555 §7.4-§7.6, RFC 5280, RFC 6960, RFC 9773, profiles): real
//! certificates checked with `openssl verify`, revocation seen by `openssl ocsp` and
//! `openssl crl`, keyCompromise blocking, ARI, profiles, chains. SQLite and PostgreSQL.

mod common;

use cobble_core::b64;
use cobble_core::jwk::Curve;
use cobble_core::sign::Signer;
use common::{Engine, TestServer};
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
    RevocationRequest,
};
use serde_json::{Value, json};
use std::time::Duration;

both_engines!(
    instant_acme_issues_and_openssl_verifies,
    bad_csrs_are_refused,
    revocation_paths_and_status,
    renewal_info_and_replaces,
    profiles_shape_certificates,
    chains_and_alternate_roots,
    asynchronous_finalize_polls,
    operator_ca_from_pem_files_and_ocsp_get,
    crl_is_current_on_every_instance,
);

fn retry() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(50))
        .timeout(Duration::from_secs(20))
}

async fn always_valid(
    e: Engine,
    tweak: impl FnOnce(&mut cobble_server::config::ServerConfig),
) -> TestServer {
    TestServer::start_with(
        e,
        |c| {
            c.va_always_valid = true;
            c.validation_poll_ms = 20;
            tweak(c);
        },
        false,
    )
    .await
}

/// Orders `ids`, answers every challenge (always-valid server), waits for ready.
async fn ready_order(
    account: &Account,
    ids: &[Identifier],
    profile: Option<&str>,
) -> instant_acme::Order {
    let mut new = NewOrder::new(ids);
    if let Some(p) = profile {
        new = new.profile(p);
    }
    let mut order = account.new_order(&new).await.unwrap();
    let mut authzs = order.authorizations();
    while let Some(a) = authzs.next().await {
        let mut a = a.unwrap();
        if a.status == AuthorizationStatus::Valid {
            continue;
        }
        let kind = if a.wildcard {
            ChallengeType::Dns01
        } else {
            ChallengeType::Http01
        };
        a.challenge(kind).unwrap().set_ready().await.unwrap();
    }
    assert_eq!(
        order.poll_ready(&retry()).await.unwrap(),
        OrderStatus::Ready
    );
    order
}

/// Splits a PEM chain into (leaf, rest).
fn split_chain(pem: &str) -> (String, String) {
    let end = "-----END CERTIFICATE-----";
    let i = pem.find(end).unwrap() + end.len();
    (
        pem[..i].trim().to_owned() + "\n",
        pem[i..].trim().to_owned() + "\n",
    )
}

/// `openssl verify` of a downloaded chain against the root at /roots/`root`.
async fn verify_chain(s: &TestServer, chain_pem: &str, root: usize) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (leaf, rest) = split_chain(chain_pem);
    std::fs::write(dir.path().join("leaf.pem"), &leaf).unwrap();
    std::fs::write(dir.path().join("chain.pem"), &rest).unwrap();
    std::fs::write(
        dir.path().join("root.pem"),
        common::admin_get(s, &format!("/roots/{root}")).await,
    )
    .unwrap();
    let (ok, out) = common::openssl(
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "chain.pem",
            "leaf.pem",
        ],
        dir.path(),
    );
    assert!(ok && out.contains("leaf.pem: OK"), "openssl verify: {out}");
    leaf
}

fn parse_leaf(pem: &str) -> Vec<u8> {
    cobble_ca::pem::certificates(pem).unwrap().remove(0)
}

/// An RSA CSR from `openssl req` for `names`; returns (CSR DER, key PEM).
fn openssl_rsa_csr(names: &[&str], bits: u32) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let san = names
        .iter()
        .map(|n| format!("DNS:{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let (ok, out) = common::openssl(
        &[
            "req",
            "-new",
            "-newkey",
            &format!("rsa:{bits}"),
            "-nodes",
            "-keyout",
            "k.pem",
            "-subj",
            "/",
            "-addext",
            &format!("subjectAltName={san}"),
            "-outform",
            "DER",
            "-out",
            "r.der",
        ],
        dir.path(),
    );
    assert!(ok, "{out}");
    (
        std::fs::read(dir.path().join("r.der")).unwrap(),
        std::fs::read_to_string(dir.path().join("k.pem")).unwrap(),
    )
}

async fn instant_acme_issues_and_openssl_verifies(e: Engine) {
    let s = always_valid(e, |_| {}).await;
    let account = common::acme_account(&s).await;
    // ECDSA (instant-acme makes the key and CSR), several names, a wildcard and an IP.
    let ids = [
        Identifier::Dns("a.example.com".into()),
        Identifier::Dns("b.example.com".into()),
        Identifier::Dns("*.w.example.com".into()),
        Identifier::Ip("127.0.0.1".parse().unwrap()),
    ];
    let mut order = ready_order(&account, &ids, None).await;
    let _key = order.finalize().await.unwrap();
    let st = order.refresh().await.unwrap();
    assert_eq!(st.status, OrderStatus::Valid, "{:?}", st.error);
    let chain = order.poll_certificate(&retry()).await.unwrap();
    let leaf = verify_chain(&s, &chain, 0).await;
    let der = parse_leaf(&leaf);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let san = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|g| format!("{g}"))
        .collect::<Vec<_>>();
    assert_eq!(san.len(), 4, "{san:?}");
    assert!(
        cert.subject().iter_common_name().next().is_none(),
        "no CN by default"
    );
    assert_eq!(cert.raw_serial().len(), 20);
    assert!(cert.raw_serial()[0] < 0x80, "positive serial");
    let days =
        (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400;
    assert_eq!(days, 89, "90 days minus 1 s by default");
    // RSA CSR from openssl, single name.
    let mut order = ready_order(&account, &[Identifier::Dns("rsa.example.com".into())], None).await;
    let (csr, _) = openssl_rsa_csr(&["rsa.example.com"], 2048);
    order.finalize_csr(&csr).await.unwrap();
    let chain = order.poll_certificate(&retry()).await.unwrap();
    verify_chain(&s, &chain, 0).await;
    // The order object points at the certificate; download is POST-as-GET with a Link up.
    let st = order.refresh().await.unwrap();
    assert_eq!(st.status, OrderStatus::Valid);
    assert!(
        st.certificate
            .as_ref()
            .unwrap()
            .starts_with(&s.url("/acme/cert/"))
    );
    s.stop().await;
}

/// A hand-built finalize; returns the reply.
async fn bad_csrs_are_refused(e: Engine) {
    let s = always_valid(e, |_| {}).await;
    // An account whose key we can also put in a CSR.
    let acct_key = rcgen::KeyPair::generate().unwrap();
    let k = Signer::ec_from_pkcs8(Curve::P256, &acct_key.serialize_der()).unwrap();
    let kid = s.account(&k).await;
    let other = rcgen::KeyPair::generate().unwrap();
    let cases: Vec<(&[&str], Vec<u8>, &str)> = vec![
        (
            &["m.example.com", "n.example.com"],
            common::rcgen_csr(&["m.example.com"], &other),
            "n.example.com",
        ),
        (
            &["x.example.com"],
            common::rcgen_csr(&["x.example.com", "extra.example.com"], &other),
            "extra.example.com",
        ),
        (
            &["acct.example.com"],
            common::rcgen_csr(&["acct.example.com"], &acct_key),
            "account key",
        ),
        (&["junk.example.com"], b"not a csr".to_vec(), "PKCS#10"),
    ];
    for (names, csr, frag) in cases {
        common::finalize_by_hand(&s, &k, &kid, names, &csr)
            .await
            .assert_problem("badCSR", 400, frag);
    }
    // Case differences are fine.
    let ok = common::finalize_by_hand(
        &s,
        &k,
        &kid,
        &["case.example.com"],
        &common::rcgen_csr(&["CASE.example.com"], &other),
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.body["status"], "valid");
    // finalize again: the order is no longer ready.
    s.post_kid(
        &k,
        &kid,
        &format!("{}/finalize", ok.location.unwrap()),
        Some(&json!({"csr": b64::encode(common::rcgen_csr(&["case.example.com"], &other))})),
    )
    .await
    .assert_problem("orderNotReady", 403, "valid");
    s.stop().await;
}

/// Writes the leaf-signing CA certificate (from /acme/issuer, DER) to `dir/issuer.pem`.
async fn write_issuer_pem(s: &TestServer, dir: &std::path::Path) {
    let der = s
        .http
        .get(s.url("/acme/issuer"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(dir.join("issuer.der"), &der).unwrap();
    let (ok, out) = common::openssl(
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            "issuer.der",
            "-out",
            "issuer.pem",
        ],
        dir,
    );
    assert!(ok, "{out}");
}

async fn ocsp_status(s: &TestServer, leaf_pem: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leaf.pem"), leaf_pem).unwrap();
    write_issuer_pem(s, dir.path()).await;
    common::ocsp_query(s, dir.path()).await
}

/// The CRL's text (`openssl crl -text`), its signature verified.
async fn crl_text(s: &TestServer) -> String {
    let dir = tempfile::tempdir().unwrap();
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
    write_issuer_pem(s, dir.path()).await;
    let (ok, out) = common::openssl(
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "crl.der",
            "-CAfile",
            "issuer.pem",
            "-noout",
            "-text",
        ],
        dir.path(),
    );
    assert!(ok && out.contains("verify OK"), "{out}");
    out
}

fn serial_hex(leaf_pem: &str) -> String {
    let der = parse_leaf(leaf_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    cert.raw_serial()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

async fn revocation_paths_and_status(e: Engine) {
    let s = always_valid(e, |_| {}).await;
    let account = common::acme_account(&s).await;
    // 1. The issuing account revokes (instant-acme), reason superseded.
    let mut order = ready_order(&account, &[Identifier::Dns("r1.example.com".into())], None).await;
    order.finalize().await.unwrap();
    let (leaf1, _) = split_chain(&order.poll_certificate(&retry()).await.unwrap());
    assert!(ocsp_status(&s, &leaf1).await.contains(": good"));
    let der1 = parse_leaf(&leaf1);
    let rustls_der = rustls::pki_types::CertificateDer::from(der1.clone());
    account
        .revoke(&RevocationRequest {
            certificate: &rustls_der,
            reason: Some(instant_acme::RevocationReason::Superseded),
        })
        .await
        .unwrap();
    let out = ocsp_status(&s, &leaf1).await;
    assert!(
        out.contains(": revoked") && out.contains("superseded"),
        "{out}"
    );
    let crl = crl_text(&s).await;
    assert!(crl.contains(&serial_hex(&leaf1)), "{crl}");
    let status: Value = serde_json::from_str(
        &common::admin_get(
            &s,
            &format!("/cert-status-by-serial/{}", serial_hex(&leaf1)),
        )
        .await,
    )
    .unwrap();
    assert_eq!(status["Status"], "Revoked");
    // Again -> alreadyRevoked.
    common::assert_api_problem(
        account
            .revoke(&RevocationRequest {
                certificate: &rustls_der,
                reason: None,
            })
            .await,
        "alreadyRevoked",
    );

    // 2. With the certificate's own key (jwk), reason keyCompromise: the key is then blocked.
    let key = rcgen::KeyPair::generate().unwrap();
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let kid = s.account(&k).await;
    let r = common::finalize_by_hand(
        &s,
        &k,
        &kid,
        &["r2.example.com"],
        &common::rcgen_csr(&["r2.example.com"], &key),
    )
    .await;
    let cert_url = r.body["certificate"].as_str().unwrap().to_owned();
    let chain = s.post_kid(&k, &kid, &cert_url, None).await;
    assert_eq!(
        chain.headers["content-type"],
        "application/pem-certificate-chain"
    );
    // No `rel="up"`: the chain is complete, and acmez follows it with POST-as-GET.
    assert!(
        !chain
            .headers
            .get_all("link")
            .iter()
            .any(|l| l.to_str().unwrap().contains("rel=\"up\""))
    );
    let (leaf2, _) = split_chain(&chain.text);
    let der2 = parse_leaf(&leaf2);
    let cert_signer = Signer::ec_from_pkcs8(Curve::P256, &key.serialize_der()).unwrap();
    let url = s.url("/acme/revoke-cert");
    // Bad reason first.
    let body = cert_signer.sign_with_jwk(
        &url,
        Some(&s.nonce().await),
        Some(&json!({"certificate": b64::encode(&der2), "reason": 2})),
    );
    s.post(&url, &body)
        .await
        .assert_problem("badRevocationReason", 400, "reason 2");
    // A stranger's key.
    let body = Signer::generate_ec(Curve::P256).unwrap().sign_with_jwk(
        &url,
        Some(&s.nonce().await),
        Some(&json!({"certificate": b64::encode(&der2)})),
    );
    s.post(&url, &body)
        .await
        .assert_problem("unauthorized", 403, "certificate's key");
    let body = cert_signer.sign_with_jwk(
        &url,
        Some(&s.nonce().await),
        Some(&json!({"certificate": b64::encode(&der2), "reason": 1})),
    );
    let r = s.post(&url, &body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(ocsp_status(&s, &leaf2).await.contains("keyCompromise"));
    // The compromised key cannot be certified again.
    common::finalize_by_hand(
        &s,
        &k,
        &kid,
        &["r2b.example.com"],
        &common::rcgen_csr(&["r2b.example.com"], &key),
    )
    .await
    .assert_problem("badCSR", 400, "blocked");

    // 3. Another account: refused without authorizations, allowed with them.
    let mut order = ready_order(&account, &[Identifier::Dns("r3.example.com".into())], None).await;
    order.finalize().await.unwrap();
    let (leaf3, _) = split_chain(&order.poll_certificate(&retry()).await.unwrap());
    let der3 = parse_leaf(&leaf3);
    let stranger = Signer::generate_ec(Curve::P256).unwrap();
    let skid = s.account(&stranger).await;
    s.post_kid(
        &stranger,
        &skid,
        &url,
        Some(&json!({"certificate": b64::encode(&der3)})),
    )
    .await
    .assert_problem("unauthorized", 403, "r3.example.com");
    let (o, _) = (
        s.post_kid(
            &stranger,
            &skid,
            &s.url("/acme/new-order"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "r3.example.com"}]})),
        )
        .await,
        (),
    );
    let authz_url = o.body["authorizations"][0].as_str().unwrap().to_owned();
    let ch = s.post_kid(&stranger, &skid, &authz_url, None).await.body["challenges"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    s.post_kid(&stranger, &skid, &ch, Some(&json!({}))).await;
    common::poll_until(&s, &stranger, &skid, &authz_url, |a| a["status"] == "valid").await;
    let r = s
        .post_kid(
            &stranger,
            &skid,
            &url,
            Some(&json!({"certificate": b64::encode(&der3), "reason": 5})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // Not our certificate at all.
    let foreign = rcgen::CertificateParams::new(vec!["f.example.com".to_string()])
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    s.post_kid(
        &stranger,
        &skid,
        &url,
        Some(&json!({"certificate": b64::encode(foreign.der())})),
    )
    .await
    .assert_problem("malformed", 404, "does not exist");
    s.stop().await;
}

async fn renewal_info_and_replaces(e: Engine) {
    let s = always_valid(e, |_| {}).await;
    let account = common::acme_account(&s).await;
    let mut order = ready_order(&account, &[Identifier::Dns("ari.example.com".into())], None).await;
    order.finalize().await.unwrap();
    let (leaf, _) = split_chain(&order.poll_certificate(&retry()).await.unwrap());
    let der = parse_leaf(&leaf);
    let cert_id = cobble_ca::ari::ari_cert_id(&der).unwrap();
    let r = common::Reply::from(
        s.http
            .get(s.url(&format!("/acme/renewal-info/{cert_id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.headers.contains_key("retry-after"));
    let start = r.body["suggestedWindow"]["start"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        start
            > cobble_core::clock::rfc3339(cobble_core::clock::Clock::now_ms(
                &cobble_core::clock::SystemClock
            )),
        "window ahead: {start}"
    );
    // Bad and unknown certIDs.
    let r = common::Reply::from(
        s.http
            .get(s.url("/acme/renewal-info/not-a-cert-id"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_problem("malformed", 400, "");
    let r = common::Reply::from(
        s.http
            .get(s.url("/acme/renewal-info/AAAA.AAAA"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_problem("malformed", 404, "does not exist");
    // replaces: the first replacement is accepted, the second is alreadyReplaced.
    let ids = [Identifier::Dns("ari.example.com".into())];
    let quoted = format!("\"{cert_id}\"");
    let replaced: instant_acme::CertificateIdentifier = serde_json::from_str(&quoted).unwrap();
    let first = account
        .new_order(&NewOrder::new(&ids).replaces(replaced.clone()))
        .await;
    assert!(first.is_ok(), "{:?}", first.err());
    let second = account
        .new_order(&NewOrder::new(&ids).replaces(replaced.clone()))
        .await;
    common::assert_api_problem(second, "alreadyReplaced");
    // After revocation the window is in the past.
    account
        .revoke(&RevocationRequest {
            certificate: &rustls::pki_types::CertificateDer::from(der.clone()),
            reason: None,
        })
        .await
        .unwrap();
    let r = common::Reply::from(
        s.http
            .get(s.url(&format!("/acme/renewal-info/{cert_id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let end = r.body["suggestedWindow"]["end"]
        .as_str()
        .unwrap()
        .to_owned();
    let why = r.body["explanationURL"]
        .as_str()
        .expect("revoked: an explanation")
        .to_owned();
    let page = s.http.get(&why).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("revoked"), "{page}");
    assert!(
        end < cobble_core::clock::rfc3339(cobble_core::clock::Clock::now_ms(
            &cobble_core::clock::SystemClock
        )),
        "revoked: window in the past: {end}"
    );
    s.stop().await;
}

async fn profiles_shape_certificates(e: Engine) {
    let s = always_valid(e, |_| {}).await;
    let dir = common::Reply::from(s.http.get(&s.directory_url).send().await.unwrap()).await;
    let profiles = dir.body["meta"]["profiles"].as_object().unwrap();
    assert!(
        profiles.contains_key("classic") && profiles.contains_key("shortlived"),
        "{profiles:?}"
    );
    let account = common::acme_account(&s).await;
    // Unknown profile.
    common::assert_api_problem(
        account
            .new_order(&NewOrder::new(&[Identifier::Dns("p.example.com".into())]).profile("nope"))
            .await,
        "invalidProfile",
    );
    // shortlived: 160 hours.
    let mut order = ready_order(
        &account,
        &[Identifier::Dns("short.example.com".into())],
        Some("shortlived"),
    )
    .await;
    assert_eq!(order.state().profile.as_deref(), Some("shortlived"));
    order.finalize().await.unwrap();
    let (leaf, _) = split_chain(&order.poll_certificate(&retry()).await.unwrap());
    let der = parse_leaf(&leaf);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp() + 1) / 3600,
        160
    );
    // certigna: RSA 2048/3072 only and the CN promoted.
    let mut order = ready_order(
        &account,
        &[Identifier::Dns("cn.example.com".into())],
        Some("certigna"),
    )
    .await;
    common::assert_api_problem(order.finalize().await, "badCSR");
    let mut order = ready_order(
        &account,
        &[Identifier::Dns("cn2.example.com".into())],
        Some("certigna"),
    )
    .await;
    let (csr, _) = openssl_rsa_csr(&["cn2.example.com"], 2048);
    order.finalize_csr(&csr).await.unwrap();
    let (leaf, _) = split_chain(&order.poll_certificate(&retry()).await.unwrap());
    let der = parse_leaf(&leaf);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "cn2.example.com"
    );
    s.stop().await;
}

async fn chains_and_alternate_roots(e: Engine) {
    let s = always_valid(e, |c| {
        c.ca.chain_length = 2;
        c.ca.alternate_roots = 1;
    })
    .await;
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let kid = s.account(&k).await;
    let r = common::finalize_by_hand(
        &s,
        &k,
        &kid,
        &["chain.example.com"],
        &common::rcgen_csr(&["chain.example.com"], &rcgen::KeyPair::generate().unwrap()),
    )
    .await;
    let cert_url = r.body["certificate"].as_str().unwrap().to_owned();
    let main = s.post_kid(&k, &kid, &cert_url, None).await;
    assert_eq!(
        main.text.matches("BEGIN CERTIFICATE").count(),
        3,
        "leaf + 2 intermediates"
    );
    verify_chain(&s, &main.text, 0).await;
    let alt = main
        .headers
        .get_all("link")
        .iter()
        .map(|l| l.to_str().unwrap().to_owned())
        .find(|l| l.ends_with("rel=\"alternate\""))
        .expect("alternate link");
    let alt_url = alt
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    let other = s.post_kid(&k, &kid, &alt_url, None).await;
    assert_eq!(other.status, 200, "{other:?}");
    verify_chain(&s, &other.text, 1).await;
    s.stop().await;
}

async fn asynchronous_finalize_polls(e: Engine) {
    let s = always_valid(e, |c| c.finalize_async = true).await;
    let account = common::acme_account(&s).await;
    let mut order = ready_order(
        &account,
        &[Identifier::Dns("async.example.com".into())],
        None,
    )
    .await;
    order.finalize().await.unwrap();
    let chain = order.poll_certificate(&retry()).await.unwrap();
    verify_chain(&s, &chain, 0).await;
    s.stop().await;
}

async fn operator_ca_from_pem_files_and_ocsp_get(e: Engine) {
    // An operator's own CA, made by openssl: the root signs leaves directly.
    let ca = tempfile::tempdir().unwrap();
    let (ok, out) = common::openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "root-key.pem",
            "-out",
            "root.pem",
            "-subj",
            "/CN=Operator Root",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ],
        ca.path(),
    );
    assert!(ok, "{out}");
    let files = cobble_server::config::CaFiles {
        root: ca.path().join("root.pem"),
        intermediates: None,
        issuer_key: ca.path().join("root-key.pem"),
    };
    let s = always_valid(e, |c| {
        c.ca_files = Some(files);
        c.serve_ca_keys = true;
    })
    .await;
    // The operator's own keys are never served, token or not.
    let token = std::fs::read_to_string(s.dir.path().join("admin-token")).unwrap();
    for path in ["/root-keys/0", "/intermediate-keys/0"] {
        let admin = s.running.as_ref().unwrap().admin_url.clone().unwrap();
        let r = s
            .http
            .get(format!("{admin}{path}"))
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap();
        let r = common::Reply::from(r).await;
        r.assert_problem("unauthorized", 403, "never served");
    }
    assert_eq!(
        common::admin_get(&s, "/roots/0").await.trim(),
        std::fs::read_to_string(ca.path().join("root.pem"))
            .unwrap()
            .trim()
    );
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let kid = s.account(&k).await;
    let r = common::finalize_by_hand(
        &s,
        &k,
        &kid,
        &["op.example.com"],
        &common::rcgen_csr(&["op.example.com"], &rcgen::KeyPair::generate().unwrap()),
    )
    .await;
    let chain = s
        .post_kid(&k, &kid, r.body["certificate"].as_str().unwrap(), None)
        .await;
    assert_eq!(
        chain.text.matches("BEGIN CERTIFICATE").count(),
        1,
        "the root is not sent"
    );
    std::fs::write(ca.path().join("leaf.pem"), &chain.text).unwrap();
    let (ok, out) = common::openssl(&["verify", "-CAfile", "root.pem", "leaf.pem"], ca.path());
    assert!(ok && out.contains("leaf.pem: OK"), "{out}");
    // OCSP by GET: base64 of the request DER, URL-encoded (RFC 6960 Appendix A.1).
    let (ok, out) = common::openssl(
        &[
            "ocsp",
            "-issuer",
            "root.pem",
            "-cert",
            "leaf.pem",
            "-reqout",
            "req.der",
            "-no_nonce",
        ],
        ca.path(),
    );
    assert!(ok, "{out}");
    let req = std::fs::read(ca.path().join("req.der")).unwrap();
    let std_b64 = b64::encode(&req).replace('-', "+").replace('_', "/");
    let padded = format!("{std_b64}{}", "=".repeat((4 - std_b64.len() % 4) % 4));
    let encoded = padded
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let resp = s
        .http
        .get(s.url(&format!("/ocsp/{encoded}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    std::fs::write(ca.path().join("resp.der"), resp.bytes().await.unwrap()).unwrap();
    let (_, out) = common::openssl(
        &[
            "ocsp",
            "-respin",
            "resp.der",
            "-issuer",
            "root.pem",
            "-VAfile",
            "root.pem",
            "-cert",
            "leaf.pem",
            "-no_nonce",
        ],
        ca.path(),
    );
    assert!(
        out.contains("Response verify OK") && out.contains(": good"),
        "{out}"
    );
    // Garbage in the GET path: a malformedRequest OCSP response, not an HTTP error page.
    let resp = s.http.get(s.url("/ocsp/!!!")).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/ocsp-response");
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        [0x30, 0x03, 0x0a, 0x01, 0x01]
    );
    s.stop().await;
}

/// The CRL number in `openssl crl -text` output.
fn crl_number(text: &str) -> u64 {
    let after = text
        .split("X509v3 CRL Number:")
        .nth(1)
        .expect("a CRL number");
    after.split_whitespace().next().unwrap().parse().unwrap()
}

/// One CRL truth across instances: a revocation on A is in B's CRL at once (B had cached
/// one before), with a higher CRL number.
async fn crl_is_current_on_every_instance(e: Engine) {
    let a = always_valid(e, |_| {}).await;
    let b = common::second_instance(&a).await;
    let before = crl_text(&b).await;
    let k = Signer::generate_ec(Curve::P256).unwrap();
    let kid = a.account(&k).await;
    let r = common::finalize_by_hand(
        &a,
        &k,
        &kid,
        &["crl.example.com"],
        &common::rcgen_csr(&["crl.example.com"], &rcgen::KeyPair::generate().unwrap()),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let order = common::poll_until(&a, &k, &kid, &r.location.unwrap(), |o| {
        o["status"] == "valid"
    })
    .await;
    let chain = a
        .post_kid(&k, &kid, order["certificate"].as_str().unwrap(), None)
        .await;
    let (leaf, _) = split_chain(&chain.text);
    assert!(!crl_text(&b).await.contains(&serial_hex(&leaf)));
    let revoked = a
        .post_kid(
            &k,
            &kid,
            &a.url("/acme/revoke-cert"),
            Some(&json!({"certificate": b64::encode(parse_leaf(&leaf))})),
        )
        .await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    let after = crl_text(&b).await;
    assert!(after.contains(&serial_hex(&leaf)), "{after}");
    assert!(
        crl_number(&after) > crl_number(&before),
        "{before}\n{after}"
    );
    b.stop().await;
    a.stop().await;
}
