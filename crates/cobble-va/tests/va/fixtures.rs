//! Loopback fixtures: a mock DNS server (hickory-server), an http-01 responder
//! (axum) and a tls-alpn-01 responder (tokio-rustls), each on a random port.

use cobble_va::{VaConfig, Validator};
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CAA, CNAME, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Records by (lowercase name without trailing dot, type); names that SERVFAIL.
#[derive(Default)]
pub struct Zone {
    records: HashMap<(String, RecordType), Vec<RData>>,
    servfail: HashSet<String>,
}

/// A running mock DNS server; any name without an A record answers 127.0.0.1.
#[derive(Clone)]
pub struct MockDns {
    zone: Arc<RwLock<Zone>>,
    pub addr: SocketAddr,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl MockDns {
    /// Starts the server on 127.0.0.1 (UDP and TCP on one random port).
    pub async fn start() -> Self {
        let zone = Arc::new(RwLock::new(Zone::default()));
        let mut last = None;
        for _ in 0..20 {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            match tokio::net::TcpListener::bind(addr).await {
                Ok(tcp) => {
                    let mut server = hickory_server::Server::new(Handler(zone.clone()));
                    server.register_socket(udp);
                    server.register_listener(tcp, Duration::from_secs(5), 4096);
                    // The server runs until the test's runtime ends.
                    tokio::spawn(async move {
                        let _keep = server;
                        std::future::pending::<()>().await
                    });
                    return Self { zone, addr };
                }
                Err(e) => last = Some(e),
            }
        }
        panic!("no free UDP+TCP port pair: {last:?}");
    }

    fn add(&self, name: &str, rdata: RData) {
        let mut z = self.zone.write().unwrap();
        z.records
            .entry((key(name), rdata.record_type()))
            .or_default()
            .push(rdata);
    }

    /// Adds a TXT record.
    pub fn txt(&self, name: &str, value: &str) {
        self.add(name, RData::TXT(TXT::new(vec![value.to_owned()])));
    }

    /// Adds an A record.
    pub fn a(&self, name: &str, ip: Ipv4Addr) {
        self.add(name, RData::A(A(ip)));
    }

    /// Adds an AAAA record.
    pub fn aaaa(&self, name: &str, ip: Ipv6Addr) {
        self.add(name, RData::AAAA(AAAA(ip)));
    }

    /// Makes `name` a CNAME to `target`.
    pub fn cname(&self, name: &str, target: &str) {
        let t = Name::from_ascii(format!("{}.", key(target))).unwrap();
        self.add(name, RData::CNAME(CNAME(t)));
    }

    /// Adds a CAA record with a raw value.
    pub fn caa(&self, name: &str, critical: bool, tag: &str, value: &str) {
        let mut c = CAA::new_issue(critical, None, vec![]);
        c.tag = tag.to_owned();
        c.value = value.as_bytes().to_vec();
        self.add(name, RData::CAA(c));
    }

    /// Makes every query for `name` answer SERVFAIL.
    pub fn servfail(&self, name: &str) {
        self.zone.write().unwrap().servfail.insert(key(name));
    }

    /// Removes every record of `name`.
    pub fn clear(&self, name: &str) {
        let k = key(name);
        self.zone
            .write()
            .unwrap()
            .records
            .retain(|(n, _), _| *n != k);
    }

    /// A validator using this server, with short timeouts.
    pub fn validator(&self, http01_port: u16, tlsalpn01_port: u16) -> Validator {
        Validator::new(VaConfig {
            http01_port,
            tlsalpn01_port,
            dns_server: Some(self.addr),
            timeout: Duration::from_secs(1),
            caa_identities: vec!["cobble.test".to_owned()],
            ..VaConfig::default()
        })
        .unwrap()
    }
}

struct Handler(Arc<RwLock<Zone>>);

impl Handler {
    /// Answers for (name, type), following CNAMEs as a recursive resolver would.
    fn answer(&self, qname: &Name, qtype: RecordType) -> Result<Vec<Record>, ResponseCode> {
        let zone = self.0.read().unwrap();
        let mut name = qname.clone();
        let mut out = Vec::new();
        for _ in 0..8 {
            let k = key(&name.to_ascii());
            if zone.servfail.contains(&k) {
                return Err(ResponseCode::ServFail);
            }
            if qtype != RecordType::CNAME
                && let Some(RData::CNAME(c)) = zone
                    .records
                    .get(&(k.clone(), RecordType::CNAME))
                    .and_then(|v| v.first())
            {
                out.push(Record::from_rdata(
                    name.clone(),
                    60,
                    RData::CNAME(c.clone()),
                ));
                name = c.0.clone();
                continue;
            }
            match zone.records.get(&(k, qtype)) {
                Some(v) => out.extend(
                    v.iter()
                        .map(|r| Record::from_rdata(name.clone(), 60, r.clone())),
                ),
                None if qtype == RecordType::A => out.push(Record::from_rdata(
                    name.clone(),
                    60,
                    RData::A(A(Ipv4Addr::LOCALHOST)),
                )),
                None => {}
            }
            return Ok(out);
        }
        Err(ResponseCode::ServFail)
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let info = request.request_info().expect("one query");
        let qname: Name = info.query.name().into();
        let builder = MessageResponseBuilder::from_message_request(request);
        let mut md = Metadata::response_from_request(&request.metadata);
        let result = match self.answer(&qname, info.query.query_type()) {
            Ok(answers) => {
                md.response_code = ResponseCode::NoError;
                let resp = builder.build(md, answers.iter(), [], [], []);
                response_handle.send_response(resp).await
            }
            Err(rc) => {
                response_handle
                    .send_response(builder.error_msg(&request.metadata, rc))
                    .await
            }
        };
        result.expect("send DNS response")
    }
}

/// A free loopback port with nothing listening (bound, then released).
pub async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}
