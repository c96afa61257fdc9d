//! Helpers of the Pebble drop-in tests: `pebble` / `pebble-challtestsrv` symlinks to the
//! cobble binary, Pebble's JSON config on those ports, child processes stopped
//! when dropped, and waiting for a listener.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

/// The workspace root (where `testdata/` lives; Pebble's config names files under it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `pebble` and `pebble-challtestsrv` symlinks to the cobble binary in `dir`.
pub fn symlinks(dir: &Path) -> (PathBuf, PathBuf) {
    let cobble = env!("CARGO_BIN_EXE_cobble");
    let (p, c) = (dir.join("pebble"), dir.join("pebble-challtestsrv"));
    std::os::unix::fs::symlink(cobble, &p).unwrap();
    std::os::unix::fs::symlink(cobble, &c).unwrap();
    (p, c)
}

/// `testdata/pebble-config.json` with its listeners on `listen` and `mgmt` (127.0.0.1),
/// written as `name` in `dir`; `edit` changes anything else.
pub fn pebble_config(
    dir: &Path,
    name: &str,
    listen: u16,
    mgmt: u16,
    edit: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    let text =
        std::fs::read_to_string(workspace_root().join("testdata/pebble-config.json")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    cfg["pebble"]["listenAddress"] = format!("127.0.0.1:{listen}").into();
    cfg["pebble"]["managementListenAddress"] = format!("127.0.0.1:{mgmt}").into();
    edit(&mut cfg["pebble"]);
    let path = dir.join(name);
    std::fs::write(&path, cfg.to_string()).unwrap();
    path
}

/// A child process stopped with SIGTERM (then killed) when dropped.
pub struct Proc(pub Child);

impl Proc {
    /// SIGTERM, then SIGKILL after 5 s; the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        for _ in 0..100 {
            if let Some(st) = self.0.try_wait().unwrap() {
                return st;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        self.0.wait().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for a listener, at most 60 s: a drop-in making Pebble's RSA hierarchy (several roots
/// and a longer chain) in a debug build on a busy 2-core machine takes a while.
pub async fn wait_listening(addr: SocketAddr) {
    for _ in 0..1200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {addr} after 60 s");
}

/// An HTTPS client trusting `testdata/pebble/ca.pem`, the issuer of the listeners'
/// certificate in Pebble's config (Debian's Pebble and the drop-in alike); it follows no
/// redirects, so that tests see them.
pub fn pebble_tls_client() -> reqwest::Client {
    let trust = workspace_root().join("testdata/pebble/ca.pem");
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(trust).unwrap()).unwrap()])
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A new account (no contact, terms agreed) on the Pebble-style server whose ACME listener
/// is on `listen`, trusting `testdata/pebble/ca.pem` as the listeners' issuer.
pub async fn pebble_account(listen: u16) -> instant_acme::Account {
    let trust = workspace_root().join("testdata/pebble/ca.pem");
    let (account, _) = instant_acme::Account::builder_with_root(&trust)
        .unwrap()
        .create(
            &instant_acme::NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            format!("https://localhost:{listen}/dir"),
            None,
        )
        .await
        .unwrap();
    account
}
