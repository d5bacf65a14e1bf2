//! A frame as the router sees it: the top-level keys and the headers kept as raw JSON in their
//! original order, so a frame is forwarded byte for byte except for what the server rewrites
//! (`from`, `groups` and, for encrypted frames, `body`).

use super::json;
use indexmap::IndexMap;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Raw JSON object with its keys in their original order (a duplicate key keeps its first
/// position and its last value, as `JSON.parse` does).
pub type RawObject = IndexMap<String, Box<RawValue>>;

/// What a received line turned out to be.
#[derive(Debug)]
pub enum Parsed {
    /// A JSON object.
    Object(RawObject),
    /// Valid JSON whose top-level value is falsy: dropped silently, as the original does.
    Falsy,
    /// Valid JSON that is not an object (a truthy number, string, array or `true`).
    NotObject,
    /// Not JSON at all (or not UTF-8).
    Invalid(String),
}

/// Classifies one line.
pub fn parse_line(line: &[u8]) -> Parsed {
    match serde_json::from_slice::<RawObject>(line) {
        Ok(obj) => Parsed::Object(obj),
        Err(err) => match serde_json::from_slice::<&RawValue>(line) {
            Ok(v) if !json::truthy(v.get()) => Parsed::Falsy,
            Ok(_) => Parsed::NotObject,
            Err(_) => Parsed::Invalid(err.to_string()),
        },
    }
}

/// The headers a routed frame must carry, read from a message frame.
#[derive(Debug)]
pub struct Envelope {
    /// All top-level keys of the frame, in order.
    pub top: RawObject,
    /// The headers, in order.
    pub headers: RawObject,
}

/// Why a frame is not a routable message (`message_malformed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl Envelope {
    /// Checks the shape of §4.3 step 2 plus the D12 (`body` required) and D14 (non-empty string
    /// `handle`) fixes.
    pub fn from_object(mut top: RawObject) -> Result<Envelope, Malformed> {
        let headers_raw = top
            .get("headers")
            .ok_or(Malformed("frame has no headers"))?;
        let headers: RawObject = serde_json::from_str(headers_raw.get())
            .map_err(|_| Malformed("headers is not an object"))?;
        for key in ["id", "type", "handle", "to"] {
            if !headers.contains_key(key) {
                return Err(Malformed(match key {
                    "id" => "headers.id is missing",
                    "type" => "headers.type is missing",
                    "handle" => "headers.handle is missing",
                    _ => "headers.to is missing",
                }));
            }
        }
        match headers.get("handle").and_then(|h| json::as_str(h)) {
            Some(h) if !h.is_empty() => {}
            _ => return Err(Malformed("headers.handle must be a non-empty string")),
        }
        if !top.contains_key("body") {
            return Err(Malformed("frame has no body"));
        }
        // Keep the headers' slot in the top-level order; its value is rebuilt on output.
        if let Some(slot) = top.get_mut("headers") {
            *slot = empty_raw();
        }
        Ok(Envelope { top, headers })
    }

    /// Raw value of a header.
    pub fn header(&self, key: &str) -> Option<&RawValue> {
        self.headers.get(key).map(|v| &**v)
    }

    /// `headers.to` coerced to a channel name.
    pub fn to(&self) -> Option<Cow<'_, str>> {
        self.header("to").and_then(json::js_string)
    }

    /// Whether `headers.encrypted` is truthy.
    pub fn encrypted(&self) -> bool {
        self.header("encrypted")
            .map(|v| json::truthy(v.get()))
            .unwrap_or(false)
    }

    /// The raw body.
    pub fn body(&self) -> &RawValue {
        // `from_object` guarantees the key exists.
        self.top
            .get("body")
            .map(|v| &**v)
            .unwrap_or_else(|| null_raw())
    }

    /// Sets a header, in place if present, appended otherwise (as the original does).
    pub fn set_header(&mut self, key: &str, raw_json: String) {
        if let Ok(v) = RawValue::from_string(raw_json) {
            self.headers.insert(key.to_string(), v);
        }
    }

    /// Serialises the frame with `body` replaced by `body_override` when given, plus LF.
    pub fn encode(&self, body_override: Option<&str>) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body().get().len());
        out.push(b'{');
        for (i, (k, v)) in self.top.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::push_str(&mut out, k);
            out.push(b':');
            match k.as_str() {
                "headers" => encode_object(&mut out, &self.headers),
                "body" => out.extend_from_slice(body_override.unwrap_or(v.get()).as_bytes()),
                _ => out.extend_from_slice(v.get().as_bytes()),
            }
        }
        out.extend_from_slice(b"}\n");
        out
    }
}

/// Writes a raw object back as compact JSON.
pub fn encode_object(out: &mut Vec<u8>, obj: &RawObject) {
    out.push(b'{');
    for (i, (k, v)) in obj.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::push_str(out, k);
        out.push(b':');
        out.extend_from_slice(v.get().as_bytes());
    }
    out.push(b'}');
}

fn empty_raw() -> Box<RawValue> {
    RawValue::from_string("{}".into()).unwrap_or_else(|_| null_raw().to_owned())
}

fn null_raw() -> &'static RawValue {
    // A constant, valid JSON literal.
    static NULL: std::sync::OnceLock<Box<RawValue>> = std::sync::OnceLock::new();
    NULL.get_or_init(|| {
        serde_json::from_str::<Box<RawValue>>("null").unwrap_or_else(|_| unreachable!())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(line: &str) -> Result<Envelope, Malformed> {
        match parse_line(line.as_bytes()) {
            Parsed::Object(o) => Envelope::from_object(o),
            other => panic!("not an object: {other:?}"),
        }
    }

    #[test]
    fn lines_are_classified_like_the_original_framer_would() {
        assert!(matches!(parse_line(b"{\"a\":1}"), Parsed::Object(_)));
        for falsy in ["0", "false", "null", "\"\""] {
            assert!(matches!(parse_line(falsy.as_bytes()), Parsed::Falsy));
        }
        for other in ["1", "\"str\"", "[1,2]", "true"] {
            assert!(matches!(parse_line(other.as_bytes()), Parsed::NotObject));
        }
        assert!(matches!(parse_line(b"not json"), Parsed::Invalid(_)));
        assert!(matches!(
            parse_line(b"{\"a\":1}{\"b\":2}"),
            Parsed::Invalid(_)
        ));
        assert!(matches!(parse_line(b"\xff\xfe{}"), Parsed::Invalid(_)));
    }

    #[test]
    fn from_and_groups_are_set_in_place_or_appended_and_order_is_kept() {
        let mut e = env(r#"{"headers":{"id":"i","from":"evil","to":"b","type":"message","handle":"h","encrypted":false},"body":{"x":1},"extra":2}"#).expect("valid");
        e.set_header("from", "\"alpha\"".into());
        e.set_header("groups", "[\"g1\"]".into());
        let out = String::from_utf8(e.encode(None)).expect("utf8");
        assert_eq!(out, "{\"headers\":{\"id\":\"i\",\"from\":\"alpha\",\"to\":\"b\",\"type\":\"message\",\"handle\":\"h\",\"encrypted\":false,\"groups\":[\"g1\"]},\"body\":{\"x\":1},\"extra\":2}\n");
    }

    #[test]
    fn d12_a_frame_without_body_is_malformed() {
        assert!(env(r#"{"headers":{"id":"i","to":"b","type":"message","handle":"h"}}"#).is_err());
    }

    #[test]
    fn d14_handle_must_be_a_non_empty_string() {
        for h in ["null", "\"\"", "5", "[\"a\"]"] {
            let line = format!(
                r#"{{"headers":{{"id":"i","to":"b","type":"message","handle":{h}}},"body":1}}"#
            );
            assert!(env(&line).is_err(), "{h} accepted");
        }
    }

    #[test]
    fn missing_required_headers_are_malformed() {
        assert!(env(r#"{"headers":{"to":"b","type":"message","handle":"h"},"body":1}"#).is_err());
        assert!(env(r#"{"headers":5,"body":1}"#).is_err());
        assert!(env(r#"{"body":1}"#).is_err());
    }
}
