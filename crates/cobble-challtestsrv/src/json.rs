//! Reading management request bodies the way Go's `encoding/json` reads them into
//! pebble-challtestsrv's structs: keys match case-insensitively (`host`, `Host`, `HOST`),
//! unknown keys are ignored, a missing or `null` field is the empty value. Unlike
//! pebble-challtestsrv, every refusal carries a message saying what was wrong.

use serde_json::{Map, Value};

/// A refused management request: HTTP 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// A parsed JSON object body.
pub(crate) struct Body(Map<String, Value>);

impl Body {
    /// Parses a body; empty, malformed or non-object bodies are refused.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, BadRequest> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(BadRequest("expected JSON POST body, was empty".to_owned()));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(Value::Null) => Ok(Self(Map::new())),
            Ok(other) => Err(BadRequest(format!(
                "expected a JSON object body, got {}",
                kind(&other)
            ))),
            Err(e) => Err(BadRequest(format!("invalid JSON body: {e}"))),
        }
    }

    /// The value of `field`, matched case-insensitively (the last match wins, as in Go).
    fn get(&self, field: &str) -> Option<&Value> {
        self.0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(field))
            .map(|(_, v)| v)
            .next_back()
            .filter(|v| !v.is_null())
    }

    /// A string field; missing or null is `""`.
    pub(crate) fn string(&self, field: &str) -> Result<String, BadRequest> {
        match self.get(field) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(wrong_type(field, "a string", other)),
        }
    }

    /// A string field that must not be empty.
    pub(crate) fn required(&self, field: &str) -> Result<String, BadRequest> {
        let s = self.string(field)?;
        if s.is_empty() {
            return Err(BadRequest(format!(
                "the {field:?} field is required and must not be empty"
            )));
        }
        Ok(s)
    }

    /// An array of strings that must not be empty.
    pub(crate) fn required_strings(&self, field: &str) -> Result<Vec<String>, BadRequest> {
        let items = self.required_array(field)?;
        items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(wrong_type(field, "an array of strings", other)),
            })
            .collect()
    }

    /// An array of objects that must not be empty, each parsed as a [`Body`].
    pub(crate) fn required_objects(&self, field: &str) -> Result<Vec<Body>, BadRequest> {
        let items = self.required_array(field)?;
        items
            .iter()
            .map(|v| match v {
                Value::Object(m) => Ok(Body(m.clone())),
                other => Err(wrong_type(field, "an array of objects", other)),
            })
            .collect()
    }

    /// An optional small unsigned integer field (missing or null is 0).
    pub(crate) fn u8(&self, field: &str) -> Result<u8, BadRequest> {
        match self.get(field) {
            None => Ok(0),
            Some(v) => v
                .as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| wrong_type(field, "an integer from 0 to 255", v)),
        }
    }

    fn required_array(&self, field: &str) -> Result<&Vec<Value>, BadRequest> {
        match self.get(field) {
            Some(Value::Array(items)) if !items.is_empty() => Ok(items),
            None | Some(Value::Array(_)) => Err(BadRequest(format!(
                "the {field:?} field is required and must be a non-empty array"
            ))),
            Some(other) => Err(wrong_type(field, "an array", other)),
        }
    }
}

fn wrong_type(field: &str, want: &str, got: &Value) -> BadRequest {
    BadRequest(format!(
        "the {field:?} field must be {want}, got {}",
        kind(got)
    ))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        // (body, Ok(host) or Err(message fragment))
        let rows: [(&str, Result<&str, &str>); 9] = [
            ("", Err("was empty")),
            ("  ", Err("was empty")),
            ("{", Err("invalid JSON")),
            ("[1]", Err("JSON object")),
            ("null", Ok("")),
            ("{}", Ok("")),
            (r#"{"Host":"a"}"#, Ok("a")),
            (r#"{"HOST":"a","host":"b","other":1}"#, Ok("b")),
            (r#"{"host":5}"#, Err("must be a string")),
        ];
        for (body, want) in rows {
            let got = Body::parse(body.as_bytes()).and_then(|b| b.string("host"));
            match (got, want) {
                (Ok(h), Ok(w)) => assert_eq!(h, w, "{body}"),
                (Err(e), Err(frag)) => assert!(e.0.contains(frag), "{body}: {e}"),
                (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn required_fields() {
        let b = Body::parse(br#"{"host":"","addresses":[]}"#).unwrap();
        assert!(b.required("host").unwrap_err().0.contains("\"host\""));
        assert!(
            b.required_strings("addresses")
                .unwrap_err()
                .0
                .contains("non-empty array")
        );
        let b = Body::parse(br#"{"addresses":["1.2.3.4",5]}"#).unwrap();
        assert!(
            b.required_strings("addresses")
                .unwrap_err()
                .0
                .contains("array of strings")
        );
    }
}
