//! Multi-step set-ups shared by checks: orders, answered challenges, issued certificates.

use crate::client::{Halt, Reply, fail, fail_with, skip};
use crate::ctx::{Account, Ctx};
use cobble_core::b64;
use cobble_core::challenge::{dns01_txt_value, key_authorization};
use serde_json::{Value, json};

/// An order the suite created.
pub struct Order {
    /// Its URL.
    pub url: String,
    /// The latest order object.
    pub body: Value,
}

/// A certificate the suite obtained.
pub struct Issued {
    /// The account that ordered it.
    pub account: Account,
    /// The order.
    pub order: Order,
    /// The certificate URL.
    pub cert_url: String,
    /// The download answer.
    pub download: Reply,
    /// The leaf certificate, DER.
    pub leaf_der: Vec<u8>,
    /// The certificate's key.
    pub cert_key: rcgen::KeyPair,
    /// Its names.
    pub names: Vec<String>,
}

/// DNS identifiers for `names`.
pub fn dns_ids(names: &[String]) -> Value {
    Value::Array(
        names
            .iter()
            .map(|n| json!({"type": "dns", "value": n}))
            .collect(),
    )
}

/// A CSR for `names` (no subject) signed by `key`.
pub fn csr(names: &[String], key: &rcgen::KeyPair) -> Vec<u8> {
    let mut p = rcgen::CertificateParams::new(names.to_vec()).expect("names");
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.serialize_request(key).expect("CSR").der().to_vec()
}

/// PEM blocks labelled CERTIFICATE, decoded.
pub fn pem_certs(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let l = line.trim();
        if l == "-----BEGIN CERTIFICATE-----" {
            cur = Some(String::new());
        } else if l == "-----END CERTIFICATE-----" {
            if let Some(b) = cur.take() {
                let std = b.replace('+', "-").replace('/', "_");
                if let Ok(d) = b64::decode(std.trim_end_matches('=')) {
                    out.push(d);
                }
            }
        } else if let Some(b) = cur.as_mut() {
            b.push_str(l);
        }
    }
    out
}

impl Ctx {
    /// Creates an order for `names` (201 expected).
    pub async fn new_order(&self, a: &Account, ids: Value) -> Result<Order, Halt> {
        let r = self
            .signed(
                a,
                &self.url("newOrder")?,
                Some(&json!({"identifiers": ids})),
            )
            .await?;
        if r.status != 201 {
            return fail_with(&r, "prerequisite: newOrder did not create the order (201)");
        }
        let Some(url) = r.location() else {
            return fail_with(&r, "prerequisite: newOrder answered without Location");
        };
        Ok(Order { url, body: r.body })
    }

    /// Whether the suite can answer challenges of type `kind`: http-01 through its own
    /// responder or the challenge test server, the others through the challenge test server.
    pub fn can_answer(&self, kind: &str) -> Result<(), Halt> {
        if kind == "http-01" && self.http01.is_some() {
            return Ok(());
        }
        self.challtestsrv().map(|_| ())
    }

    /// Sets the challenge test server up to answer challenge `ch` (http-01, dns-01 or
    /// tls-alpn-01) of the
    /// authorization for `identifier`, with `good` or deliberately wrong content.
    pub async fn arrange(
        &self,
        a: &Account,
        identifier: &str,
        ch: &Value,
        good: bool,
    ) -> Result<(), Halt> {
        let token = ch["token"].as_str().unwrap_or_default();
        let mut ka = key_authorization(token, &a.key.public_key().thumbprint());
        if !good {
            ka = format!(
                "{token}.wrong-thumbprint-{}",
                &ka[ka.len().saturating_sub(6)..]
            );
        }
        match ch["type"].as_str() {
            Some("http-01") if self.http01.is_some() => {
                if let Some(h) = &self.http01 {
                    h.add(token, &ka);
                }
                Ok(())
            }
            Some("http-01") => {
                self.chall("/add-http01", json!({"token": token, "content": ka}))
                    .await
            }
            Some("tls-alpn-01") => {
                self.chall(
                    "/add-tlsalpn01",
                    json!({"host": identifier, "content": ka}),
                )
                .await
            }
            Some("dns-01") => {
                self.chall(
                    "/set-txt",
                    json!({"host": format!("_acme-challenge.{identifier}."), "value": dns01_txt_value(&ka)}),
                )
                .await
            }
            other => skip(format!("cannot answer challenge type {other:?}")),
        }
    }

    /// Removes what `arrange` set up.
    pub async fn unarrange(&self, identifier: &str, ch: &Value) {
        let _ = match ch["type"].as_str() {
            Some("http-01") if self.http01.is_some() => {
                if let Some(h) = &self.http01 {
                    h.remove(ch["token"].as_str().unwrap_or_default());
                }
                Ok(())
            }
            Some("tls-alpn-01") => {
                self.chall("/del-tlsalpn01", json!({"host": identifier}))
                    .await
            }
            Some("http-01") => {
                self.chall("/del-http01", json!({"token": ch["token"]}))
                    .await
            }
            Some("dns-01") => {
                self.chall(
                    "/clear-txt",
                    json!({"host": format!("_acme-challenge.{identifier}.")}),
                )
                .await
            }
            _ => Ok(()),
        };
    }

    /// Answers the `kind` challenge of the authorization at `authz_url` and waits until the
    /// authorization leaves `pending`; returns (challenge POST answer, final authorization).
    pub async fn solve(
        &self,
        a: &Account,
        authz_url: &str,
        kind: &str,
        good: bool,
    ) -> Result<(Option<Reply>, Value), Halt> {
        self.can_answer(kind)?;
        let authz = self.signed(a, authz_url, None).await?;
        if authz.status != 200 {
            return fail_with(&authz, "prerequisite: POST-as-GET of the authorization");
        }
        if authz.body["status"] == "valid" {
            return Ok((None, authz.body));
        }
        let ident = authz.body["identifier"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let Some(ch) = authz.body["challenges"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
            .cloned()
        else {
            return skip(format!(
                "the authorization for {ident} offers no {kind} challenge"
            ));
        };
        self.arrange(a, &ident, &ch, good).await?;
        let Some(ch_url) = ch["url"].as_str() else {
            return fail_with(&authz, "the challenge has no url");
        };
        let posted = self.signed(a, ch_url, Some(&json!({}))).await?;
        if posted.status != 200 {
            self.unarrange(&ident, &ch).await;
            return fail_with(
                &posted,
                "prerequisite: responding to the challenge should answer 200",
            );
        }
        let done = self
            .poll(a, authz_url, "the authorization", |b| {
                b["status"] != "pending" && b["status"] != "processing"
            })
            .await;
        self.unarrange(&ident, &ch).await;
        Ok((Some(posted), done?.body))
    }

    /// An order for `names` with every authorization valid (http-01 through the challenge
    /// test server), polled until `ready`.
    pub async fn ready_order(&self, a: &Account, names: &[String]) -> Result<Order, Halt> {
        self.can_answer("http-01")?;
        let order = self.new_order(a, dns_ids(names)).await?;
        for authz in order.body["authorizations"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let url = authz.as_str().unwrap_or_default();
            let (_, done) = self.solve(a, url, "http-01", true).await?;
            if done["status"] != "valid" {
                return fail(format!(
                    "prerequisite: http-01 validation of {url} ended {}: {}",
                    done["status"], done
                ));
            }
        }
        let r = self
            .poll(a, &order.url, "the order", |b| b["status"] != "pending")
            .await?;
        if r.body["status"] != "ready" {
            return fail_with(
                &r,
                "prerequisite: the order should be ready once its authorizations are valid",
            );
        }
        Ok(Order {
            url: order.url,
            body: r.body,
        })
    }

    /// Finalizes `order` with `csr_der` and polls until it leaves `processing`.
    pub async fn finalize(
        &self,
        a: &Account,
        order: &Order,
        csr_der: &[u8],
    ) -> Result<(Reply, Reply), Halt> {
        let url = order.body["finalize"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let r = self
            .signed(a, &url, Some(&json!({"csr": b64::encode(csr_der)})))
            .await?;
        if r.status != 200 {
            return Ok((r.clone(), r));
        }
        let done = self
            .poll(a, &order.url, "the order after finalize", |b| {
                b["status"] != "processing" && b["status"] != "ready"
            })
            .await?;
        Ok((r, done))
    }

    /// A fresh account, an order for `n` fresh names, validated, finalized and downloaded.
    pub async fn issue(&self, n: usize) -> Result<Issued, Halt> {
        let account = self.account().await?;
        let names: Vec<String> = (0..n).map(|_| self.name()).collect();
        let order = self.ready_order(&account, &names).await?;
        let cert_key = rcgen::KeyPair::generate().expect("P-256 key");
        let (fin, done) = self
            .finalize(&account, &order, &csr(&names, &cert_key))
            .await?;
        if fin.status != 200 {
            return fail_with(&fin, "prerequisite: finalize should accept a good CSR");
        }
        if done.body["status"] != "valid" {
            return fail_with(
                &done,
                "prerequisite: the order should become valid after finalize",
            );
        }
        let Some(cert_url) = done.body["certificate"].as_str().map(str::to_owned) else {
            return fail_with(&done, "a valid order has no certificate URL");
        };
        let download = self.signed(&account, &cert_url, None).await?;
        if download.status != 200 {
            return fail_with(&download, "prerequisite: POST-as-GET of the certificate");
        }
        let Some(leaf_der) = pem_certs(&download.text).into_iter().next() else {
            return fail_with(
                &download,
                "the certificate download holds no PEM certificate",
            );
        };
        Ok(Issued {
            account,
            order: Order {
                url: order.url,
                body: done.body,
            },
            cert_url,
            download,
            leaf_der,
            cert_key,
            names,
        })
    }
}
