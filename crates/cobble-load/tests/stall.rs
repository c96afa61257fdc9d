//! A server that stops answering mid-run is reported as stalled (exit code 3) within the
//! stall window, instead of hanging the run. The "server" is a canned plain-HTTP responder:
//! directory, nonces and accounts answer, newOrder never does.

use cobble_load::{Limit, Options};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one request (head and Content-Length body); returns its path.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let mut chunk = [0u8; 4096];
    for _ in 0..1000 {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..end + 4 + len);
            return head.split_whitespace().nth(1).map(str::to_owned);
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    None
}

async fn serve(mut s: TcpStream, base: String) {
    let mut buf = Vec::new();
    for _ in 0..100 {
        let Some(path) = read_request(&mut s, &mut buf).await else {
            return;
        };
        let (status, extra, body) = match path.as_str() {
            "/dir" => (
                "200 OK",
                String::new(),
                format!(
                    r#"{{"newNonce":"{base}/nonce","newAccount":"{base}/acct","newOrder":"{base}/order"}}"#
                ),
            ),
            "/nonce" => ("200 OK", String::new(), String::new()),
            "/acct" => (
                "201 Created",
                format!("Location: {base}/acct/1\r\n"),
                r#"{"status":"valid"}"#.to_owned(),
            ),
            // newOrder: the server has hung.
            _ => {
                tokio::time::sleep(Duration::from_secs(120)).await;
                return;
            }
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\nReplay-Nonce: n{}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            buf.len(),
            body.len()
        );
        if s.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_is_reported_as_stalled() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let b = base.clone();
    let server = tokio::spawn(async move {
        for _ in 0..64 {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(serve(s, b.clone()));
        }
    });
    let opts = Options {
        clients: 2,
        limit: Limit::Duration(Duration::from_secs(30)),
        stall_secs: 1,
        key_pool: 1,
        ..Options::new(format!("{base}/dir"))
    };
    let t = Instant::now();
    let report = cobble_load::run(opts, |_| {})
        .await
        .expect("the run starts");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(report.stalled_secs.unwrap() >= 1.0, "{}", report.text());
    assert_eq!(report.exit_code(), 3);
    assert_eq!(report.orders_completed, 0);
    assert!(report.text().contains("STALLED"));
    assert_eq!(report.to_json()["stalled"], true);
    server.abort();
}
