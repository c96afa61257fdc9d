//! The Pebble drop-in: the `cobble` binary started through symlinks named `pebble` and
//! `pebble-challtestsrv`, with Pebble's single-dash flags and `testdata/pebble-config.json`
//! (Pebble's JSON config), as client test suites start Pebble. A real client (instant-acme)
//! orders a certificate over http-01 answered by the drop-in challtestsrv (through a redirect
//! to its https-01 listener, which Pebble's validator follows) for an RSA-1024 CSR key, which
//! Pebble's key policy accepts; the chain is checked with
//! `openssl verify` against the management listener's `/roots/0`. The drop-in
//! challtestsrv's https-01 and DNS over HTTPS listeners answer real requests.

mod common;

use common::dropin::{Proc, pebble_config, symlinks, wait_listening, workspace_root};
use common::ports::free_port;
use instant_acme::{
    AuthorizationStatus, ChallengeType, Error, Identifier, NewOrder, OrderStatus, RetryPolicy,
};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn retry() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(100))
        .timeout(Duration::from_secs(30))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_and_challtestsrv_drop_ins_issue_a_certificate() {
    common::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (pebble, challtestsrv) = symlinks(dir.path());
    let root = workspace_root();

    let (listen, mgmt, http01, dns, chall_mgmt, https01) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    // Pebble's config file, on free ports so tests can run side by side.
    let cfg_path = pebble_config(dir.path(), "pebble-config.json", listen, mgmt, |c| {
        c["httpPort"] = http01.into();
        c["tlsPort"] = free_port().into();
    });

    let _chall = Proc(
        Command::new(&challtestsrv)
            .args(["-management", &format!(":{chall_mgmt}")])
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .args(["-http01", &format!(":{http01}")])
            .args(["-https01", &format!("127.0.0.1:{https01}")])
            .args(["-tlsalpn01", "", "-doh", ""])
            .args(["-defaultIPv6", ""])
            .env("COBBLE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut server = Proc(
        Command::new(&pebble)
            .args(["-config", cfg_path.to_str().unwrap()])
            .args(["-dnsserver", &format!("127.0.0.1:{dns}"), "-strict"])
            .current_dir(&root)
            .env("TMPDIR", tmp.path())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("COBBLE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(SocketAddr::from(([127, 0, 0, 1], chall_mgmt))).await;
    wait_listening(SocketAddr::from(([127, 0, 0, 1], listen))).await;
    wait_listening(SocketAddr::from(([127, 0, 0, 1], mgmt))).await;
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "one throwaway data directory"
    );

    // The HTTPS identity is the config's certificate, issued by testdata/pebble/ca.pem.
    let account = common::dropin::pebble_account(listen).await;

    let ids = [Identifier::Dns("drop-in.example.com".into())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    let http = reqwest::Client::new();
    let mut authzs = order.authorizations();
    while let Some(a) = authzs.next().await {
        let mut a = a.unwrap();
        assert_eq!(a.status, AuthorizationStatus::Pending);
        let mut ch = a.challenge(ChallengeType::Http01).unwrap();
        let body = serde_json::json!({
            "token": ch.token,
            "content": ch.key_authorization().as_str(),
        });
        let r = http
            .post(format!("http://[::1]:{chall_mgmt}/add-http01"))
            .json(&body)
            .send()
            .await
            .expect("the challtestsrv management API listens on IPv6 too for :PORT");
        assert!(r.status().is_success(), "{r:?}");
        // The http-01 answer moves to the https-01 listener (self-signed certificate, a port
        // Boulder's rule would refuse): Pebble's validator follows the redirect there.
        let path = format!("/.well-known/acme-challenge/{}", ch.token);
        let target = format!("https://drop-in.example.com:{https01}{path}");
        let r = http
            .post(format!("http://127.0.0.1:{chall_mgmt}/add-redirect"))
            .json(&serde_json::json!({"path": path, "targetURL": target}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{r:?}");
        ch.set_ready().await.unwrap();
    }
    assert_eq!(
        order.poll_ready(&retry()).await.unwrap(),
        OrderStatus::Ready
    );
    let history = http
        .post(format!(
            "http://127.0.0.1:{chall_mgmt}/http-request-history"
        ))
        .json(&serde_json::json!({"host": "drop-in.example.com"}))
        .send()
        .await
        .unwrap()
        .json::<Vec<serde_json::Value>>()
        .await
        .unwrap();
    assert!(
        history
            .iter()
            .any(|e| e["HTTPS"] == true && e["ServerName"] == "drop-in.example.com"),
        "the validator fetched the answer over https: {history:?}"
    );
    // Pebble's CSR key policy: an RSA-1024 key is certified (`cobble serve` refuses it).
    let out = Command::new("openssl")
        .args([
            "req", "-new", "-nodes", "-newkey", "rsa:1024", "-keyout", "leaf.key",
        ])
        .args([
            "-subj",
            "/CN=drop-in.example.com",
            "-outform",
            "DER",
            "-out",
            "leaf.csr",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csr = std::fs::read(dir.path().join("leaf.csr")).unwrap();
    order.finalize_csr(&csr).await.unwrap();
    let chain = order.poll_certificate(&retry()).await.unwrap();

    // The issuing root from Pebble's management endpoint verifies the chain.
    let client = common::dropin::pebble_tls_client();
    let roots = client
        .get(format!("https://localhost:{mgmt}/roots/0"))
        .send()
        .await
        .unwrap();
    assert_eq!(roots.status(), 200);
    let root_pem = roots.text().await.unwrap();
    let end = "-----END CERTIFICATE-----";
    let cut = chain.find(end).unwrap() + end.len();
    let files = dir.path();
    std::fs::write(files.join("root.pem"), &root_pem).unwrap();
    std::fs::write(files.join("leaf.pem"), &chain[..cut]).unwrap();
    std::fs::write(files.join("chain.pem"), chain[cut..].trim_start()).unwrap();
    let out = Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "chain.pem",
            "leaf.pem",
        ])
        .current_dir(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let text = Command::new("openssl")
        .args(["x509", "-in", "leaf.pem", "-noout", "-text"])
        .current_dir(files)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Public-Key: (1024 bit)"), "{text}");

    // Pebble answers a deactivated account's requests with 403 unauthorized.
    account.clone().deactivate().await.unwrap();
    let Err(Error::Api(problem)) = account.new_order(&NewOrder::new(&ids)).await else {
        panic!("a deactivated account's order must get a problem")
    };
    assert_eq!(
        problem.r#type.as_deref(),
        Some("urn:ietf:params:acme:error:unauthorized")
    );
    assert_eq!(problem.status, Some(403), "{problem:?}");

    // SIGTERM: the server stops cleanly and leaves nothing on disk.
    let st = server.terminate();
    assert!(st.success(), "{st:?}");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the throwaway data directory is gone"
    );
}

/// A DNS query for `name`'s A record (RFC 1035 §4.1), id 0 as RFC 8484 §4.1 asks.
fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// The drop-in `pebble-challtestsrv -https01 ADDR -doh ADDR`: http-01 answers over HTTPS
/// with a self-signed certificate, and DNS over HTTPS (GET and POST) from the mock records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challtestsrv_drop_in_serves_https01_and_doh() {
    common::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let (_, challtestsrv) = symlinks(dir.path());
    let (mgmt, https01, doh) = (free_port(), free_port(), free_port());
    let _chall = Proc(
        Command::new(&challtestsrv)
            .args(["-management", &format!("127.0.0.1:{mgmt}")])
            .args(["-https01", &format!("127.0.0.1:{https01}")])
            .args(["-doh", &format!("127.0.0.1:{doh}")])
            .args(["-dnsserver", "", "-http01", "", "-tlsalpn01", ""])
            .env("COBBLE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for port in [mgmt, https01, doh] {
        wait_listening(SocketAddr::from(([127, 0, 0, 1], port))).await;
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("http://127.0.0.1:{mgmt}{path}"))
            .json(&body)
            .send()
    };
    let r = post(
        "/add-http01",
        serde_json::json!({"token": "t1", "content": "t1.k"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = post(
        "/add-a",
        serde_json::json!({"host": "doh.example.com", "addresses": ["10.9.8.7"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);

    let r = http
        .get(format!(
            "https://127.0.0.1:{https01}/.well-known/acme-challenge/t1"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "t1.k");

    let query = dns_query("doh.example.com");
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &query);
    let get = http
        .get(format!("https://127.0.0.1:{doh}/dns-query?dns={b64}"))
        .send();
    let post_q = http
        .post(format!("https://127.0.0.1:{doh}/dns-query"))
        .header("content-type", "application/dns-message")
        .body(query.clone())
        .send();
    for r in [get.await.unwrap(), post_q.await.unwrap()] {
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/dns-message");
        let m = r.bytes().await.unwrap();
        assert_eq!(m[3] & 0x0f, 0, "NOERROR");
        assert_eq!(&m[6..8], &[0, 1], "one answer");
        assert!(m.windows(4).any(|w| w == [10, 9, 8, 7]), "{m:?}");
    }
    // A bad DoH request is a clean 415 problem.
    let r = http
        .post(format!("https://127.0.0.1:{doh}/dns-query"))
        .body(query)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

/// A busy port is not fatal to `pebble-challtestsrv`: Debian's 2.4 logs `listen tcp ...:
/// bind: address already in use` and serves its other listeners (observed), and so does the
/// drop-in, with a warning naming the listener and the address. Both are run when Debian's
/// is installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challtestsrv_serves_on_when_a_port_is_busy() {
    common::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let (_, drop_in) = symlinks(dir.path());
    let mut programs = vec![drop_in];
    let debian = Path::new("/usr/bin/pebble-challtestsrv");
    if debian.exists() {
        programs.push(debian.to_owned());
    }
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let http = reqwest::Client::new();
    for (n, program) in programs.iter().enumerate() {
        let (mgmt, http01) = (free_port(), free_port());
        let lo = |p: u16| format!("127.0.0.1:{p}");
        let log = dir.path().join(format!("challtestsrv-{n}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut proc = Proc(
            Command::new(program)
                .args(["-management", &lo(mgmt), "-dns01", &lo(free_port())])
                .args(["-http01", &lo(http01), "-https01", &lo(busy_port)])
                .args(["-tlsalpn01", &lo(free_port())])
                .env("COBBLE_LOG", "warn")
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap(),
        );
        wait_listening(SocketAddr::from(([127, 0, 0, 1], mgmt))).await;
        let r = http
            .post(format!("http://{}/add-http01", lo(mgmt)))
            .json(&serde_json::json!({"token": "busy", "content": "busy.k"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}: {r:?}", program.display());
        let r = http
            .get(format!(
                "http://{}/.well-known/acme-challenge/busy",
                lo(http01)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", program.display());
        assert_eq!(r.text().await.unwrap(), "busy.k", "{}", program.display());
        assert!(
            proc.0.try_wait().unwrap().is_none(),
            "{} keeps running",
            program.display()
        );
        proc.terminate();
        let text = std::fs::read_to_string(&log).unwrap().to_lowercase();
        assert!(
            text.contains(&format!("127.0.0.1:{busy_port}")) && text.contains("already in use"),
            "{}: {text}",
            program.display()
        );
    }
    drop(busy);
}

/// Pebble's flags, Go style: unknown flags exit 2, `-h` prints the usage and exits 0,
/// words after the flags are refused, a missing config file is an error (exit 1).
#[test]
fn drop_in_command_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (pebble, challtestsrv) = symlinks(dir.path());
    let run = |prog: &Path, args: &[&str]| {
        let out = Command::new(prog)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let rows: &[(&Path, &[&str], i32, &str)] = &[
        (
            &pebble,
            &["-nope"],
            2,
            "flag provided but not defined: -nope",
        ),
        (&pebble, &["-h"], 0, "-dnsserver string"),
        (&pebble, &["-version"], 0, "Pebble version:"),
        (
            &pebble,
            &["-strict", "false"],
            1,
            "invalid command line arguments: false",
        ),
        (
            &pebble,
            &["-config", "missing.json"],
            1,
            "Reading JSON config file",
        ),
        (&challtestsrv, &["-help"], 0, "-doh string"),
        (
            &challtestsrv,
            &["-http01"],
            2,
            "flag needs an argument: -http01",
        ),
        (
            &challtestsrv,
            &["-doh-cert", "c.pem", "-management", ""],
            1,
            "-doh-cert and -doh-cert-key are given together",
        ),
        (
            &challtestsrv,
            &["-defaultIPv4", "::1", "-management", ""],
            1,
            "-defaultIPv4 ::1 is not an IPv4 address",
        ),
    ];
    for (prog, args, code, text) in rows {
        let (got, out) = run(prog, args);
        assert_eq!(got, Some(*code), "{} {args:?}: {out}", prog.display());
        assert!(out.contains(text), "{} {args:?}: {out}", prog.display());
    }
}
