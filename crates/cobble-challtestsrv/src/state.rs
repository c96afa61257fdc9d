//! The shared, mutable state behind every responder: mock DNS data, http-01 responses,
//! redirects, tls-alpn-01 certificates and the request history. One lock, never held
//! across an await.

use crate::Error;
use crate::history::{EventKind, MAX_EVENTS_PER_HOST, RequestEvent, history_key};
use rustls::sign::CertifiedKey;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One CAA property (RFC 8659 §4.1): flags, tag and raw value, as `/add-caa` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaaPolicy {
    /// Flags octet; 128 is the issuer-critical bit. pebble-challtestsrv always sends 0.
    pub flag: u8,
    /// Property tag, e.g. `issue`, `issuewild`, `iodef`.
    pub tag: String,
    /// Property value, sent as is (e.g. `letsencrypt.org; validationmethods=dns-01`).
    pub value: String,
}

impl CaaPolicy {
    /// A non-critical property.
    pub fn new(tag: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            flag: 0,
            tag: tag.into(),
            value: value.into(),
        }
    }

    /// The same property with the issuer-critical flag (128) set.
    pub fn critical(mut self) -> Self {
        self.flag |= 0x80;
        self
    }
}

/// The DNS data; keys are normalized names (lower case, one trailing dot).
#[derive(Debug, Default)]
pub(crate) struct DnsData {
    pub default_ipv4: Option<Ipv4Addr>,
    pub default_ipv6: Option<Ipv6Addr>,
    pub a: HashMap<String, Vec<Ipv4Addr>>,
    pub aaaa: HashMap<String, Vec<Ipv6Addr>>,
    pub txt: HashMap<String, Vec<String>>,
    pub caa: HashMap<String, Vec<CaaPolicy>>,
    pub cname: HashMap<String, String>,
    pub servfail: HashSet<String>,
}

#[derive(Default)]
pub(crate) struct Data {
    pub dns: DnsData,
    pub http01: HashMap<String, String>,
    pub redirects: HashMap<String, String>,
    pub tlsalpn01: HashMap<String, Arc<CertifiedKey>>,
    history: HashMap<(String, EventKind), VecDeque<RequestEvent>>,
}

/// Handle to the challenge server's state; clones share it. Every management endpoint is
/// one method here, so tests can drive the server in-process without HTTP.
#[derive(Clone, Default)]
pub struct ChallState {
    inner: Arc<RwLock<Data>>,
}

impl std::fmt::Debug for ChallState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallState")
    }
}

/// Normalizes a DNS name for lookup: lower case with exactly one trailing dot.
pub fn normalize_name(name: &str) -> String {
    let mut n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    n.push('.');
    n
}

impl ChallState {
    /// Empty state with the given default A/AAAA answers.
    pub fn new(default_ipv4: Option<Ipv4Addr>, default_ipv6: Option<Ipv6Addr>) -> Self {
        let state = Self::default();
        state.write().dns.default_ipv4 = default_ipv4;
        state.write().dns.default_ipv6 = default_ipv6;
        state
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Data> {
        // A panic while holding the lock leaves plain maps, still consistent: keep serving.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Data> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    pub(crate) fn inner_for_tests(&self) -> RwLockWriteGuard<'_, Data> {
        self.write()
    }

    /// `/set-default-ipv4`: the A answer for names without A records; `None` answers nothing.
    pub fn set_default_ipv4(&self, ip: Option<Ipv4Addr>) {
        self.write().dns.default_ipv4 = ip;
    }

    /// `/set-default-ipv6`: the AAAA answer for names without AAAA records; `None` answers nothing.
    pub fn set_default_ipv6(&self, ip: Option<Ipv6Addr>) {
        self.write().dns.default_ipv6 = ip;
    }

    /// The current default A and AAAA answers.
    pub fn default_ips(&self) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
        let d = self.read();
        (d.dns.default_ipv4, d.dns.default_ipv6)
    }

    /// `/add-a`: appends A records for `host`.
    pub fn add_a(&self, host: &str, addrs: &[Ipv4Addr]) {
        let key = normalize_name(host);
        self.write().dns.a.entry(key).or_default().extend(addrs);
    }

    /// `/clear-a`: removes all A records of `host` (the default answers again).
    pub fn clear_a(&self, host: &str) {
        self.write().dns.a.remove(&normalize_name(host));
    }

    /// `/add-aaaa`: appends AAAA records for `host`.
    pub fn add_aaaa(&self, host: &str, addrs: &[Ipv6Addr]) {
        let key = normalize_name(host);
        self.write().dns.aaaa.entry(key).or_default().extend(addrs);
    }

    /// `/clear-aaaa`: removes all AAAA records of `host`.
    pub fn clear_aaaa(&self, host: &str) {
        self.write().dns.aaaa.remove(&normalize_name(host));
    }

    /// `/add-caa`: appends CAA properties for `host`.
    pub fn add_caa(&self, host: &str, policies: &[CaaPolicy]) {
        let key = normalize_name(host);
        let mut d = self.write();
        d.dns
            .caa
            .entry(key)
            .or_default()
            .extend_from_slice(policies);
    }

    /// `/clear-caa`: removes all CAA properties of `host`.
    pub fn clear_caa(&self, host: &str) {
        self.write().dns.caa.remove(&normalize_name(host));
    }

    /// `/set-txt`: adds one TXT value for `host` (values accumulate, as in pebble-challtestsrv).
    pub fn set_txt(&self, host: &str, value: &str) {
        let key = normalize_name(host);
        let mut d = self.write();
        d.dns.txt.entry(key).or_default().push(value.to_owned());
    }

    /// `/clear-txt`: removes all TXT values of `host`.
    pub fn clear_txt(&self, host: &str) {
        self.write().dns.txt.remove(&normalize_name(host));
    }

    /// `/set-cname`: makes `host` an alias of `target` (replacing an earlier alias).
    pub fn set_cname(&self, host: &str, target: &str) {
        let (key, target) = (normalize_name(host), normalize_name(target));
        self.write().dns.cname.insert(key, target);
    }

    /// `/clear-cname`: removes the alias of `host`.
    pub fn clear_cname(&self, host: &str) {
        self.write().dns.cname.remove(&normalize_name(host));
    }

    /// `/set-servfail`: every query for `host` gets SERVFAIL, whatever records it has.
    pub fn set_servfail(&self, host: &str) {
        self.write().dns.servfail.insert(normalize_name(host));
    }

    /// `/clear-servfail`: `host` is answered normally again.
    pub fn clear_servfail(&self, host: &str) {
        self.write().dns.servfail.remove(&normalize_name(host));
    }

    /// `/add-http01`: serves `keyauth` at `/.well-known/acme-challenge/<token>`.
    pub fn add_http01(&self, token: &str, keyauth: &str) {
        let mut d = self.write();
        d.http01.insert(token.to_owned(), keyauth.to_owned());
    }

    /// `/del-http01`: stops serving `token`.
    pub fn del_http01(&self, token: &str) {
        self.write().http01.remove(token);
    }

    /// The key authorization served for `token`, if any.
    pub fn http01(&self, token: &str) -> Option<String> {
        self.read().http01.get(token).cloned()
    }

    /// `/add-redirect`: plain-HTTP requests for exactly `path` get a 302 to `target`.
    pub fn add_redirect(&self, path: &str, target: &str) {
        let mut d = self.write();
        d.redirects.insert(path.to_owned(), target.to_owned());
    }

    /// `/del-redirect`: removes the redirect of `path`.
    pub fn del_redirect(&self, path: &str) {
        self.write().redirects.remove(path);
    }

    /// The redirect target of `path`, if any.
    pub fn redirect(&self, path: &str) -> Option<String> {
        self.read().redirects.get(path).cloned()
    }

    /// `/add-tlsalpn01`: RFC 8737 §3: builds the self-signed acmeIdentifier certificate for
    /// `host` from `keyauth` and serves it to ClientHellos with that SNI and ALPN `acme-tls/1`.
    /// For an IP address (RFC 8738 §6) the certificate's SAN is that address and it is served
    /// to the SNI of its reverse-mapping name (`4.3.2.1.in-addr.arpa`, `...ip6.arpa`).
    pub fn add_tlsalpn01(&self, host: &str, keyauth: &str) -> Result<(), Error> {
        let name = history_key(host);
        let cert = crate::tlsalpn01::challenge_cert(&name, keyauth)?;
        self.write().tlsalpn01.insert(sni_key(&name), cert);
        Ok(())
    }

    /// `/del-tlsalpn01`: stops serving a certificate for `host`.
    pub fn del_tlsalpn01(&self, host: &str) {
        self.write().tlsalpn01.remove(&sni_key(&history_key(host)));
    }

    /// The tls-alpn-01 certificate for an SNI name, if one was added.
    pub(crate) fn tlsalpn01_cert(&self, sni: &str) -> Option<Arc<CertifiedKey>> {
        self.read().tlsalpn01.get(&history_key(sni)).cloned()
    }

    /// Records an event under its host (bounded per host and kind).
    pub fn record(&self, event: RequestEvent) {
        let slot = (event.key(), event.kind());
        let mut d = self.write();
        let list = d.history.entry(slot).or_default();
        if list.len() >= MAX_EVENTS_PER_HOST {
            list.pop_front();
        }
        list.push_back(event);
    }

    /// `/http-request-history` etc.: the events of one kind for `host`, oldest first.
    pub fn request_history(&self, host: &str, kind: EventKind) -> Vec<RequestEvent> {
        let slot = (history_key(host), kind);
        self.read()
            .history
            .get(&slot)
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// `/clear-request-history`: forgets the events of one kind for `host`.
    pub fn clear_request_history(&self, host: &str, kind: EventKind) {
        self.write().history.remove(&(history_key(host), kind));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize() {
        for (raw, want) in [
            ("Example.COM", "example.com."),
            ("example.com.", "example.com."),
            ("example.com..", "example.com."),
            (" a.b ", "a.b."),
        ] {
            assert_eq!(normalize_name(raw), want, "{raw}");
        }
    }

    #[test]
    fn txt_values_accumulate_and_clear() {
        let s = ChallState::default();
        s.set_txt("_acme-challenge.Example.com", "a");
        s.set_txt("_acme-challenge.example.com.", "b");
        assert_eq!(
            s.read().dns.txt["_acme-challenge.example.com."],
            vec!["a".to_owned(), "b".to_owned()]
        );
        s.clear_txt("_ACME-challenge.example.com");
        assert!(s.read().dns.txt.is_empty());
    }
}

/// The SNI a validator sends for `host`: the name itself, or for an IP address its
/// reverse-mapping name (RFC 8738 §6).
fn sni_key(host: &str) -> String {
    match host.trim_start_matches('[').trim_end_matches(']').parse() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s + "ip6.arpa"
        }
        Err(_) => host.to_owned(),
    }
}

#[cfg(test)]
mod sni_tests {
    #[test]
    fn ip_hosts_answer_their_reverse_names() {
        let rows = [
            ("example.com", "example.com"),
            ("127.0.0.1", "1.0.0.127.in-addr.arpa"),
            (
                "::1",
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
            ),
            (
                "2001:db8::2",
                "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
            ),
        ];
        for (host, sni) in rows {
            assert_eq!(super::sni_key(host), sni, "{host}");
        }
    }
}
