//! Certificate profiles (draft-ietf-acme-profiles; Let's Encrypt's `classic`/`shortlived`):
//! what a leaf looks like and which subject keys it may carry. Policy as data: the server's
//! TOML config can define more, in the same kebab-case shape.

use crate::csr::CsrKey;
use serde::{Deserialize, Serialize};

/// An elliptic curve a leaf key may use (RFC 5480 §2.1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EcCurve {
    /// NIST P-256 (secp256r1).
    #[serde(rename = "P-256", alias = "p256")]
    P256,
    /// NIST P-384 (secp384r1).
    #[serde(rename = "P-384", alias = "p384")]
    P384,
    /// NIST P-521 (secp521r1), checked and certified through the `p521` crate (ring has
    /// none); the Pebble drop-in's policy allows it, Boulder's default does not.
    #[serde(rename = "P-521", alias = "p521")]
    P521,
}

impl EcCurve {
    /// The curve name, e.g. `P-256`.
    pub fn name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::P521 => "P-521",
        }
    }
}

/// Which subject public keys a profile accepts (Boulder's goodkey, as a table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct AllowedKeys {
    /// Exact RSA modulus sizes in bits.
    pub rsa_sizes: Vec<usize>,
    /// ECDSA curves.
    pub ec_curves: Vec<EcCurve>,
    /// Whether Ed25519 (RFC 8410) subject keys are accepted.
    pub ed25519: bool,
}

impl Default for AllowedKeys {
    /// Boulder's defaults: RSA 2048/3072/4096, ECDSA P-256/P-384, no Ed25519.
    fn default() -> Self {
        AllowedKeys {
            rsa_sizes: vec![2048, 3072, 4096],
            ec_curves: vec![EcCurve::P256, EcCurve::P384],
            ed25519: false,
        }
    }
}

impl AllowedKeys {
    /// Pebble's leniency, for the Pebble drop-in: RSA from 1024 bits and ECDSA P-521 (Pebble
    /// certifies both) besides Boulder's set.
    pub fn pebble() -> Self {
        AllowedKeys {
            rsa_sizes: vec![1024, 2048, 3072, 4096],
            ec_curves: vec![EcCurve::P256, EcCurve::P384, EcCurve::P521],
            ..Self::default()
        }
    }

    /// Whether a CSR subject key of this kind is accepted (RFC 8555 §7.4 badCSR otherwise).
    pub fn allows(&self, key: CsrKey) -> bool {
        match key {
            CsrKey::Rsa(bits) => self.rsa_sizes.contains(&bits),
            CsrKey::Ec(curve) => self.ec_curves.contains(&curve),
            CsrKey::Ed25519 => self.ed25519,
        }
    }

    /// The accepted keys as a readable list, e.g. `RSA-2048, ECDSA P-256`, for problem details.
    pub fn describe(&self) -> String {
        let mut v: Vec<String> = self.rsa_sizes.iter().map(|b| format!("RSA-{b}")).collect();
        v.extend(self.ec_curves.iter().map(|c| format!("ECDSA {}", c.name())));
        if self.ed25519 {
            v.push("Ed25519".into());
        }
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    }
}

/// A certificate profile: validity, key policy and extension choices for leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Profile {
    /// The name clients send in `newOrder`'s `profile` field.
    pub name: String,
    /// A human description, shown in the directory's `meta.profiles`.
    #[serde(default)]
    pub description: String,
    /// notAfter - notBefore + 1 s, in seconds (RFC 5280 §4.1.2.5: validity is inclusive).
    pub validity_secs: u64,
    /// Accepted subject keys.
    #[serde(default)]
    pub allowed_keys: AllowedKeys,
    /// Add the clientAuth EKU beside serverAuth.
    #[serde(default)]
    pub client_auth: bool,
    /// Put the first DNS name (if at most 64 characters) in the subject CN.
    #[serde(default)]
    pub promote_common_name: bool,
    /// Allow `*.` names.
    #[serde(default = "yes")]
    pub allow_wildcard: bool,
    /// Allow IP address identifiers (RFC 8738).
    #[serde(default = "yes")]
    pub allow_ip: bool,
    /// Honour a CSR's TLS Feature status_request extension (RFC 7633, OCSP must-staple).
    #[serde(default = "yes")]
    pub must_staple_allowed: bool,
}

fn yes() -> bool {
    true
}

/// 90 days: Let's Encrypt's classic lifetime.
pub const NINETY_DAYS: u64 = 90 * 86_400;
/// 160 hours: Let's Encrypt's shortlived lifetime (just under 7 days).
pub const SHORTLIVED: u64 = 160 * 3_600;

impl Profile {
    /// The built-in profiles, the default (`classic`) first.
    pub fn defaults() -> Vec<Profile> {
        vec![
            Profile {
                name: "classic".into(),
                description: "90 days; RSA 2048-4096 or ECDSA P-256/P-384; serverAuth; no CN"
                    .into(),
                validity_secs: NINETY_DAYS,
                allowed_keys: AllowedKeys::default(),
                client_auth: false,
                promote_common_name: false,
                allow_wildcard: true,
                allow_ip: true,
                must_staple_allowed: true,
            },
            Profile {
                name: "shortlived".into(),
                description: "160 hours (as Let's Encrypt's shortlived); serverAuth; no CN".into(),
                validity_secs: SHORTLIVED,
                allowed_keys: AllowedKeys::default(),
                client_auth: false,
                promote_common_name: false,
                allow_wildcard: true,
                allow_ip: true,
                must_staple_allowed: false,
            },
            Profile {
                name: "certigna".into(),
                description: "Certigna-like: RSA 2048/3072 only, CN set, 1 year, DNS names only"
                    .into(),
                validity_secs: 365 * 86_400,
                allowed_keys: AllowedKeys {
                    rsa_sizes: vec![2048, 3072],
                    ec_curves: vec![],
                    ed25519: false,
                },
                client_auth: false,
                promote_common_name: true,
                allow_wildcard: true,
                allow_ip: false,
                must_staple_allowed: false,
            },
        ]
    }

    /// The built-in profile called `name`.
    pub fn named(name: &str) -> Option<Profile> {
        Profile::defaults().into_iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_table() {
        // (name, validity, RSA sizes, curves, promote CN, clientAuth)
        type Row = (&'static str, u64, &'static [usize], usize, bool, bool);
        let rows: &[Row] = &[
            ("classic", NINETY_DAYS, &[2048, 3072, 4096], 2, false, false),
            (
                "shortlived",
                SHORTLIVED,
                &[2048, 3072, 4096],
                2,
                false,
                false,
            ),
            ("certigna", 365 * 86_400, &[2048, 3072], 0, true, false),
        ];
        let defaults = Profile::defaults();
        assert_eq!(defaults[0].name, "classic", "classic is the default");
        for (name, validity, rsa, curves, cn, client) in rows {
            let p = Profile::named(name).expect(name);
            assert_eq!(p.validity_secs, *validity, "{name}");
            assert_eq!(p.allowed_keys.rsa_sizes, *rsa, "{name}");
            assert_eq!(p.allowed_keys.ec_curves.len(), *curves, "{name}");
            assert_eq!(p.promote_common_name, *cn, "{name}");
            assert_eq!(p.client_auth, *client, "{name}");
        }
    }

    #[test]
    fn deserializes_kebab_case_with_defaults() {
        let p: Profile = serde_json::from_value(serde_json::json!({
            "name": "mtls",
            "validity-secs": 86400,
            "client-auth": true,
            "allowed-keys": {"ec-curves": ["P-256"], "ed25519": true},
        }))
        .unwrap();
        assert!(p.client_auth && p.allow_wildcard && p.allow_ip && p.must_staple_allowed);
        assert_eq!(p.allowed_keys.rsa_sizes, vec![2048, 3072, 4096]);
        assert_eq!(
            p.allowed_keys.describe(),
            "RSA-2048, RSA-3072, RSA-4096, ECDSA P-256, Ed25519"
        );
        let bad = serde_json::from_value::<Profile>(serde_json::json!({
            "name": "x", "validity-secs": 1, "validity": 2
        }));
        assert!(bad.unwrap_err().to_string().contains("unknown field"));
    }
}
