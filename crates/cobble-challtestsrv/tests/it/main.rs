//! Integration tests: a real challenge test server on 127.0.0.1 with free ports, driven
//! through its management API (reqwest) and checked with real clients (hickory-resolver,
//! reqwest, tokio-rustls).

mod dns;
mod doh;
mod http01;
mod https01;
mod management;
mod tlsalpn01;

use cobble_challtestsrv::{ChalltestConfig, Running};
use serde_json::Value;
use std::time::Duration;

/// Bound on every network wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// A server on loopback with every listener on, plus an HTTP client for its management API.
pub struct Harness {
    pub srv: Running,
    pub http: reqwest::Client,
}

impl Harness {
    pub async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let srv = cobble_challtestsrv::start(ChalltestConfig::loopback_ephemeral())
            .await
            .expect("start");
        let http = reqwest::Client::builder()
            .timeout(WAIT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { srv, http }
    }

    /// POSTs a raw body to a management endpoint; returns status and body text.
    pub async fn post_raw(&self, path: &str, body: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.srv.management_addr().unwrap());
        let resp = self
            .http
            .post(url)
            .body(body.to_owned())
            .send()
            .await
            .expect("management request");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }

    /// POSTs JSON to a management endpoint and asserts 200.
    pub async fn post(&self, path: &str, body: Value) {
        let (status, text) = self.post_raw(path, &body.to_string()).await;
        assert_eq!(status, 200, "{path} {body}: {text}");
    }

    /// A history endpoint's JSON array.
    pub async fn history(&self, path: &str, host: &str) -> Vec<Value> {
        let (status, text) = self
            .post_raw(path, &serde_json::json!({ "host": host }).to_string())
            .await;
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str(&text).expect("history JSON")
    }
}
