//! The catalogue of checks, kept as data in `conformance/catalogue.toml`; the code implements
//! each entry by id and `conformance/CATALOGUE.md` is generated from it.

use crate::model::Level;
use serde::Deserialize;

/// The catalogue file, compiled in.
pub const CATALOGUE_TOML: &str = include_str!("../../../conformance/catalogue.toml");

/// One catalogue entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Stable id, `area.name`.
    pub id: String,
    /// RFC (or Internet-Draft) and section, e.g. `RFC 8555 §6.5`.
    pub section: String,
    /// Requirement level.
    pub level: Level,
    /// One-line title.
    pub title: String,
    /// What the check sends.
    pub sends: String,
    /// What it accepts as a pass.
    pub expects: String,
    /// The check judges the server's rate limits, so a `429 rateLimited` answer is its
    /// evidence; every other check is skipped when a request it needs is rate limited.
    #[serde(default)]
    pub rate_limits: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    check: Vec<Entry>,
}

/// The parsed catalogue, in file order.
pub fn entries() -> Vec<Entry> {
    let f: File = toml::from_str(CATALOGUE_TOML).expect("conformance/catalogue.toml parses");
    f.check
}

/// `conformance/CATALOGUE.md`, rendered from the catalogue.
pub fn render_markdown() -> String {
    let entries = entries();
    let mut out = String::from(
        "# Cobble conformance catalogue\n\n\
         Generated from `conformance/catalogue.toml` by \
         `UPDATE_CATALOGUE=1 cargo test -p cobble-conformance catalogue_md`; do not edit by hand.\n\n\
         Levels follow RFC 2119: a failed **MUST** makes `cobble conformance` exit non-zero, a failed \
         **SHOULD** is reported only, a **MAY** check runs only where the server offers the feature. \
         Where the RFC allows several answers, every one of them passes.\n\n",
    );
    let (mut must, mut should, mut may) = (0, 0, 0);
    for e in &entries {
        match e.level {
            Level::Must => must += 1,
            Level::Should => should += 1,
            Level::May => may += 1,
        }
    }
    out.push_str(&format!(
        "{} checks: {must} MUST, {should} SHOULD, {may} MAY.\n",
        entries.len()
    ));
    let mut area = String::new();
    for e in &entries {
        let a = e.id.split('.').next().unwrap_or_default().to_owned();
        if a != area {
            out.push_str(&format!("\n## {}\n\n", area_title(&a)));
            out.push_str("| id | section | level | check | sends | expects |\n");
            out.push_str("| --- | --- | --- | --- | --- | --- |\n");
            area = a;
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            e.id,
            e.section,
            e.level.as_str(),
            cell(&e.title),
            cell(&e.sends),
            cell(&e.expects)
        ));
    }
    out
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The heading of an id prefix.
pub fn area_title(prefix: &str) -> &'static str {
    match prefix {
        "dir" => "Directory (RFC 8555 §7.1.1)",
        "nonce" => "Nonces (RFC 8555 §6.5, §7.2)",
        "jws" => "Request authentication (RFC 8555 §6.2-§6.4)",
        "acct" => "Accounts (RFC 8555 §7.3)",
        "eab" => "External Account Binding (RFC 8555 §7.3.4)",
        "kc" => "Account key change (RFC 8555 §7.3.5)",
        "order" => "Orders and identifiers (RFC 8555 §7.4, RFC 8738)",
        "preauth" => "Pre-authorization (RFC 8555 §7.4.1)",
        "profile" => "Profiles (draft-ietf-acme-profiles)",
        "authz" => "Authorizations and challenges (RFC 8555 §7.5, §8, RFC 8737)",
        "caa" => "CAA (RFC 8659, RFC 8657)",
        "fin" => "Finalize (RFC 8555 §7.4)",
        "cert" => "Certificate download (RFC 8555 §7.4.2)",
        "rev" => "Revocation (RFC 8555 §7.6)",
        "ari" => "Renewal information (RFC 9773)",
        "prob" => "Problem documents (RFC 8555 §6.7, RFC 7807)",
        "robust" => "Robustness",
        _ => "Other",
    }
}
