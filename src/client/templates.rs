//! Header templates: received frames whose headers repeat (the same sender, handle, type and
//! groups; only the id changes) reach JS as `[slot, id, body]` against a headers object JS
//! parsed once, instead of as the whole line.
//!
//! `JSON.parse` of a ~330-byte frame cost the receiving JS thread ~1.2 µs, most of it in the
//! headers (seven keys, five short values V8 internalises one by one); the body alone parses in
//! ~0.45 µs and copying a parsed headers object with a spread is ~0.05 µs. The JS side
//! (`lib/client.js`, `_event`) rebuilds `{headers, body}` with the same keys in the same order,
//! and a fresh copy of every array value, so handlers see what `JSON.parse` of the line gives.
//!
//! Events: `tpl` `{"s":slot,"h":{headers with "id":""},"a":[keys of array values]}` defines
//! (or redefines) a slot; `f` `[slot,<id JSON>,<body JSON>]` is a frame. Slots are reused in
//! definition order, so JS keeps a ring of [`SLOTS`] and needs no other bookkeeping; a slot is
//! only referred to by the connection that last defined it.

use crate::wire::message::Fields;
use crate::wire::scan::Raw;

/// Templates one connection keeps (and the size of the JS ring).
pub const SLOTS: usize = 16;

/// Shapes remembered as seen once.
const SEEN: usize = 8;

/// Headers longer than this (keys and raw values) are never remembered: a peer sending huge
/// headers must not make each connection hold (SLOTS + SEEN) copies of them.
const MAX_SHAPE_BYTES: usize = 2048;

/// A headers shape: every field but the id, as received.
struct Shape {
    /// Where the id sits among the fields.
    id_at: usize,
    /// `(key, raw value)` of the other fields, in order.
    fields: Vec<(String, String)>,
}

impl Shape {
    fn of(headers: &Fields<'_>, id_at: usize) -> Shape {
        Shape {
            id_at,
            fields: headers
                .entries()
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != id_at)
                .map(|(_, (k, v))| (k.to_string(), v.get().to_owned()))
                .collect(),
        }
    }

    fn matches(&self, headers: &Fields<'_>, id_at: usize) -> bool {
        let entries = headers.entries();
        self.id_at == id_at
            && self.fields.len() + 1 == entries.len()
            && entries
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != id_at)
                .zip(&self.fields)
                .all(|((_, (k, v)), (sk, sv))| k == sk && v.get() == sv)
    }
}

/// One connection's templates.
#[derive(Default)]
pub struct Templates {
    /// Slot `i` holds `slots[i]`.
    slots: Vec<Shape>,
    /// The slot the next definition takes.
    next: usize,
    /// The slot that matched last (checked first).
    last: usize,
    /// Shapes seen once without a template (the last [`SEEN`]): one is defined when it comes
    /// again, so headers that never repeat cost no definitions.
    seen: Vec<Shape>,
}

/// What to send JS for one frame.
pub enum Encoded {
    /// Send the whole line as a `frame` event.
    Whole,
    /// Send `f` with this payload, after `tpl` with the first one when present.
    Templated(Option<String>, String),
}

fn is_container(raw: Raw<'_>) -> bool {
    matches!(raw.get().as_bytes().first(), Some(b'{') | Some(b'['))
}

/// An array value whose elements are all scalars (so a shallow copy is a full copy).
fn flat_array(raw: Raw<'_>) -> bool {
    raw.items()
        .is_some_and(|mut items| items.all(|v| !is_container(v)))
}

impl Templates {
    /// Encodes a frame with `headers` and the body JSON `body`.
    pub fn encode(&mut self, headers: &Fields<'_>, body: &str) -> Encoded {
        let entries = headers.entries();
        let Some(id_at) = entries.iter().position(|(k, _)| k == "id") else {
            return Encoded::Whole;
        };
        let id = entries[id_at].1;
        if is_container(id) {
            return Encoded::Whole;
        }
        let hit = if self
            .slots
            .get(self.last)
            .is_some_and(|s| s.matches(headers, id_at))
        {
            Some(self.last)
        } else {
            self.slots.iter().position(|s| s.matches(headers, id_at))
        };
        let (slot, def) = match hit {
            Some(slot) => (slot, None),
            None => {
                let size: usize = entries.iter().map(|(k, v)| k.len() + v.get().len()).sum();
                if size > MAX_SHAPE_BYTES {
                    return Encoded::Whole;
                }
                match self.seen.iter().position(|s| s.matches(headers, id_at)) {
                    Some(i) => {
                        self.seen.remove(i);
                    }
                    None => {
                        if self.seen.len() == SEEN {
                            self.seen.remove(0);
                        }
                        self.seen.push(Shape::of(headers, id_at));
                        return Encoded::Whole;
                    }
                }
                match self.define(headers, id_at) {
                    Some(d) => d,
                    None => return Encoded::Whole,
                }
            }
        };
        self.last = slot;
        let mut out = String::with_capacity(body.len() + id.get().len() + 8);
        out.push('[');
        out.push_str(itoa(slot));
        out.push(',');
        out.push_str(id.get());
        out.push(',');
        out.push_str(body);
        out.push(']');
        Encoded::Templated(def, out)
    }

    /// A new template for `headers` in the next slot; `None` when its values are not all
    /// scalars or arrays of scalars (a shallow copy would share nested objects).
    fn define(&mut self, headers: &Fields<'_>, id_at: usize) -> Option<(usize, Option<String>)> {
        let mut h = String::from("{");
        let mut arrays = String::from("[");
        for (i, (k, v)) in headers.entries().iter().enumerate() {
            let key = serde_json::to_string(k.as_ref()).ok()?;
            if i > 0 {
                h.push(',');
            }
            h.push_str(&key);
            h.push(':');
            if i == id_at {
                h.push_str("\"\"");
                continue;
            }
            if v.get().starts_with('{') || (v.get().starts_with('[') && !flat_array(*v)) {
                return None;
            }
            if v.get().starts_with('[') {
                if arrays.len() > 1 {
                    arrays.push(',');
                }
                arrays.push_str(&key);
            }
            h.push_str(v.get());
        }
        h.push('}');
        arrays.push(']');
        let slot = self.next;
        self.next = (self.next + 1) % SLOTS;
        let shape = Shape::of(headers, id_at);
        if slot < self.slots.len() {
            self.slots[slot] = shape;
        } else {
            self.slots.push(shape);
        }
        let def = format!("{{\"s\":{slot},\"h\":{h},\"a\":{arrays}}}");
        Some((slot, Some(def)))
    }
}

/// A slot number as text (slots are below [`SLOTS`]).
fn itoa(n: usize) -> &'static str {
    const DIGITS: [&str; SLOTS] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
    ];
    DIGITS.get(n).copied().unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::message::{Frame, Headers};

    fn encode(t: &mut Templates, line: &str) -> Encoded {
        let frame = Frame::parse(line.as_bytes()).expect("a frame");
        let Headers::Object(h) = &frame.headers else {
            panic!("headers")
        };
        let body = frame.top.get("body").expect("body").get();
        t.encode(h, body)
    }

    fn line(id: &str, handle: &str) -> String {
        format!(
            r#"{{"headers":{{"id":"{id}","to":"me","type":"message","handle":"{handle}","encrypted":false,"from":"you","groups":["a","b"]}},"body":{{"n":1}}}}"#
        )
    }

    #[test]
    fn headers_seen_twice_get_a_template_and_later_frames_use_it() {
        let mut t = Templates::default();
        assert!(matches!(encode(&mut t, &line("A1", "h")), Encoded::Whole));
        let Encoded::Templated(Some(def), f) = encode(&mut t, &line("A2", "h")) else {
            panic!("expected a definition")
        };
        assert_eq!(
            def,
            r#"{"s":0,"h":{"id":"","to":"me","type":"message","handle":"h","encrypted":false,"from":"you","groups":["a","b"]},"a":["groups"]}"#
        );
        assert_eq!(f, r#"[0,"A2",{"n":1}]"#);
        let Encoded::Templated(None, f) = encode(&mut t, &line("A3", "h")) else {
            panic!("expected a reference")
        };
        assert_eq!(f, r#"[0,"A3",{"n":1}]"#);
    }

    #[test]
    fn headers_that_never_repeat_are_sent_whole() {
        let mut t = Templates::default();
        for i in 0..50 {
            let h = format!("h{i}");
            assert!(matches!(encode(&mut t, &line("X", &h)), Encoded::Whole));
        }
        assert!(t.slots.is_empty());
    }

    #[test]
    fn two_new_shapes_taking_turns_both_get_templates() {
        let mut t = Templates::default();
        for _ in 0..2 {
            encode(&mut t, &line("X", "a"));
            encode(&mut t, &line("X", "b"));
        }
        assert!(matches!(
            encode(&mut t, &line("X", "a")),
            Encoded::Templated(None, _)
        ));
        assert!(matches!(
            encode(&mut t, &line("X", "b")),
            Encoded::Templated(None, _)
        ));
    }

    #[test]
    fn huge_headers_are_never_remembered() {
        let mut t = Templates::default();
        let big = "x".repeat(MAX_SHAPE_BYTES);
        for _ in 0..3 {
            assert!(matches!(encode(&mut t, &line("X", &big)), Encoded::Whole));
        }
        assert!(t.seen.is_empty() && t.slots.is_empty());
    }

    #[test]
    fn nested_objects_in_headers_are_never_templated() {
        let mut t = Templates::default();
        let l = r#"{"headers":{"id":"A","to":"me","type":"message","x":{"y":1}},"body":1}"#;
        assert!(matches!(encode(&mut t, l), Encoded::Whole));
        assert!(matches!(encode(&mut t, l), Encoded::Whole));
        let l = r#"{"headers":{"id":"A","to":"me","type":"message","x":[[1]]},"body":1}"#;
        assert!(matches!(encode(&mut t, l), Encoded::Whole));
        assert!(matches!(encode(&mut t, l), Encoded::Whole));
    }

    #[test]
    fn a_different_key_order_or_id_position_is_a_different_template() {
        let mut t = Templates::default();
        let a = r#"{"headers":{"id":"A","to":"me","type":"message"},"body":1}"#;
        let b = r#"{"headers":{"to":"me","id":"A","type":"message"},"body":1}"#;
        encode(&mut t, a);
        assert!(matches!(encode(&mut t, a), Encoded::Templated(Some(_), _)));
        encode(&mut t, b);
        let Encoded::Templated(Some(def), _) = encode(&mut t, b) else {
            panic!("expected a second definition")
        };
        assert!(def.starts_with(r#"{"s":1,"h":{"to":"me","id":"""#), "{def}");
    }

    #[test]
    fn slots_are_reused_in_definition_order() {
        let mut t = Templates::default();
        for i in 0..SLOTS + 1 {
            let h = format!("h{i}");
            encode(&mut t, &line("X", &h));
            let Encoded::Templated(Some(def), _) = encode(&mut t, &line("X", &h)) else {
                panic!("expected a definition")
            };
            assert!(def.starts_with(&format!("{{\"s\":{},", i % SLOTS)), "{def}");
        }
        // h0 lost its slot to h16: it is seen (whole) and defined again.
        t.seen.clear();
        assert!(matches!(encode(&mut t, &line("X", "h0")), Encoded::Whole));
        assert!(matches!(
            encode(&mut t, &line("X", "h0")),
            Encoded::Templated(Some(_), _)
        ));
    }

    #[test]
    fn escaped_keys_are_written_back_escaped() {
        let mut t = Templates::default();
        let l = r#"{"headers":{"id":"A","k\"q":"v","to":"me"},"body":1}"#;
        encode(&mut t, l);
        let Encoded::Templated(Some(def), _) = encode(&mut t, l) else {
            panic!("expected a definition")
        };
        assert!(def.contains(r#""k\"q":"v""#), "{def}");
    }
}
