//! The management listener: the admin token (every route that is not public PKI data),
//! private keys only with `--serve-ca-keys`, `/health` and `/ready`, and a database outage
//! answered with 503 + Retry-After until PostgreSQL is back, without a restart.

mod common;

use common::{Engine, Reply, TestServer};
use std::process::Command;
use std::time::{Duration, Instant};

both_engines!(admin_token_guards_every_private_route, health_and_ready);

fn admin_url(s: &TestServer) -> String {
    s.running.as_ref().unwrap().admin_url.clone().unwrap()
}

async fn admin(s: &TestServer, path: &str, token: Option<&str>) -> Reply {
    let mut req = s.http.get(format!("{}{path}", admin_url(s)));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    Reply::from(req.send().await.unwrap()).await
}

async fn admin_token_guards_every_private_route(e: Engine) {
    let s = TestServer::start_with(e, |c| c.serve_ca_keys = true, false).await;
    let token = std::fs::read_to_string(s.dir.path().join("admin-token")).unwrap();
    let token = token.trim();
    for path in ["/root-keys/0", "/intermediate-keys/0"] {
        let r = admin(&s, path, None).await;
        r.assert_problem("unauthorized", 401, "Authorization: Bearer");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        admin(&s, path, Some("not-the-token")).await.assert_problem(
            "unauthorized",
            401,
            "token is wrong",
        );
        let wrong_len = format!("{token}x");
        admin(&s, path, Some(&wrong_len)).await.assert_problem(
            "unauthorized",
            401,
            "token is wrong",
        );
        let ok = admin(&s, path, Some(token)).await;
        assert_eq!(ok.status, 200, "{path}: {ok:?}");
        assert!(ok.text.contains("PRIVATE KEY"), "{path}");
    }
    // Public PKI data needs no token, as Pebble serves it.
    for path in ["/roots/0", "/intermediates/0"] {
        let r = admin(&s, path, None).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert!(r.text.contains("BEGIN CERTIFICATE"), "{path}");
    }
    admin(&s, "/cert-status-by-serial/01", None)
        .await
        .assert_problem("malformed", 404, "does not exist");
    s.stop().await;

    // Without --serve-ca-keys the keys stay home, token or not.
    let s = TestServer::start(e).await;
    let token = std::fs::read_to_string(s.dir.path().join("admin-token")).unwrap();
    for path in ["/root-keys/0", "/intermediate-keys/0"] {
        admin(&s, path, None)
            .await
            .assert_problem("unauthorized", 401, "Bearer");
        admin(&s, path, Some(token.trim())).await.assert_problem(
            "unauthorized",
            403,
            "--serve-ca-keys",
        );
    }
    s.stop().await;

    // A token given in the configuration replaces the file's.
    let s = TestServer::start_with(
        e,
        |c| {
            c.serve_ca_keys = true;
            c.admin_token = Some("configured-token".into());
        },
        false,
    )
    .await;
    assert_eq!(
        admin(&s, "/root-keys/0", Some("configured-token"))
            .await
            .status,
        200
    );
    s.stop().await;
}

async fn health_and_ready(e: Engine) {
    let s = TestServer::start(e).await;
    let h = admin(&s, "/health", None).await;
    assert_eq!(h.status, 200, "{h:?}");
    assert_eq!(h.body["status"], "ok");
    let r = admin(&s, "/ready", None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "ready");
    s.stop().await;
}

/// A PostgreSQL cluster of this test's own, so it can be stopped and started again.
struct OwnCluster {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnCluster {
    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let mut cmd = as_postgres(&self.bin.join("pg_ctl"));
        cmd.arg("-D").arg(&data).args(args);
        let out = cmd.output().expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        self.pg_ctl(&[
            "-w",
            "-t",
            "60",
            "-l",
            log.to_str().unwrap(),
            "-o",
            &opts,
            "start",
        ]);
    }

    fn stop(&self) {
        self.pg_ctl(&["-m", "immediate", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// `initdb` refuses root: run the server binaries as the postgres user when we are root.
fn as_postgres(program: &std::path::Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn own_cluster() -> Option<OwnCluster> {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|d| d.ok().map(|d| d.path().join("bin")))
        .filter(|b| b.join("initdb").exists())
        .max()?;
    let dir = tempfile::tempdir().unwrap();
    let _ = Command::new("chown")
        .args(["postgres"])
        .arg(dir.path())
        .status();
    let out = as_postgres(&bin.join("initdb"))
        .arg("-D")
        .arg(dir.path().join("data"))
        .args(["--auth=trust", "-U", "postgres", "-E", "UTF8"])
        .output()
        .expect("initdb runs");
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = common::ports::free_port();
    let c = OwnCluster { bin, dir, port };
    c.start();
    Some(c)
}

/// Stopping PostgreSQL under a running instance: requests get 503 with Retry-After and
/// `/ready` says not ready; once it is back, the same instance serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_503_with_retry_after_then_recovers() {
    let pg = own_cluster().expect(
        "PostgreSQL server binaries under /usr/lib/postgresql (scripts/test.sh installs them)",
    );
    common::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::test_config(dir.path(), pg.url());
    cfg.database_acquire_timeout_ms = 1000;
    let s = TestServer::start_cfg(cfg, dir, false).await;
    let k = cobble_core::sign::Signer::generate_ec(cobble_core::jwk::Curve::P256).unwrap();
    let kid = s.account(&k).await;

    pg.stop();
    let started = Instant::now();
    let r = s.post_kid(&k, &kid, &kid, None).await;
    r.assert_problem("serverInternal", 503, "retry later");
    assert_eq!(r.headers["retry-after"], "5");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "fails fast: {:?}",
        started.elapsed()
    );
    let ready = admin(&s, "/ready", None).await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(ready.headers.contains_key("retry-after"));
    assert_eq!(admin(&s, "/health", None).await.status, 200);

    pg.start();
    // Bounded: the pool reconnects on its own.
    let mut last = None;
    for _ in 0..50 {
        let r = s.post_kid(&k, &kid, &kid, None).await;
        if r.status == 200 {
            last = None;
            break;
        }
        last = Some(r);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(last.is_none(), "no recovery: {last:?}");
    assert_eq!(admin(&s, "/ready", None).await.status, 200);
    s.stop().await;
}
