//! The suite's own http-01 responder (`--http01-port`): a minimal HTTP/1.1 server answering
//! `GET /.well-known/acme-challenge/TOKEN` with the key authorization (RFC 8555 §8.3), for
//! servers that validate at a port of the machine the suite runs on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest request head read, in bytes.
const MAX_HEAD: usize = 8 * 1024;

/// A running responder; stops when dropped.
pub struct Http01 {
    tokens: Arc<Mutex<HashMap<String, String>>>,
    task: tokio::task::JoinHandle<()>,
    /// The bound address.
    pub addr: std::net::SocketAddr,
}

impl Drop for Http01 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether `url`'s host is a loopback name or address.
fn loopback_host(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Http01 {
    /// Listens on `port`: on loopback only when the directory is on loopback, else on every
    /// IPv4 address (the server validates from elsewhere).
    pub async fn start(directory: &str, port: u16) -> Result<Http01, String> {
        let ip = if loopback_host(directory) {
            "127.0.0.1"
        } else {
            "0.0.0.0"
        };
        let listener = tokio::net::TcpListener::bind((ip, port))
            .await
            .map_err(|e| format!("--http01-port {port}: cannot listen on {ip}:{port}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let tokens: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let t = tokens.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let t = t.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), serve(sock, t)).await;
                });
            }
        });
        Ok(Http01 { tokens, task, addr })
    }

    /// Serves `key_authorization` for `token`.
    pub fn add(&self, token: &str, key_authorization: &str) {
        self.tokens
            .lock()
            .unwrap()
            .insert(token.to_owned(), key_authorization.to_owned());
    }

    /// Stops serving `token`.
    pub fn remove(&self, token: &str) {
        self.tokens.lock().unwrap().remove(token);
    }
}

async fn serve(
    mut sock: tokio::net::TcpStream,
    tokens: Arc<Mutex<HashMap<String, String>>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let found = path
        .strip_prefix("/.well-known/acme-challenge/")
        .and_then(|t| tokens.lock().unwrap().get(t).cloned());
    let (status, body) = match found {
        Some(ka) if method == "GET" || method == "HEAD" => ("200 OK", ka),
        _ => ("404 Not Found", "not found\n".to_owned()),
    };
    let mut resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        resp.push_str(&body);
    }
    sock.write_all(resp.as_bytes()).await?;
    sock.shutdown().await
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts() {
        for (u, want) in [
            ("https://localhost:14000/dir", true),
            ("https://127.0.0.1:14000/dir", true),
            ("https://[::1]:14000/dir", true),
            ("https://acme.example.com/dir", false),
            ("https://10.0.0.1/dir", false),
        ] {
            assert_eq!(super::loopback_host(u), want, "{u}");
        }
    }
}
