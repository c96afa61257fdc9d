//! DNS lookups for validation through hickory: one resolver, no cache (a changed
//! record is seen at once), errors sorted into "no such record" and "DNS failed".

use crate::VaError;
use cobble_core::{Problem, ProblemType};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The validation resolver.
pub(crate) struct Dns {
    resolver: TokioResolver,
}

/// Why a lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LookupError {
    /// NXDOMAIN, or NOERROR with no record of the type (after following CNAMEs).
    NoRecords { nxdomain: bool },
    /// SERVFAIL, REFUSED, timeout, network error: the answer is unknown.
    Failed(String),
}

impl LookupError {
    /// Boulder's wording: `DNS problem: SERVFAIL looking up TXT for _acme-challenge.example.com`.
    pub(crate) fn problem(&self, rtype: RecordType, name: &str) -> Problem {
        let what = match self {
            LookupError::NoRecords { nxdomain: true } => "NXDOMAIN".to_owned(),
            LookupError::NoRecords { nxdomain: false } => "no records".to_owned(),
            LookupError::Failed(why) => why.clone(),
        };
        let mut detail = format!("DNS problem: {what} looking up {rtype} for {name}");
        if matches!(self, LookupError::NoRecords { .. }) {
            detail.push_str(" - check that a DNS record exists for this domain");
        }
        Problem::new(ProblemType::Dns, detail)
    }
}

impl Dns {
    /// A resolver on `server` (UDP and TCP) or on the system's configuration.
    pub(crate) fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Self, VaError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let config = ResolverConfig::from_parts(None, vec![], vec![ns]);
                Resolver::builder_with_config(config, provider)
            }
            None => Resolver::builder(provider).map_err(|e| VaError::Resolver(e.to_string()))?,
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.cache_size = 0;
        opts.timeout = timeout;
        opts.attempts = 1;
        opts.edns0 = true;
        if server.is_some() {
            opts.use_hosts_file = ResolveHosts::Never;
        }
        let resolver = builder
            .build()
            .map_err(|e| VaError::Resolver(e.to_string()))?;
        Ok(Self { resolver })
    }

    /// The records of `rtype` for `name` (CNAMEs followed by the resolver; the
    /// CNAME records themselves are left out).
    pub(crate) async fn lookup(
        &self,
        name: &str,
        rtype: RecordType,
    ) -> Result<Vec<Record>, LookupError> {
        let fqdn = fqdn(name)?;
        match self.resolver.lookup(fqdn, rtype).await {
            Ok(lookup) => {
                let records: Vec<Record> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .cloned()
                    .collect();
                if records.is_empty() {
                    Err(LookupError::NoRecords { nxdomain: false })
                } else {
                    Ok(records)
                }
            }
            Err(e) => Err(classify(&e)),
        }
    }

    /// The TXT strings at `name`, each record's character-strings concatenated (RFC 8555 §8.4).
    pub(crate) async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let records = self.lookup(name, RecordType::TXT).await?;
        Ok(records
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s))
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }

    /// AAAA and A addresses of `name`, queried together, IPv6 first (Boulder's order).
    /// A `dns` problem when neither query gives an address.
    pub(crate) async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, Problem> {
        let (v6, v4) = tokio::join!(
            self.lookup(name, RecordType::AAAA),
            self.lookup(name, RecordType::A)
        );
        let mut out = Vec::new();
        for r in v6.iter().flatten().chain(v4.iter().flatten()) {
            match &r.data {
                RData::AAAA(a) => out.push(IpAddr::V6(a.0)),
                RData::A(a) => out.push(IpAddr::V4(a.0)),
                _ => {}
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
        // Prefer reporting a real failure over "no records".
        match (v4, v6) {
            (Err(e @ LookupError::Failed(_)), _) => Err(e.problem(RecordType::A, name)),
            (_, Err(e @ LookupError::Failed(_))) => Err(e.problem(RecordType::AAAA, name)),
            (Err(e), _) => Err(e.problem(RecordType::A, name)),
            _ => Err(Problem::new(
                ProblemType::Dns,
                format!("No valid IP addresses found for {name}"),
            )),
        }
    }
}

fn fqdn(name: &str) -> Result<Name, LookupError> {
    let mut s = name.to_owned();
    if !s.ends_with('.') {
        s.push('.');
    }
    Name::from_ascii(&s).map_err(|e| LookupError::Failed(format!("invalid name {name:?}: {e}")))
}

fn classify(e: &NetError) -> LookupError {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(nr)) => match nr.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => LookupError::NoRecords {
                nxdomain: nr.response_code == ResponseCode::NXDomain,
            },
            other => LookupError::Failed(rcode_name(other)),
        },
        NetError::Dns(DnsError::ResponseCode(rc)) => LookupError::Failed(rcode_name(*rc)),
        NetError::Timeout => LookupError::Failed("query timed out".to_owned()),
        other => LookupError::Failed(format!("networking error ({other})")),
    }
}

fn rcode_name(rc: ResponseCode) -> String {
    match rc {
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        ResponseCode::FormErr => "FORMERR".to_owned(),
        ResponseCode::NotImp => "NOTIMP".to_owned(),
        ResponseCode::NXDomain => "NXDOMAIN".to_owned(),
        other => format!("rcode {}", u16::from(other)),
    }
}
