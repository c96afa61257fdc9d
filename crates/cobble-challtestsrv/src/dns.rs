//! The mock DNS server (UDP and TCP, hickory-server): answers A, AAAA, TXT, CAA and CNAME
//! from the shared state the way pebble-challtestsrv does. Never NXDOMAIN: a name without
//! records gets NOERROR, no answers and the `challtestsrv.invalid.` SOA; an unsupported type
//! gets NOTIMP; a name set with `/set-servfail` gets SERVFAIL.

use crate::history::{DnsQuestion, DnsRequestEvent, RequestEvent};
use crate::state::{ChallState, DnsData, normalize_name};
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Metadata, Query, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CAA, CNAME, SOA, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::net::SocketAddr;
use std::time::Duration;

/// TTL of every answer: 0, so resolvers never cache what the management API may change.
const TTL: u32 = 0;
/// Longest RFC 1035 <character-string>; longer TXT values are split into several.
const TXT_CHUNK: usize = 255;
/// How long a TCP client may stay idle before the connection is closed.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);

/// hickory-server handler over the shared state.
pub(crate) struct Handler {
    state: ChallState,
}

/// The answers and response code for one question.
#[derive(Debug, PartialEq)]
pub(crate) struct Answer {
    pub records: Vec<Record>,
    pub rcode: ResponseCode,
}

/// Answers one question from `dns`. A CNAME'd name answers its CNAME record and then the
/// target's records of the asked type, one level deep (as pebble-challtestsrv).
pub(crate) fn answer(dns: &DnsData, qname: &Name, qtype: RecordType) -> Answer {
    let key = normalize_name(&qname.to_ascii());
    let mut records = Vec::new();
    if dns.servfail.contains(&key) {
        return Answer {
            records,
            rcode: ResponseCode::ServFail,
        };
    }
    let (mut name, mut key) = (qname.clone(), key);
    if let Some(target) = dns.cname.get(&key) {
        let Ok(target_name) = Name::from_ascii(target) else {
            return Answer {
                records,
                rcode: ResponseCode::ServFail,
            };
        };
        records.push(rr(&name, RData::CNAME(CNAME(target_name.clone()))));
        (name, key) = (target_name, target.clone());
    }
    match qtype {
        RecordType::CNAME => {
            if let Some(t) = dns.cname.get(&key).and_then(|t| Name::from_ascii(t).ok()) {
                records.push(rr(&name, RData::CNAME(CNAME(t))));
            }
        }
        RecordType::A => match dns.a.get(&key) {
            Some(ips) if !ips.is_empty() => {
                records.extend(ips.iter().map(|ip| rr(&name, RData::A(A(*ip)))))
            }
            _ => records.extend(dns.default_ipv4.map(|ip| rr(&name, RData::A(A(ip))))),
        },
        RecordType::AAAA => match dns.aaaa.get(&key) {
            Some(ips) if !ips.is_empty() => {
                records.extend(ips.iter().map(|ip| rr(&name, RData::AAAA(AAAA(*ip)))))
            }
            _ => records.extend(dns.default_ipv6.map(|ip| rr(&name, RData::AAAA(AAAA(ip))))),
        },
        RecordType::TXT => {
            for value in dns.txt.get(&key).into_iter().flatten() {
                let chunks: Vec<&[u8]> = value.as_bytes().chunks(TXT_CHUNK).collect();
                let chunks = if chunks.is_empty() {
                    vec![&b""[..]]
                } else {
                    chunks
                };
                records.push(rr(&name, RData::TXT(TXT::from_bytes(chunks))));
            }
        }
        RecordType::CAA => {
            for p in dns.caa.get(&key).into_iter().flatten() {
                let mut caa = CAA::new_issue(p.flag & 0x80 != 0, None, Vec::new());
                caa.reserved_flags = p.flag & 0x7f;
                caa.tag = p.tag.clone();
                caa.value = p.value.as_bytes().to_vec();
                records.push(rr(&name, RData::CAA(caa)));
            }
        }
        _ => {
            return Answer {
                records,
                rcode: ResponseCode::NotImp,
            };
        }
    }
    Answer {
        records,
        rcode: ResponseCode::NoError,
    }
}

fn rr(name: &Name, data: RData) -> Record {
    Record::from_rdata(name.clone(), TTL, data)
}

/// Answers every question of a request from the shared state, recording each in the history
/// with `user_agent` (set for DNS over HTTPS): the answers and the response code (the last
/// failing question's; NOTIMP stops at that question, as pebble-challtestsrv).
pub(crate) fn resolve<'a>(
    state: &ChallState,
    queries: impl IntoIterator<Item = &'a Query>,
    user_agent: &str,
) -> (Vec<Record>, ResponseCode) {
    let mut answers = Vec::new();
    let mut rcode = ResponseCode::NoError;
    for q in queries {
        state.record(RequestEvent::Dns(DnsRequestEvent {
            question: DnsQuestion {
                name: q.name().to_ascii(),
                qtype: u16::from(q.query_type()),
                qclass: u16::from(q.query_class()),
            },
            user_agent: user_agent.to_owned(),
        }));
        let a = answer(&state.read().dns, q.name(), q.query_type());
        tracing::debug!(name = %q.name(), qtype = %q.query_type(), rcode = ?a.rcode, answers = a.records.len(), "dns question");
        answers.extend(a.records);
        if a.rcode != ResponseCode::NoError {
            rcode = a.rcode;
            if rcode == ResponseCode::NotImp {
                break;
            }
        }
    }
    (answers, rcode)
}

/// pebble-challtestsrv's SOA, sent in the authority section of every response.
pub(crate) fn default_soa() -> Record {
    let n = |s: &str| Name::from_ascii(s).expect("static name");
    let soa = SOA::new(
        n("ns.challtestsrv.invalid."),
        n("master.challtestsrv.invalid."),
        1,
        1,
        1,
        1,
        1,
    );
    rr(&n("challtestsrv.invalid."), RData::SOA(soa))
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let (answers, rcode) = resolve(
            &self.state,
            request.queries.queries().iter().map(|q| q.original()),
            "",
        );
        let soa = [default_soa()];
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = rcode;
        let builder = MessageResponseBuilder::from_message_request(request);
        let response = builder.build(metadata, answers.iter(), soa.iter(), [], []);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(error = %e, "dns: sending the response failed");
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(hickory_server::proto::op::Header {
                    metadata,
                    counts: Default::default(),
                })
            }
        }
    }
}

/// A running DNS server on one UDP socket and one TCP listener of the same address.
pub(crate) struct DnsServer {
    server: hickory_server::Server<Handler>,
}

impl DnsServer {
    /// Binds UDP and TCP on `addr` (with port 0, both on the same free port) and serves.
    pub(crate) async fn start(
        addr: SocketAddr,
        state: ChallState,
    ) -> Result<(Self, SocketAddr), std::io::Error> {
        let mut last = None;
        let mut pair = None;
        for candidate in crate::addr::bind_candidates(addr) {
            match bind_pair(candidate).await {
                Ok(p) => {
                    pair = Some(p);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let (udp, tcp) = match pair {
            Some(p) => p,
            None => return Err(last.unwrap_or_else(|| std::io::Error::other("no address"))),
        };
        let bound = udp.local_addr()?;
        let mut server = hickory_server::Server::new(Handler { state });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT, 4096);
        Ok((Self { server }, bound))
    }

    /// Stops accepting and waits for the server's tasks to end.
    pub(crate) async fn shutdown(mut self) {
        if let Err(e) = self.server.shutdown_gracefully().await {
            tracing::debug!(error = %e, "dns server stopped with an error");
        }
    }
}

/// UDP and TCP on the same port; with port 0, retries a few times if the UDP port's TCP
/// twin is taken.
async fn bind_pair(
    addr: SocketAddr,
) -> Result<(tokio::net::UdpSocket, tokio::net::TcpListener), std::io::Error> {
    let mut last_err = None;
    for _ in 0..16 {
        let udp = tokio::net::UdpSocket::bind(addr).await?;
        let port = udp.local_addr()?.port();
        match tokio::net::TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("no free port pair")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::CaaPolicy;

    fn data() -> DnsData {
        let s = ChallState::new(Some("127.0.0.1".parse().unwrap()), None);
        s.add_a("a.test", &["10.0.0.1".parse().unwrap()]);
        s.set_cname("alias.test", "a.test");
        s.set_servfail("broken.test");
        s.add_caa("a.test", &[CaaPolicy::new("issue", "ca.test").critical()]);
        let d = std::mem::take(&mut *s.inner_for_tests());
        d.dns
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn answers_table() {
        let d = data();
        // (question, type, rcode, answer count, first record's type)
        let rows = [
            (
                "a.test.",
                RecordType::A,
                ResponseCode::NoError,
                1,
                Some(RecordType::A),
            ),
            (
                "A.TEST",
                RecordType::A,
                ResponseCode::NoError,
                1,
                Some(RecordType::A),
            ),
            (
                "other.test.",
                RecordType::A,
                ResponseCode::NoError,
                1,
                Some(RecordType::A),
            ),
            (
                "other.test.",
                RecordType::AAAA,
                ResponseCode::NoError,
                0,
                None,
            ),
            (
                "other.test.",
                RecordType::TXT,
                ResponseCode::NoError,
                0,
                None,
            ),
            (
                "alias.test.",
                RecordType::A,
                ResponseCode::NoError,
                2,
                Some(RecordType::CNAME),
            ),
            (
                "alias.test.",
                RecordType::CNAME,
                ResponseCode::NoError,
                1,
                Some(RecordType::CNAME),
            ),
            (
                "broken.test.",
                RecordType::A,
                ResponseCode::ServFail,
                0,
                None,
            ),
            ("a.test.", RecordType::MX, ResponseCode::NotImp, 0, None),
            (
                "a.test.",
                RecordType::CAA,
                ResponseCode::NoError,
                1,
                Some(RecordType::CAA),
            ),
        ];
        for (q, t, rcode, n, first) in rows {
            let a = answer(&d, &name(q), t);
            assert_eq!(a.rcode, rcode, "{q} {t}");
            assert_eq!(a.records.len(), n, "{q} {t}");
            assert_eq!(a.records.first().map(|r| r.record_type()), first, "{q} {t}");
        }
    }

    #[test]
    fn long_txt_values_are_split() {
        let s = ChallState::default();
        s.set_txt("t.test", &"x".repeat(600));
        let d = std::mem::take(&mut *s.inner_for_tests());
        let a = answer(&d.dns, &name("t.test."), RecordType::TXT);
        let RData::TXT(txt) = &a.records[0].data else {
            panic!("not TXT")
        };
        let lens: Vec<usize> = txt.txt_data.iter().map(|c| c.len()).collect();
        assert_eq!(lens, vec![255, 255, 90]);
    }
}
