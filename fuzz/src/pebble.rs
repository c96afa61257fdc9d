//! Target `pebble_config` (feature `server`): Pebble's JSON config file as the `cobble`
//! binary's drop-in reads it (`pebble -config FILE`), through
//! `cobble_server::pebble_config`, and its mapping onto `ServerConfig`.

use cobble_server::config::ServerConfig;
use cobble_server::pebble_config::{PebbleConfig, go_listen_addr};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;

/// JSON as written: object members in document order, duplicates kept, so that a
/// transformed document differs from its input only by the transformation.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as serde_json reads it.
    Num(serde_json::Number),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object's members in order.
    Obj(Vec<(String, Json)>),
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Num(v.into()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Num(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Num))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Arr(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry()? {
            out.push((k, v));
        }
        Ok(Json::Obj(out))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

impl Json {
    /// Compact JSON text, members in order.
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => out.push_str(&n.to_string()),
            Json::Str(s) => out.push_str(&serde_json::to_string(s).expect("a string prints")),
            Json::Arr(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Obj(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).expect("a string prints"));
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    /// The last member named `key` without regard to ASCII case (Go's field matching: a
    /// later member overwrites an earlier one).
    fn field(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m
                .iter()
                .rev()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The keys of a map-valued object, as written, the last of duplicates kept.
    fn map_keys(&self) -> Option<Vec<String>> {
        match self {
            Json::Obj(m) => {
                let mut keys: Vec<String> = m.iter().map(|(k, _)| k.clone()).collect();
                keys.sort();
                keys.dedup();
                Some(keys)
            }
            _ => None,
        }
    }
}

/// An object's members, in order.
type Members = Vec<(String, Json)>;

/// The objects of Pebble's config whose keys are Go struct fields (matched without regard
/// to case, unknown ones ignored), as opposed to maps (`externalAccountMACKeys`,
/// `profiles`), whose keys are data kept as written. `edit` rewrites each such object's
/// members in place.
fn edit_struct_objects(doc: &mut Json, edit: &dyn Fn(&mut Members)) {
    let Json::Obj(top) = doc else { return };
    for (k, pebble) in top.iter_mut() {
        if !k.eq_ignore_ascii_case("pebble") {
            continue;
        }
        let Json::Obj(fields) = pebble else { continue };
        for (k, v) in fields.iter_mut() {
            if k.eq_ignore_ascii_case("retryafter")
                && let Json::Obj(m) = v
            {
                edit(m);
            }
            if k.eq_ignore_ascii_case("profiles")
                && let Json::Obj(profiles) = v
            {
                for (_, p) in profiles.iter_mut() {
                    if let Json::Obj(m) = p {
                        edit(m);
                    }
                }
            }
        }
        edit(fields);
    }
    edit(top);
}

/// The configuration a drop-in base maps to: Cobble's defaults with CAA checking off, as
/// the drop-in starts from.
fn base() -> ServerConfig {
    ServerConfig {
        caa_check: false,
        ..ServerConfig::default()
    }
}

/// What reading a config text comes to: the parsed config and what it maps to, or the
/// error's text with its sources (as the binary prints it), without serde_json's
/// positions (a transformed text has other line and column numbers) and numbers.
type Outcome = Result<(PebbleConfig, Result<ServerConfig, String>), String>;

fn outcome(text: &str) -> Outcome {
    fn text_of(e: &dyn std::error::Error) -> String {
        let mut parts = vec![e.to_string()];
        let mut next = e.source();
        while let Some(s) = next {
            parts.push(s.to_string());
            next = s.source();
        }
        let joined = parts.join(": ");
        let joined = match joined.find(" at line ") {
            Some(i) => &joined[..i],
            None => &joined,
        };
        // Values serde_json quotes in backticks (numbers) leave out too: without its
        // float_roundtrip feature a long number's text and the shortest one printed for
        // the f64 it read can read back as neighbouring f64s (found by libFuzzer).
        joined
            .split('`')
            .enumerate()
            .map(|(i, part)| if i % 2 == 1 { "_" } else { part })
            .collect::<Vec<_>>()
            .join("`")
    }
    let p = PebbleConfig::parse(text).map_err(|e| text_of(&e))?;
    let c = p.apply(base()).map_err(|e| text_of(&e));
    Ok((p, c))
}

/// Target `pebble_config`: Pebble's config file text. A config that parses and applies
/// listens where `go_listen_addr` of its `listenAddress` says, keeps EAB kids and profile
/// names as written (they are map keys, not Go fields), puts `default` first, and gives
/// every profile a lifetime; changing the ASCII case of every field name, or adding
/// unknown fields, changes nothing.
pub fn pebble_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let got = outcome(text);
    let doc = match serde_json::from_str::<Json>(text) {
        Ok(doc) => doc,
        // serde_json checks a string's escapes and a number's range only when it reads the
        // value, not when it skips it (an unknown member's), as Go does; Go takes lone
        // surrogates even where it reads them, as U+FFFD.
        Err(e)
            if ["escape", "number out of range"]
                .iter()
                .any(|m| e.to_string().contains(m)) =>
        {
            return;
        }
        Err(e) => {
            assert!(
                matches!(&got, Err(g) if g.starts_with("not JSON")),
                "text serde_json refuses ({e}) is read: {got:?}"
            );
            return;
        }
    };
    if let Ok((p, applied)) = &got {
        check_parsed(&doc, p);
        if let Ok(c) = applied {
            check_applied(p, c);
        }
    }
    let lower = |m: &mut Members| {
        for (k, _) in m.iter_mut() {
            *k = k.to_ascii_lowercase();
        }
    };
    let upper = |m: &mut Members| {
        for (k, _) in m.iter_mut() {
            *k = k.to_ascii_uppercase();
        }
    };
    let unknown = |m: &mut Members| {
        let junk = Json::Obj(vec![(
            "listenAddress".into(),
            Json::Arr(vec![Json::Null, Json::Str("x".into())]),
        )]);
        m.insert(0, ("cobbleFuzzUnknown".into(), junk.clone()));
        m.push(("cobble_fuzz_unknown".into(), junk));
    };
    for (name, edit) in [
        ("lower-casing field names", &lower as &dyn Fn(&mut Members)),
        ("upper-casing field names", &upper),
        ("adding unknown fields", &unknown),
    ] {
        let mut other = doc.clone();
        edit_struct_objects(&mut other, edit);
        let again = outcome(&other.text());
        assert_eq!(
            again,
            got,
            "{name} changes the outcome:\n{text}\n{}",
            other.text()
        );
    }
}

/// A parsed config holds the maps' keys as written, and the last `listenAddress`.
fn check_parsed(doc: &Json, p: &PebbleConfig) {
    let Some(pebble) = doc.field("pebble") else {
        assert_eq!(
            p,
            &PebbleConfig::default(),
            "no pebble object, not defaults"
        );
        return;
    };
    if let Some(Json::Str(listen)) = pebble.field("listenAddress") {
        assert_eq!(&p.listenaddress, listen, "listenAddress not the last one");
    }
    let kids = pebble
        .field("externalAccountMACKeys")
        .and_then(Json::map_keys);
    if let Some(kids) = kids {
        let got: Vec<_> = p.externalaccountmackeys.keys().cloned().collect();
        assert_eq!(got, kids, "EAB kids not as written");
    }
    let names = pebble.field("profiles").and_then(Json::map_keys);
    if let Some(names) = names {
        let got: Vec<_> = p.profiles.keys().cloned().collect();
        assert_eq!(got, names, "profile names not as written");
    }
}

/// A config that applies listens where its `listenAddress` says and has Pebble's profiles.
fn check_applied(p: &PebbleConfig, c: &ServerConfig) {
    let listen = go_listen_addr(&p.listenaddress);
    assert_eq!(Ok(Some(c.listen)), listen, "listen is not listenAddress");
    let mgmt = p
        .managementlistenaddress
        .as_deref()
        .map(go_listen_addr)
        .transpose()
        .expect("applied, so it reads")
        .flatten();
    assert_eq!(
        c.admin_listen, mgmt,
        "admin listener not managementListenAddress"
    );
    assert_eq!(c.eab_mac_keys, p.externalaccountmackeys);
    assert_eq!(c.eab_required, p.externalaccountbindingrequired);
    assert_eq!(c.blocked_domains, p.domainblocklist);
    let caa = p.caaidentities.as_ref().is_some_and(|i| !i.is_empty());
    assert_eq!(c.caa_check, caa, "CAA checked without caaIdentities");
    let names: Vec<&str> = c.profiles.iter().map(|p| p.name.as_str()).collect();
    let mut want: Vec<&str> = p.profiles.keys().map(String::as_str).collect();
    if want.is_empty() {
        want.push("default");
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, want, "profiles are not Pebble's");
    if want.contains(&"default") {
        assert_eq!(names[0], "default", "default not first");
    }
    let by_name: BTreeMap<&str, u64> = c
        .profiles
        .iter()
        .map(|p| (p.name.as_str(), p.validity_secs))
        .collect();
    for (name, secs) in by_name {
        assert!(
            secs > 0 && secs < 9_223_372_038,
            "profile {name}: lifetime {secs} s"
        );
        if let Some(pp) = p.profiles.get(name)
            && pp.validityperiod > 0
            && pp.validityperiod < 9_223_372_038
        {
            assert_eq!(secs, pp.validityperiod, "profile {name}: lifetime");
        }
    }
}
