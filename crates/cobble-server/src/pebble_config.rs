//! Pebble's JSON configuration (`{"pebble": {...}}`, as `pebble -config FILE` reads it) and
//! its mapping onto Cobble's [`ServerConfig`], for the `cobble` binary's Pebble drop-in.
//! Go's JSON decoding matches field names without regard to case and ignores fields it
//! does not know; so does this. Untrusted text reaches it, so it is a fuzz target
//! (`fuzz/`, `pebble_config`).

use crate::config::ServerConfig;
use cobble_core::go_addr::AddrError;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a Pebble config file could not be read or mapped; the messages are the drop-in's.
#[derive(Debug, thiserror::Error)]
pub enum PebbleConfigError {
    /// The text is not JSON.
    #[error("not JSON")]
    NotJson(#[source] serde_json::Error),
    /// The `pebble` object does not have the shape of Pebble's config.
    #[error("the \"pebble\" object")]
    Shape(#[source] serde_json::Error),
    /// `listenAddress` is not a Go listen address.
    #[error("listenAddress {addr:?}")]
    ListenAddress {
        /// As written.
        addr: String,
        /// Why not.
        #[source]
        source: AddrError,
    },
    /// `listenAddress` is missing or empty: the ACME listener cannot be off.
    #[error("listenAddress is empty")]
    NoListenAddress,
    /// `managementListenAddress` is not a Go listen address.
    #[error("managementListenAddress {addr:?}")]
    ManagementListenAddress {
        /// As written.
        addr: String,
        /// Why not.
        #[source]
        source: AddrError,
    },
    /// `keyAlgorithm` is neither `rsa` nor `ecdsa`.
    #[error("keyAlgorithm {0:?} is not one of [\"rsa\", \"ecdsa\"] (invalid key algorithm)")]
    KeyAlgorithm(String),
    /// Cobble's profile table is empty, so Pebble's profiles have nothing to start from.
    #[error("Cobble has no built-in profile to base Pebble's on")]
    NoBuiltInProfile,
}

/// Why a Go dial address (`-dnsserver`) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialAddrError {
    /// Not `HOST:PORT` or `:PORT`, or the port is not a number up to 65535.
    #[error("{addr:?} is not HOST:PORT")]
    NotHostPort {
        /// As written.
        addr: String,
        /// The port's error, when there is a port.
        #[source]
        source: Option<std::num::ParseIntError>,
    },
    /// A host other than an IP address or `localhost` (the drop-in resolves no names).
    #[error("{0:?} is not an IP address and port")]
    NotIp(String),
}

/// The `pebble` object of Pebble's config file; each field is named as its key lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PebbleConfig {
    /// ACME listener, Go form (`0.0.0.0:14000`, `:14000`, `[::1]:14000`).
    pub listenaddress: String,
    /// Management listener; empty or null turns it off.
    pub managementlistenaddress: Option<String>,
    /// Port http-01 validation connects to.
    pub httpport: Option<u16>,
    /// Port tls-alpn-01 validation connects to.
    pub tlsport: Option<u16>,
    /// HTTPS certificate (PEM) of both listeners.
    pub certificate: Option<PathBuf>,
    /// Its private key (PEM).
    pub privatekey: Option<PathBuf>,
    /// OCSP URL for issued certificates (Cobble serves its own responder instead).
    pub ocspresponderurl: Option<String>,
    /// Refuse newAccount without External Account Binding.
    pub externalaccountbindingrequired: bool,
    /// Pre-made EAB keys: kid -> base64url HMAC key.
    pub externalaccountmackeys: BTreeMap<String, String>,
    /// `meta.caaIdentities`; when given, Cobble also checks CAA against them.
    pub caaidentities: Option<Vec<String>>,
    /// Names (and their subdomains) refused at newOrder.
    pub domainblocklist: Vec<String>,
    /// `rsa` (the default) or `ecdsa`: the key type of the generated CA.
    pub keyalgorithm: Option<String>,
    /// Certificate profiles by name.
    pub profiles: BTreeMap<String, PebbleProfile>,
    /// Retry-After seconds on pending authorizations and orders.
    pub retryafter: Option<RetryAfter>,
    /// Deprecated: the default profile's validity, in seconds.
    pub certificatevalidityperiod: Option<u64>,
}

/// One of Pebble's profiles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PebbleProfile {
    /// Shown in `meta.profiles`.
    pub description: String,
    /// Put the first name in the subject CN.
    pub promotecommonname: bool,
    /// Certificate lifetime in seconds; 0 means Pebble's default, 90 days.
    pub validityperiod: u64,
}

/// Pebble's `retryAfter` object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryAfter {
    /// Seconds, for pending authorizations.
    pub authz: u64,
    /// Seconds, for orders being processed.
    pub order: u64,
}

/// Pebble's lifetime for a profile without one (`defaultValidityPeriod`): 90 days.
const PEBBLE_DEFAULT_VALIDITY: u64 = 7_776_000;

/// Decodes JSON into a struct as Go's `encoding/json` does: a member sets the field whose
/// name it matches without regard to ASCII case, members are read in document order (of
/// two that name one field, the later wins), `null` leaves a field as it was, unknown
/// members are skipped. Map keys (EAB kids, profile names) are data, kept as written. Not
/// as Go: a repeated struct member replaces the earlier one instead of merging into it, and
/// only ASCII letters fold.
macro_rules! go_struct {
    ($ty:ident, $what:literal, [$($field:ident),* $(,)?]) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_none<E>(self) -> Result<$ty, E> {
                        Ok($ty::default())
                    }
                    fn visit_unit<E>(self) -> Result<$ty, E> {
                        Ok($ty::default())
                    }
                    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<$ty, D2::Error> {
                        d.deserialize_map(self)
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<$ty, A::Error> {
                        let mut out = $ty::default();
                        while let Some(key) = m.next_key::<String>()? {
                            match key.to_ascii_lowercase().as_str() {
                                $(stringify!($field) => {
                                    if let Some(v) = m.next_value::<Option<_>>()? {
                                        out.$field = v;
                                    }
                                })*
                                _ => {
                                    m.next_value::<IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_option(V)
            }
        }
    };
}

go_struct!(
    PebbleConfig,
    "Pebble's configuration object",
    [
        listenaddress,
        managementlistenaddress,
        httpport,
        tlsport,
        certificate,
        privatekey,
        ocspresponderurl,
        externalaccountbindingrequired,
        externalaccountmackeys,
        caaidentities,
        domainblocklist,
        keyalgorithm,
        profiles,
        retryafter,
        certificatevalidityperiod,
    ]
);
go_struct!(
    PebbleProfile,
    "a profile object",
    [description, promotecommonname, validityperiod]
);
go_struct!(RetryAfter, "a retryAfter object", [authz, order]);

/// The whole file, `{"pebble": {...}}`. Text that is JSON but not an object means no
/// `pebble` object, so Pebble's defaults (as before; Go would refuse it).
struct ConfigFile(PebbleConfig);

impl<'de> Deserialize<'de> for ConfigFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PebbleConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<PebbleConfig, A::Error> {
                let mut out = PebbleConfig::default();
                while let Some(key) = m.next_key::<String>()? {
                    if key.eq_ignore_ascii_case("pebble") {
                        if let Some(p) = m.next_value::<Option<PebbleConfig>>()? {
                            out = p;
                        }
                    } else {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(out)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<PebbleConfig, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(PebbleConfig::default())
            }
            fn visit_unit<E>(self) -> Result<PebbleConfig, E> {
                Ok(PebbleConfig::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<PebbleConfig, E> {
                Ok(PebbleConfig::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<PebbleConfig, E> {
                Ok(PebbleConfig::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<PebbleConfig, E> {
                Ok(PebbleConfig::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<PebbleConfig, E> {
                Ok(PebbleConfig::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<PebbleConfig, E> {
                Ok(PebbleConfig::default())
            }
        }
        d.deserialize_any(V).map(ConfigFile)
    }
}

impl PebbleConfig {
    /// Reads Pebble's config file text: first whether it is JSON at all (as Go checks the
    /// whole text before decoding), then the `pebble` object.
    pub fn parse(text: &str) -> Result<Self, PebbleConfigError> {
        serde_json::from_str::<IgnoredAny>(text).map_err(PebbleConfigError::NotJson)?;
        // Syntax errors the first pass skips (a key with a lone surrogate escape is not
        // checked until it is read as a string) are still "not JSON".
        let ConfigFile(p) = serde_json::from_str(text).map_err(|e| {
            if e.is_data() {
                PebbleConfigError::Shape(e)
            } else {
                PebbleConfigError::NotJson(e)
            }
        })?;
        Ok(p)
    }

    /// The server configuration this Pebble config means, on top of `base` (which carries
    /// the drop-in's defaults: a throwaway data dir and Pebble's lenient policies).
    pub fn apply(&self, mut c: ServerConfig) -> Result<ServerConfig, PebbleConfigError> {
        c.listen = go_listen_addr(&self.listenaddress)
            .map_err(|source| PebbleConfigError::ListenAddress {
                addr: self.listenaddress.clone(),
                source,
            })?
            .ok_or(PebbleConfigError::NoListenAddress)?;
        c.admin_listen = match self.managementlistenaddress.as_deref() {
            None => None,
            Some(a) => {
                go_listen_addr(a).map_err(|source| PebbleConfigError::ManagementListenAddress {
                    addr: a.to_owned(),
                    source,
                })?
            }
        };
        if let Some(p) = self.httpport {
            c.http01_port = p;
        }
        if let Some(p) = self.tlsport {
            c.tlsalpn01_port = p;
        }
        match (&self.certificate, &self.privatekey) {
            (Some(cert), Some(key)) if !cert.as_os_str().is_empty() => {
                c.tls_cert = Some(cert.clone());
                c.tls_key = Some(key.clone());
            }
            _ => {}
        }
        if let Some(url) = self.ocspresponderurl.as_deref().filter(|u| !u.is_empty()) {
            tracing::warn!(
                url,
                "ocspResponderURL is ignored: Cobble names its own OCSP responder in certificates"
            );
        }
        c.eab_required = self.externalaccountbindingrequired;
        c.eab_mac_keys = self.externalaccountmackeys.clone();
        if let Some(ids) = self.caaidentities.as_ref().filter(|i| !i.is_empty()) {
            c.caa_identities = ids.clone();
            c.caa_check = true;
        } else {
            c.caa_identities = vec!["pebble.letsencrypt.org".into()];
        }
        c.blocked_domains = self.domainblocklist.clone();
        if let Some(alg) = self.keyalgorithm.as_deref().filter(|a| !a.is_empty()) {
            c.ca.key_type = match alg {
                "rsa" => cobble_ca::KeyType::Rsa2048,
                "ecdsa" => cobble_ca::KeyType::EcdsaP256,
                other => return Err(PebbleConfigError::KeyAlgorithm(other.to_owned())),
            };
        }
        c.profiles = self.profiles()?;
        Ok(c)
    }

    /// Pebble's profiles as Cobble's, `default` first (Cobble's first profile is the one
    /// an order without `profile` gets, as Pebble's `default` is).
    fn profiles(&self) -> Result<Vec<cobble_ca::Profile>, PebbleConfigError> {
        let base = cobble_ca::Profile::defaults()
            .into_iter()
            .next()
            .ok_or(PebbleConfigError::NoBuiltInProfile)?;
        let make = |name: &str, p: &PebbleProfile| {
            let validity = if p.validityperiod == 0 || p.validityperiod >= 9_223_372_038 {
                PEBBLE_DEFAULT_VALIDITY
            } else {
                p.validityperiod
            };
            cobble_ca::Profile {
                name: name.to_owned(),
                description: p.description.clone(),
                validity_secs: validity,
                promote_common_name: p.promotecommonname,
                // Pebble's CSR key policy: RSA-1024 keys too.
                allowed_keys: cobble_ca::AllowedKeys::pebble(),
                ..base.clone()
            }
        };
        if self.profiles.is_empty() {
            let validity = self.certificatevalidityperiod.unwrap_or(0);
            return Ok(vec![make(
                "default",
                &PebbleProfile {
                    description: "The default profile".into(),
                    promotecommonname: false,
                    validityperiod: validity,
                },
            )]);
        }
        let mut out: Vec<cobble_ca::Profile> =
            self.profiles.iter().map(|(n, p)| make(n, p)).collect();
        if let Some(i) = out.iter().position(|p| p.name == "default") {
            let d = out.remove(i);
            out.insert(0, d);
        }
        Ok(out)
    }
}

/// A Go listen address: `:PORT` and `0.0.0.0:PORT` are every interface, `localhost:PORT`
/// is 127.0.0.1; empty is `None`.
pub fn go_listen_addr(s: &str) -> Result<Option<SocketAddr>, AddrError> {
    cobble_core::go_addr::parse_listen_addr(s)
}

/// A Go dial address for `-dnsserver`: `:PORT` means this host (127.0.0.1).
pub fn go_dial_addr(s: &str) -> Result<SocketAddr, DialAddrError> {
    let port = |p: &str| {
        p.parse::<u16>().map_err(|e| DialAddrError::NotHostPort {
            addr: s.to_owned(),
            source: Some(e),
        })
    };
    if let Some(p) = s.strip_prefix(':') {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port(p)?)));
    }
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    let (host, p) = s
        .rsplit_once(':')
        .ok_or_else(|| DialAddrError::NotHostPort {
            addr: s.to_owned(),
            source: None,
        })?;
    if host != "localhost" {
        return Err(DialAddrError::NotIp(s.to_owned()));
    }
    Ok(SocketAddr::from(([127, 0, 0, 1], port(p)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTANT_ACME: &str = r#"{
      "pebble": {
        "listenAddress": "[::1]:5557",
        "managementListenAddress": "[::1]:5558",
        "certificate": "tests/testdata/server.pem",
        "privateKey": "tests/testdata/server.key",
        "httpPort": 5559,
        "tlsPort": 5560,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": true,
        "externalAccountMACKeys": {"kid-1": "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"},
        "domainBlocklist": ["blocked-domain.example"],
        "retryAfter": {"authz": 3, "order": 5},
        "profiles": {
          "shortlived": {"description": "short", "validityPeriod": 518400},
          "default": {"description": "The profile you know and love", "validityPeriod": 7776000}
        },
        "unknownField": 1
      }
    }"#;

    #[test]
    fn maps_instant_acme_s_config() {
        let p = PebbleConfig::parse(INSTANT_ACME).unwrap();
        let c = p.apply(ServerConfig::default()).unwrap();
        assert_eq!(c.listen, "[::1]:5557".parse().unwrap());
        assert_eq!(c.admin_listen, Some("[::1]:5558".parse().unwrap()));
        assert_eq!(c.http01_port, 5559);
        assert_eq!(c.tlsalpn01_port, 5560);
        assert_eq!(
            c.tls_cert.as_deref(),
            Some(std::path::Path::new("tests/testdata/server.pem"))
        );
        assert!(c.eab_required);
        assert_eq!(c.eab_mac_keys.len(), 1);
        assert_eq!(c.blocked_domains, vec!["blocked-domain.example"]);
        let names: Vec<_> = c.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["default", "shortlived"], "default first");
        assert_eq!(c.profiles[1].validity_secs, 518_400);
        assert_eq!(c.caa_identities, vec!["pebble.letsencrypt.org"]);
    }

    #[test]
    fn field_names_match_without_case_and_defaults_are_pebble_s() {
        let p = PebbleConfig::parse(
            r#"{"Pebble": {"ListenAddress": ":14000", "ManagementListenAddress": "",
                "KeyAlgorithm": "ecdsa", "CAAIdentities": ["ca.test"]}}"#,
        )
        .unwrap();
        let c = p
            .apply(ServerConfig {
                caa_check: false,
                ..ServerConfig::default()
            })
            .unwrap();
        assert_eq!(c.listen, "0.0.0.0:14000".parse().unwrap());
        assert_eq!(
            c.admin_listen, None,
            "empty turns the management listener off"
        );
        assert_eq!(c.ca.key_type, cobble_ca::KeyType::EcdsaP256);
        assert!(c.caa_check, "caaIdentities turns CAA checking on");
        assert_eq!(c.caa_identities, vec!["ca.test"]);
        assert_eq!(c.profiles.len(), 1);
        assert_eq!(c.profiles[0].name, "default");
        assert_eq!(c.profiles[0].validity_secs, PEBBLE_DEFAULT_VALIDITY);
    }

    /// Found by the `pebble_config` fuzz target (fuzz/corpus/pebble_config/regress-*):
    /// every key was lower-cased, EAB kids and profile names (map keys, data) too, and of
    /// two members naming one field in different case, the one first in byte order won.
    #[test]
    fn map_keys_stay_as_written_and_the_later_member_wins() {
        let p = PebbleConfig::parse(
            r#"{"pebble": {"listenAddress": "127.0.0.1:1", "LISTENADDRESS": "127.0.0.1:2",
                "externalAccountMACKeys": {"Kid-1": "a2V5"},
                "profiles": {"shortLived": {"VALIDITYPERIOD": 1, "validityPeriod": 2}},
                "httpPort": 80, "HttpPort": null}}"#,
        )
        .unwrap();
        assert_eq!(
            p.listenaddress, "127.0.0.1:2",
            "the later member wins, as in Go"
        );
        assert_eq!(
            p.externalaccountmackeys.keys().collect::<Vec<_>>(),
            ["Kid-1"]
        );
        assert_eq!(p.profiles.keys().collect::<Vec<_>>(), ["shortLived"]);
        assert_eq!(p.profiles["shortLived"].validityperiod, 2);
        assert_eq!(
            p.httpport,
            Some(80),
            "null leaves a field as it was, as in Go"
        );
        let c = p.apply(ServerConfig::default()).unwrap();
        assert!(c.eab_mac_keys.contains_key("Kid-1"));
        assert_eq!(c.profiles[0].name, "shortLived");
    }

    #[test]
    fn json_that_is_not_an_object_is_pebble_s_defaults() {
        for text in ["null", "1", "[1, {}]", "\"x\"", "{\"pebble\": null}", "{}"] {
            assert_eq!(PebbleConfig::parse(text).unwrap(), PebbleConfig::default());
        }
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let rows = [
            ("not json", "not JSON"),
            (
                r#"{"pebble": {"listenAddress": ""}}"#,
                "listenAddress is empty",
            ),
            (
                r#"{"pebble": {"listenAddress": "nowhere"}}"#,
                "listenAddress \"nowhere\"",
            ),
            (
                r#"{"pebble": {"listenAddress": ":1", "keyAlgorithm": "dsa"}}"#,
                "keyAlgorithm \"dsa\"",
            ),
            (
                r#"{"pebble": {"httpPort": "x"}}"#,
                "the \"pebble\" object: invalid type: string \"x\", expected u16",
            ),
            (r#"{"pebble": {"httpPort": "x"}} x"#, "not JSON"),
            (r#"{"pebble": []}"#, "the \"pebble\" object"),
            // Found by the fuzz target: a lone surrogate escape in a key passed the syntax
            // check and was called a shape error (Go would read it as U+FFFD).
            (r#"{"pebble": {"Pr\ud800ofiles": {}}}"#, "not JSON"),
        ];
        for (text, want) in rows {
            let err = PebbleConfig::parse(text)
                .and_then(|p| p.apply(ServerConfig::default()))
                .unwrap_err();
            let chain = chain(&err);
            assert!(chain.contains(want), "{text}: {chain}");
        }
    }

    /// The error and its sources, as anyhow's `{:#}` prints them in the binary.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(s) = next {
            out.push_str(": ");
            out.push_str(&s.to_string());
            next = s.source();
        }
        out
    }

    #[test]
    fn dial_addresses() {
        assert_eq!(
            go_dial_addr(":8053").unwrap(),
            "127.0.0.1:8053".parse().unwrap()
        );
        assert_eq!(
            go_dial_addr("[::1]:8053").unwrap(),
            "[::1]:8053".parse().unwrap()
        );
        assert_eq!(
            chain(&go_dial_addr("8053").unwrap_err()),
            "\"8053\" is not HOST:PORT"
        );
        assert_eq!(
            chain(&go_dial_addr(":x").unwrap_err()),
            "\":x\" is not HOST:PORT: invalid digit found in string"
        );
        assert_eq!(
            chain(&go_dial_addr("dns.example:53").unwrap_err()),
            "\"dns.example:53\" is not an IP address and port"
        );
        assert_eq!(
            go_dial_addr("localhost:53").unwrap(),
            "127.0.0.1:53".parse().unwrap()
        );
    }
}
