//! A frame as the router sees it: the top-level keys and the headers kept as raw JSON in their
//! original order, so a frame is forwarded byte for byte except for what the server rewrites
//! (`from`, `groups` and, for encrypted frames, `body`).

use super::json;
pub use super::scan::Layout;
use super::scan::{self, Entries, HeadersAt, Raw};
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

/// A JSON object borrowed from the line it was read from: keys in order, values as raw JSON
/// slices. A duplicate key keeps its first position and its last value, as `JSON.parse` does.
/// Routing reads and rewrites frames through this without copying values.
#[derive(Debug, Default)]
pub struct Fields<'a>(Entries<'a>);

impl<'a> Fields<'a> {
    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<Raw<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Every `(key, raw value)` in order.
    pub fn entries(&self) -> &[(Cow<'a, str>, Raw<'a>)] {
        &self.0
    }
}

/// What a frame's `headers` key held.
#[derive(Debug, Default)]
pub enum Headers<'a> {
    /// No `headers` key.
    #[default]
    Missing,
    /// A value that is not an object.
    NotObject,
    /// An object.
    Object(Fields<'a>),
}

/// A received line parsed in one pass: its top-level fields (raw values borrowed from the line)
/// and its `headers` object's fields. Parsing the headers while the line is read, instead of
/// taking them raw and parsing them again, saves a second scan per frame on every hop.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The whole line, checked to be UTF-8.
    pub text: &'a str,
    /// Top-level keys; the entry of `headers` holds a placeholder, use [`Frame::headers`].
    pub top: Fields<'a>,
    /// The `headers` value.
    pub headers: Headers<'a>,
}

impl<'a> Frame<'a> {
    /// Parses a line that must be one JSON object; `None` when it is not (classify it with
    /// [`parse_line`]). UTF-8 is checked once for the whole line, not per value.
    pub fn parse(line: &'a [u8]) -> Option<Frame<'a>> {
        Self::parse_with(line, &mut Layout::default())
    }

    /// Like [`Frame::parse`], through the [`Layout`] of the connection the line came from.
    pub fn parse_with(line: &'a [u8], layout: &mut Layout) -> Option<Frame<'a>> {
        let text = std::str::from_utf8(line).ok()?;
        let (top, headers) = scan::frame_with(text, layout)?;
        Some(Frame {
            text,
            top: Fields(top),
            headers: match headers {
                HeadersAt::Missing => Headers::Missing,
                HeadersAt::NotObject => Headers::NotObject,
                HeadersAt::Object(h) => Headers::Object(Fields(h)),
            },
        })
    }
}

/// A message frame as the router sees it: fields borrowed from the received line, plus the
/// headers the server overwrites (`from`, `groups`).
#[derive(Debug)]
pub struct Envelope<'a> {
    top: Fields<'a>,
    headers: Fields<'a>,
    overrides: Vec<(&'static str, std::sync::Arc<str>)>,
}

/// Why a line is not a routable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not a JSON object (or not JSON): classify it with [`parse_line`].
    NotAnObject,
    /// An object without the required shape (`message_malformed`).
    Malformed(&'static str),
}

impl<'a> Envelope<'a> {
    /// Parses a line and checks the shape of §4.3 step 2 plus the D12 (`body` required) and D14
    /// (non-empty string `handle`) fixes.
    pub fn parse(line: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        Self::parse_with(line, &mut Layout::default())
    }

    /// Like [`Envelope::parse`], through the [`Layout`] of the connection the line came from.
    pub fn parse_with(line: &'a [u8], layout: &mut Layout) -> Result<Envelope<'a>, EnvelopeError> {
        let Frame { top, headers, .. } =
            Frame::parse_with(line, layout).ok_or(EnvelopeError::NotAnObject)?;
        let headers = match headers {
            Headers::Object(h) => h,
            Headers::Missing => return Err(EnvelopeError::Malformed("frame has no headers")),
            Headers::NotObject => return Err(EnvelopeError::Malformed("headers is not an object")),
        };
        for (key, why) in [
            ("id", "headers.id is missing"),
            ("type", "headers.type is missing"),
            ("handle", "headers.handle is missing"),
            ("to", "headers.to is missing"),
        ] {
            if !headers.contains(key) {
                return Err(EnvelopeError::Malformed(why));
            }
        }
        match headers.get("handle").and_then(|h| json::as_str(h.get())) {
            Some(h) if !h.is_empty() => {}
            _ => {
                return Err(EnvelopeError::Malformed(
                    "headers.handle must be a non-empty string",
                ))
            }
        }
        if !top.contains("body") {
            return Err(EnvelopeError::Malformed("frame has no body"));
        }
        Ok(Envelope {
            top,
            headers,
            overrides: Vec::new(),
        })
    }

    /// Raw value of a header as received.
    pub fn header(&self, key: &str) -> Option<Raw<'a>> {
        self.headers.get(key)
    }

    /// `headers.to` coerced to a channel name.
    pub fn to(&self) -> Option<Cow<'a, str>> {
        self.header("to").and_then(|t| json::js_string(t.get()))
    }

    /// Whether `headers.encrypted` is truthy.
    pub fn encrypted(&self) -> bool {
        self.header("encrypted")
            .map(|v| json::truthy(v.get()))
            .unwrap_or(false)
    }

    /// The raw body (present: checked by `parse`).
    pub fn body(&self) -> Option<Raw<'a>> {
        self.top.get("body")
    }

    /// Sets a header on output, in place if present, appended otherwise (as the original does).
    pub fn set_header(&mut self, key: &'static str, raw_json: impl Into<std::sync::Arc<str>>) {
        self.overrides.retain(|(k, _)| *k != key);
        self.overrides.push((key, raw_json.into()));
    }

    /// Serialises the frame, with `body` replaced by `body_override` when given, plus LF.
    /// The override is bytes because a re-encrypted body is hex written into a byte buffer:
    /// taking `&str` cost a UTF-8 pass over it per frame.
    pub fn encode(&self, body_override: Option<&[u8]>) -> Vec<u8> {
        let body_len = self.body().map_or(0, |b| b.get().len());
        let mut out = Vec::with_capacity(256 + body_override.map_or(body_len, <[u8]>::len));
        self.encode_into(&mut out, body_override);
        out
    }

    /// Like [`Envelope::encode`], appending to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>, body_override: Option<&[u8]>) {
        out.push(b'{');
        for (i, (k, v)) in self.top.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_key(out, k, matches!(k, Cow::Borrowed(_)));
            match k.as_ref() {
                "headers" => self.encode_headers(out),
                "body" => out.extend_from_slice(body_override.unwrap_or(v.get().as_bytes())),
                _ => out.extend_from_slice(v.get().as_bytes()),
            }
        }
        out.extend_from_slice(b"}\n");
    }

    fn encode_headers(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        for (k, v) in &self.headers.0 {
            if !first {
                out.push(b',');
            }
            first = false;
            push_key(out, k, matches!(k, Cow::Borrowed(_)));
            match self.overrides.iter().find(|(ok, _)| *ok == k.as_ref()) {
                Some((_, o)) => out.extend_from_slice(o.as_bytes()),
                None => out.extend_from_slice(v.get().as_bytes()),
            }
        }
        for (k, o) in &self.overrides {
            if !self.headers.contains(k) {
                if !first {
                    out.push(b',');
                }
                first = false;
                push_key(out, k, true);
                out.extend_from_slice(o.as_bytes());
            }
        }
        out.push(b'}');
    }
}

/// Appends `"key":`. A key borrowed from the line had no escapes there, and JSON allows no
/// raw quote or control character in a string, so it is copied byte for byte.
fn push_key(out: &mut Vec<u8>, key: &str, verbatim: bool) {
    if verbatim || key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.push(b'"');
    } else {
        json::push_str(out, key);
    }
    out.push(b':');
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(line: &str) -> Result<Envelope<'_>, EnvelopeError> {
        Envelope::parse(line.as_bytes())
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
        e.set_header("from", "\"alpha\"");
        e.set_header("groups", "[\"g1\"]");
        e.set_header("groups", "[\"g1\"]");
        let out = String::from_utf8(e.encode(None)).expect("utf8");
        assert_eq!(out, "{\"headers\":{\"id\":\"i\",\"from\":\"alpha\",\"to\":\"b\",\"type\":\"message\",\"handle\":\"h\",\"encrypted\":false,\"groups\":[\"g1\"]},\"body\":{\"x\":1},\"extra\":2}\n");
    }

    #[test]
    fn duplicate_keys_keep_the_first_position_and_the_last_value() {
        let e = env(r#"{"headers":{"id":"a","to":"x","type":"message","handle":"h","to":"b"},"body":1,"body":2}"#).expect("valid");
        assert_eq!(e.to().as_deref(), Some("b"));
        assert_eq!(
            String::from_utf8(e.encode(None)).expect("utf8"),
            "{\"headers\":{\"id\":\"a\",\"to\":\"b\",\"type\":\"message\",\"handle\":\"h\"},\"body\":2}\n"
        );
    }

    #[test]
    fn escaped_keys_are_understood_and_re_escaped() {
        let e =
            env(r#"{"headers":{"id":"a","\u0074o":"b","type":"message","handle":"h"},"body":1}"#)
                .expect("valid");
        assert_eq!(e.to().as_deref(), Some("b"));
    }

    #[test]
    fn non_objects_are_not_envelopes() {
        for line in ["[1]", "5", "nope", "{\"a\":"] {
            assert_eq!(env(line).err(), Some(EnvelopeError::NotAnObject), "{line}");
        }
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

    /// Found in review: a remembered layout misplaced a duplicate key's last value when it
    /// lay across the body from the key, so the router forwarded other bytes of the line,
    /// here a second `headers` the sender wrote inside its body.
    #[test]
    fn a_remembered_layout_never_lets_a_body_smuggle_headers_past_the_router() {
        let mut layout = Layout::default();
        let pad = format!(
            "\"{}\"",
            "x".repeat(r#"1,"headers":{"from":"admin"}"#.len() - 2)
        );
        let first = format!(
            r#"{{"headers":{{"id":"a","type":"message","handle":"h","to":"r"}},"x":0,"body":0,"x":{pad}}}"#
        );
        let second = format!(
            r#"{{"headers":{{"id":"a","type":"message","handle":"h","to":"r"}},"x":0,"body":{{"qq":1,"headers":{{"from":"admin"}}}},"x":{pad}}}"#
        );
        Envelope::parse_with(first.as_bytes(), &mut layout).expect("first");
        let mut reused = Envelope::parse_with(second.as_bytes(), &mut layout).expect("second");
        reused.set_header("from", "\"mallory\"");
        let mut fresh = Envelope::parse(second.as_bytes()).expect("second");
        fresh.set_header("from", "\"mallory\"");
        let out = String::from_utf8(reused.encode(None)).expect("utf8");
        assert_eq!(out, String::from_utf8(fresh.encode(None)).expect("utf8"));
        assert!(out.contains(&format!("\"x\":{pad},\"body\":")), "{out}");
    }

    #[test]
    fn frames_parse_headers_in_the_same_pass_whatever_they_hold() {
        let f = Frame::parse(br#"{"a":1,"headers":{"t\u006f":"x","to":"y"},"body":[1]}"#)
            .expect("object");
        let Headers::Object(h) = &f.headers else {
            panic!("headers should be an object")
        };
        assert_eq!(h.get("to").map(Raw::get), Some("\"y\""));
        assert_eq!(f.top.get("body").map(Raw::get), Some("[1]"));
        assert!(f.top.contains("headers"));
        for (line, missing) in [
            (r#"{"headers":[1,{"a":2}],"body":1}"#, false),
            (r#"{"headers":"h","body":1}"#, false),
            (r#"{"headers":null,"body":1}"#, false),
            (r#"{"headers":-1.5e3,"body":1}"#, false),
            (r#"{"body":1}"#, true),
        ] {
            let f = Frame::parse(line.as_bytes()).expect("object");
            match (&f.headers, missing) {
                (Headers::Missing, true) | (Headers::NotObject, false) => {}
                (other, _) => panic!("{line}: {other:?}"),
            }
        }
        // The last of duplicate headers wins, as with JSON.parse.
        let f = Frame::parse(br#"{"headers":{"to":"a"},"headers":{"to":"b"}}"#).expect("object");
        let Headers::Object(h) = &f.headers else {
            panic!("headers should be an object")
        };
        assert_eq!(h.get("to").map(Raw::get), Some("\"b\""));
        for bad in [
            &b"[1]"[..],
            b"{\"headers\":{\"a\":}}",
            b"{\"a\":\"\xff\"}",
            b"{} x",
        ] {
            assert!(Frame::parse(bad).is_none());
        }
    }
}
