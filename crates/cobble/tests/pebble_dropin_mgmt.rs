//! The drop-in `pebble`'s management listener beside Debian's Pebble 2.4: every route Pebble
//! 2.4 has (`/roots/<i>`, `/root-keys/<i>`, `/intermediates/<i>`, `/intermediate-keys/<i>`,
//! `/cert-status-by-serial/<hex>`) and a few it has not, asked with several methods, must
//! answer with the same status, media type, `Link` and `Location` headers and body shape, and
//! the certificate status of an issued, then revoked, certificate must be the same text. The
//! expected answers are written down (as observed from Pebble 2.4) and checked against both
//! servers, so a row that stops holding for Pebble shows up too. Beside it, Pebble's key
//! policy: a P-521 CSR key and an RSA-1024 account key, taken by both. Without Debian's `pebble` installed only the drop-in is checked.

mod common;

use common::dropin::{
    Proc, pebble_account, pebble_config, symlinks, wait_listening, workspace_root,
};
use common::ports::free_port;
use instant_acme::{
    Account, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy, RevocationReason,
    RevocationRequest,
};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use x509_parser::prelude::FromDer;

/// Debian's Pebble.
const DEBIAN_PEBBLE: &str = "/usr/bin/pebble";

/// Pebble's environment knobs for both servers: two alternate roots, a chain of two
/// intermediates (only the leaf's issuer is served), validation always passing, no refused
/// nonces.
const KNOBS: &[(&str, &str)] = &[
    ("PEBBLE_ALTERNATE_ROOTS", "2"),
    ("PEBBLE_CHAIN_LENGTH", "2"),
    ("PEBBLE_VA_ALWAYS_VALID", "1"),
    ("PEBBLE_VA_NOSLEEP", "1"),
    ("PEBBLE_WFE_NONCEREJECT", "0"),
];

/// One running server: Debian's Pebble or the drop-in.
struct Side {
    name: &'static str,
    listen: u16,
    mgmt: u16,
    _proc: Proc,
}

fn start(name: &'static str, program: &Path, dir: &Path, tmp: &Path) -> Side {
    let (listen, mgmt) = (free_port(), free_port());
    let cfg = pebble_config(dir, &format!("{name}.json"), listen, mgmt, |c| {
        c["httpPort"] = free_port().into();
        c["tlsPort"] = free_port().into();
    });
    let child = Command::new(program)
        .args(["-config", cfg.to_str().unwrap()])
        .current_dir(workspace_root())
        .env("TMPDIR", tmp)
        .envs(KNOBS.iter().copied())
        .env("COBBLE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Side {
        name,
        listen,
        mgmt,
        _proc: Proc(child),
    }
}

const PEM_CHAIN: &str = "application/pem-certificate-chain; charset=utf-8";
const PEM_KEY: &str = "application/x-pem-file; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const NOT_FOUND_PAGE: &str = "404 page not found\n";
const MOVED_PAGE: &str = "<a href=\"/roots/\">Moved Permanently</a>.\n\n";

/// What a body must be.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// Exactly this many PEM certificates, nothing else.
    Certs(usize),
    /// One PKCS#1 RSA private key (`RSA PRIVATE KEY`), as Go writes it.
    RsaKey,
    Empty,
    Exactly(&'static str),
}

/// One request and the answer Pebble 2.4 gives (observed); `links` are the other chains'
/// indexes named in `Link: <https://HOST/KIND/j>;rel="alternate"`, KIND the path's first part.
struct Row {
    method: &'static str,
    path: &'static str,
    status: u16,
    media: Option<&'static str>,
    body: Body,
    links: &'static [usize],
    location: Option<&'static str>,
}

const fn row(
    method: &'static str,
    path: &'static str,
    status: u16,
    media: Option<&'static str>,
    body: Body,
    links: &'static [usize],
) -> Row {
    Row {
        method,
        path,
        status,
        media,
        body,
        links,
        location: None,
    }
}

/// The management API of Pebble 2.4, as observed with Debian's package.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    row("GET", "/roots/0", 200, Some(PEM_CHAIN), Body::Certs(1), &[1, 2]),
    row("POST", "/roots/1", 200, Some(PEM_CHAIN), Body::Certs(1), &[0, 2]),
    row("PUT", "/roots/2", 200, Some(PEM_CHAIN), Body::Certs(1), &[0, 1]),
    row("HEAD", "/roots/0", 200, Some(PEM_CHAIN), Body::Empty, &[1, 2]),
    row("GET", "/roots/3", 404, None, Body::Empty, &[]),
    row("GET", "/roots/x", 404, None, Body::Empty, &[]),
    row("GET", "/roots/", 404, None, Body::Empty, &[]),
    row("GET", "/roots/0/x", 404, None, Body::Empty, &[]),
    Row {
        location: Some("/roots/"),
        ..row("GET", "/roots", 301, Some(HTML), Body::Exactly(MOVED_PAGE), &[])
    },
    // The CA's keys need no token in Pebble.
    row("GET", "/root-keys/0", 200, Some(PEM_KEY), Body::RsaKey, &[1, 2]),
    row("GET", "/root-keys/3", 404, None, Body::Empty, &[]),
    // Only the leaf's issuer, not the whole chain of intermediates.
    row("GET", "/intermediates/0", 200, Some(PEM_CHAIN), Body::Certs(1), &[1, 2]),
    row("DELETE", "/intermediates/2", 200, Some(PEM_CHAIN), Body::Certs(1), &[0, 1]),
    row("GET", "/intermediate-keys/1", 200, Some(PEM_KEY), Body::RsaKey, &[0, 2]),
    row("GET", "/intermediate-keys/3", 404, None, Body::Empty, &[]),
    row("GET", "/cert-status-by-serial/", 400, None, Body::Empty, &[]),
    row("GET", "/cert-status-by-serial/0x1f", 400, None, Body::Empty, &[]),
    row("GET", "/cert-status-by-serial/zz", 400, None, Body::Empty, &[]),
    row("GET", "/cert-status-by-serial/1f", 404, None, Body::Empty, &[]),
    row("GET", "/nope", 404, Some(TEXT), Body::Exactly(NOT_FOUND_PAGE), &[]),
    row("GET", "/", 404, Some(TEXT), Body::Exactly(NOT_FOUND_PAGE), &[]),
    row("GET", "/dir", 404, Some(TEXT), Body::Exactly(NOT_FOUND_PAGE), &[]),
];

async fn check_rows(side: &Side, http: &reqwest::Client) {
    let mgmt = side.mgmt;
    for r in ROWS {
        let what = format!("{}: {} {}", side.name, r.method, r.path);
        let method = reqwest::Method::from_bytes(r.method.as_bytes()).unwrap();
        let resp = http
            .request(method, format!("https://localhost:{mgmt}{}", r.path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), r.status, "{what}");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(header("content-type").as_deref(), r.media, "{what}");
        assert_eq!(header("location").as_deref(), r.location, "{what}");
        let kind = r.path.split('/').nth(1).unwrap();
        let want: Vec<String> = r
            .links
            .iter()
            .map(|j| format!("<https://localhost:{mgmt}/{kind}/{j}>;rel=\"alternate\""))
            .collect();
        let links: Vec<&str> = resp
            .headers()
            .get_all("link")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(links, want, "{what}");
        let text = resp.text().await.unwrap();
        match r.body {
            Body::Certs(n) => {
                let blocks = x509_parser::pem::Pem::iter_from_buffer(text.as_bytes())
                    .map(|b| b.unwrap().label)
                    .collect::<Vec<_>>();
                assert_eq!(blocks, vec!["CERTIFICATE"; n], "{what}");
            }
            Body::RsaKey => {
                assert!(
                    text.starts_with("-----BEGIN RSA PRIVATE KEY-----\n")
                        && text.ends_with("-----END RSA PRIVATE KEY-----\n"),
                    "{what}: {text}"
                );
            }
            Body::Empty => assert_eq!(text, "", "{what}"),
            Body::Exactly(t) => assert_eq!(text, t, "{what}"),
        }
    }
    // `/intermediates/0` is the leaf's issuer: signed by an intermediate, not by root 0.
    let get = |path: String| {
        let http = http.clone();
        async move {
            let t = http.get(path).send().await.unwrap().text().await.unwrap();
            let (_, pem) = x509_parser::pem::parse_x509_pem(t.as_bytes()).unwrap();
            pem.contents
        }
    };
    let root = get(format!("https://localhost:{mgmt}/roots/0")).await;
    let issuer = get(format!("https://localhost:{mgmt}/intermediates/0")).await;
    let root = x509_parser::parse_x509_certificate(&root).unwrap().1;
    let issuer = x509_parser::parse_x509_certificate(&issuer).unwrap().1;
    assert_eq!(root.subject(), root.issuer(), "{}: a root", side.name);
    assert_ne!(
        issuer.issuer(),
        root.subject(),
        "{}: with PEBBLE_CHAIN_LENGTH=2 the leaf's issuer is signed by another intermediate",
        side.name
    );
}

fn retry() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(100))
        .timeout(Duration::from_secs(30))
}

/// An account on `side`, and an order for `name` made ready (validation always passes).
async fn ready_order(side: &Side, name: &str) -> (Account, instant_acme::Order) {
    let account = pebble_account(side.listen).await;
    let ids = [Identifier::Dns(name.into())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    let mut authzs = order.authorizations();
    while let Some(a) = authzs.next().await {
        let mut a = a.unwrap();
        a.challenge(ChallengeType::Http01)
            .unwrap()
            .set_ready()
            .await
            .unwrap();
    }
    assert_eq!(
        order.poll_ready(&retry()).await.unwrap(),
        OrderStatus::Ready
    );
    (account, order)
}

/// `/cert-status-by-serial/<serial>`: status, media type and body.
async fn cert_status(side: &Side, http: &reqwest::Client, serial: &str) -> (u16, String, String) {
    let r = http
        .get(format!(
            "https://localhost:{}/cert-status-by-serial/{serial}",
            side.mgmt
        ))
        .send()
        .await
        .unwrap();
    let media = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status().as_u16(), media, r.text().await.unwrap())
}

/// Issues a certificate, reads its status in Pebble's form (by the serial Go prints, in
/// upper case and with leading zeros too), revokes it and reads the status again.
async fn check_cert_status(side: &Side, http: &reqwest::Client) {
    let (account, mut order) = ready_order(side, "status.example.com").await;
    order.finalize().await.unwrap();
    let chain = order.poll_certificate(&retry()).await.unwrap();
    let end = "-----END CERTIFICATE-----\n";
    let leaf_pem = &chain[..chain.find(end).unwrap() + end.len()];
    let (_, pem) = x509_parser::pem::parse_x509_pem(leaf_pem.as_bytes()).unwrap();
    let leaf = x509_parser::parse_x509_certificate(&pem.contents)
        .unwrap()
        .1;
    let hex: String = leaf
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let serial = hex.trim_start_matches('0').to_owned();
    let head = format!(
        "{{\n   \"Status\": \"Valid\",\n   \"Serial\": \"{serial}\",\n   \"Certificate\": {}",
        serde_json::to_string(leaf_pem).unwrap()
    );
    for asked in [
        serial.clone(),
        serial.to_ascii_uppercase(),
        format!("00{serial}"),
    ] {
        let (status, media, body) = cert_status(side, http, &asked).await;
        assert_eq!(status, 200, "{}: {asked}", side.name);
        assert_eq!(media, "application/json; charset=utf-8", "{}", side.name);
        assert_eq!(body, format!("{head}\n}}"), "{}: {asked}", side.name);
    }

    account
        .revoke(&RevocationRequest {
            certificate: &rustls::pki_types::CertificateDer::from(pem.contents.clone()),
            reason: Some(RevocationReason::KeyCompromise),
        })
        .await
        .unwrap();
    let (status, _, body) = cert_status(side, http, &serial).await;
    assert_eq!(status, 200, "{}", side.name);
    let head = head.replace("\"Valid\"", "\"Revoked\"");
    let rest = body
        .strip_prefix(&format!("{head},\n   \"Reason\": 1,\n   \"RevokedAt\": \""))
        .unwrap_or_else(|| panic!("{}: {body}", side.name));
    // Go's time.String() in UTC: `2006-01-02 15:04:05.999999999 +0000 UTC`.
    let at = rest.strip_suffix("\"\n}").unwrap();
    let parts: Vec<&str> = at.split(' ').collect();
    assert_eq!(parts.len(), 4, "{}: {at}", side.name);
    assert_eq!(&parts[2..], ["+0000", "UTC"], "{}: {at}", side.name);
    assert_eq!(parts[0].len(), 10, "{}: {at}", side.name);
    assert!(
        parts[1].len() == 8 || parts[1].as_bytes()[8] == b'.',
        "{}: {at}",
        side.name
    );
}

/// A CSR for `name` with a P-521 key, made by openssl.
fn p521_csr(dir: &Path, name: &str) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["req", "-new", "-nodes", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:P-521", "-keyout", "p521.key"])
        .args(["-subj", &format!("/CN={name}"), "-outform", "DER"])
        .args(["-addext", &format!("subjectAltName=DNS:{name}")])
        .args(["-out", "p521.csr"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::read(dir.join("p521.csr")).unwrap()
}

/// Pebble certifies a P-521 CSR key, and so does the drop-in (ring has no P-521: the `p521`
/// crate checks the CSR and the certificate is relabelled), the leaf carrying the CSR's key.
async fn check_p521(side: &Side, http: &reqwest::Client, dir: &Path) {
    let (_, mut order) = ready_order(side, "p521.example.com").await;
    let csr = p521_csr(dir, "p521.example.com");
    order.finalize_csr(&csr).await.unwrap();
    let chain = order.poll_certificate(&retry()).await.unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain.as_bytes()).unwrap();
    let leaf = x509_parser::parse_x509_certificate(&pem.contents)
        .unwrap()
        .1;
    let (_, req) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&csr).unwrap();
    assert_eq!(
        leaf.public_key().raw,
        req.certification_request_info.subject_pki.raw,
        "{}: the leaf carries the CSR's P-521 key",
        side.name
    );
    // The chain verifies up to root 0 (the issuer signed the relabelled TBSCertificate).
    let root = http
        .get(format!("https://localhost:{}/roots/0", side.mgmt))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let end = "-----END CERTIFICATE-----\n";
    let cut = chain.find(end).unwrap() + end.len();
    let files = [
        (format!("p521-root-{}.pem", side.mgmt), root.as_str()),
        (format!("p521-leaf-{}.pem", side.mgmt), &chain[..cut]),
        (format!("p521-chain-{}.pem", side.mgmt), &chain[cut..]),
    ];
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let out = openssl(
        dir,
        &[
            "verify",
            "-CAfile",
            &files[0].0,
            "-untrusted",
            &files[2].0,
            &files[1].0,
        ],
    );
    assert!(
        String::from_utf8_lossy(&out).contains("OK"),
        "{}",
        side.name
    );
}

/// Runs openssl in `dir`; its stdout.
fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
    out.stdout
}

/// Pebble takes an RSA-1024 account key (`cobble serve` wants 2048 bits): a newAccount JWS
/// signed by openssl (ring cannot sign with a 1024-bit key) gets 201 from both.
async fn check_rsa1024_account(side: &Side, http: &reqwest::Client, dir: &Path) {
    use cobble_core::b64;
    let key = format!("acct1024-{}.pem", side.listen);
    openssl(dir, &["genrsa", "-out", &key, "1024"]);
    let modulus =
        String::from_utf8(openssl(dir, &["rsa", "-in", &key, "-noout", "-modulus"])).unwrap();
    let hex = modulus.trim().trim_start_matches("Modulus=");
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let base = format!("https://localhost:{}", side.listen);
    let dir_doc: serde_json::Value = http
        .get(format!("{base}/dir"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_nonce = dir_doc["newNonce"].as_str().unwrap();
    let new_account = dir_doc["newAccount"].as_str().unwrap();
    let nonce = http.head(new_nonce).send().await.unwrap().headers()["replay-nonce"]
        .to_str()
        .unwrap()
        .to_owned();
    let protected = serde_json::json!({
        "alg": "RS256",
        "jwk": {"kty": "RSA", "n": b64::encode(&n), "e": "AQAB"},
        "nonce": nonce,
        "url": new_account,
    });
    let payload = serde_json::json!({"termsOfServiceAgreed": true});
    let input = format!(
        "{}.{}",
        common::b64json(&protected),
        common::b64json(&payload)
    );
    let input_file = format!("jws-input-{}", side.listen);
    std::fs::write(dir.join(&input_file), &input).unwrap();
    let sig = openssl(dir, &["dgst", "-sha256", "-sign", &key, &input_file]);
    let (protected, payload) = input.split_once('.').unwrap();
    let body = serde_json::json!({
        "protected": protected,
        "payload": payload,
        "signature": b64::encode(sig),
    });
    let r = http
        .post(new_account)
        .header("content-type", "application/jose+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(status, 201, "{}: {text}", side.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_api_answers_as_pebble_2_4() {
    common::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (pebble, _) = symlinks(dir.path());
    let mut sides = vec![start("drop-in", &pebble, dir.path(), tmp.path())];
    if Path::new(DEBIAN_PEBBLE).exists() {
        let debian = Path::new(DEBIAN_PEBBLE);
        sides.push(start("Debian's pebble", debian, dir.path(), tmp.path()));
    } else {
        eprintln!("{DEBIAN_PEBBLE} is missing: only the drop-in is checked");
    }
    let http = common::dropin::pebble_tls_client();
    for side in &sides {
        wait_listening(SocketAddr::from(([127, 0, 0, 1], side.listen))).await;
        wait_listening(SocketAddr::from(([127, 0, 0, 1], side.mgmt))).await;
        check_rows(side, &http).await;
        check_cert_status(side, &http).await;
        check_p521(side, &http, dir.path()).await;
        check_rsa1024_account(side, &http, dir.path()).await;
    }
}
