//! Differential tests of [`super::scan`] against serde_json and against its own full scan:
//! generated, exhaustive and mutated inputs (deterministic seeds). Written by a review of the
//! scanner; the layout case it found (a duplicate key whose kept value lies across the id or
//! the body) is `duplicate_keys_whose_value_lies_across_the_id_or_body_are_not_misread`.

use super::scan::{frame, frame_with, Entries, HeadersAt, Layout, Raw};
use serde_json::value::RawValue;

pub(super) fn owned(entries: &Entries<'_>) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.get().to_string()))
        .collect()
}

/// Whether two scans gave the same entries and headers.
pub(super) fn same(
    a: Option<(Entries<'_>, HeadersAt<'_>)>,
    b: Option<(Entries<'_>, HeadersAt<'_>)>,
) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some((ta, ha)), Some((tb, hb))) => {
            owned(&ta) == owned(&tb)
                && match (ha, hb) {
                    (HeadersAt::Missing, HeadersAt::Missing)
                    | (HeadersAt::NotObject, HeadersAt::NotObject) => true,
                    (HeadersAt::Object(x), HeadersAt::Object(y)) => owned(&x) == owned(&y),
                    _ => false,
                }
        }
        _ => false,
    }
}

/// Deterministic xorshift64.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

/// `Some(accepted)` from serde_json, `None` when only its recursion limit (128) refused.
fn rv_serde(text: &str) -> Option<bool> {
    match serde_json::from_str::<&RawValue>(text) {
        Ok(_) => Some(true),
        Err(e) if e.to_string().contains("recursion limit") => None,
        Err(_) => Some(false),
    }
}

fn rv_check_value(text: &str) {
    if let Some(want) = rv_serde(text) {
        assert_eq!(Raw::parse(text).is_some(), want, "Raw::parse {text:?}");
    }
}

const PIECES: &[&str] = &[
    "a",
    "xyz",
    "0",
    " ",
    "\\n",
    "\\\"",
    "\\\\",
    "\\/",
    "\\b",
    "\\f",
    "\\r",
    "\\t",
    "\\u0041",
    "\\u00e9",
    "\\ud800",
    "\\udc00",
    "\\uD83D\\uDE00",
    "\\uFFFF",
    "é",
    "€",
    "😀",
    "\u{7f}",
    "\u{80}",
    "\u{7ff}",
    "\u{fffd}",
    "'",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
];
const BAD_PIECES: &[&str] = &[
    "\\x", "\\u12", "\\u12g4", "\\U0041", "\u{1}", "\u{0}", "\u{1f}", "\t", "\n", "\\", "\\'",
    "\\ ", "\"",
];

fn rv_string(r: &mut Rng, out: &mut String, bad: bool) {
    out.push('"');
    for _ in 0..r.below(6) {
        match r.below(10) {
            0 => out.push_str(&"x".repeat(r.below(80))),
            1 if bad && r.one_in(8) => out.push_str(r.pick(BAD_PIECES)),
            _ => out.push_str(r.pick(PIECES)),
        }
    }
    if !(bad && r.one_in(60)) {
        out.push('"');
    }
}

fn rv_ws(r: &mut Rng, out: &mut String, bad: bool) {
    if r.one_in(3) {
        for _ in 0..1 + r.below(3) {
            out.push_str(r.pick(&[" ", "\t", "\n", "\r", "\r\n"]));
        }
    }
    if bad && r.one_in(200) {
        out.push_str(r.pick(&["\u{b}", "\u{c}", "\u{a0}", "\u{feff}", "/**/", "\u{0}"]));
    }
}

fn rv_number(r: &mut Rng, out: &mut String, bad: bool) {
    if r.one_in(3) {
        out.push('-');
    }
    match r.below(3) {
        0 => out.push('0'),
        _ => {
            out.push(char::from(b'1' + r.below(9) as u8));
            for _ in 0..r.below(25) {
                out.push(char::from(b'0' + r.below(10) as u8));
            }
        }
    }
    if r.one_in(3) {
        out.push('.');
        for _ in 0..1 + r.below(5) {
            out.push(char::from(b'0' + r.below(10) as u8));
        }
    }
    if r.one_in(3) {
        out.push_str(r.pick(&["e", "E", "e+", "e-", "E+", "E-"]));
        for _ in 0..1 + r.below(4) {
            out.push(char::from(b'0' + r.below(10) as u8));
        }
    }
    if bad && r.one_in(30) {
        out.push_str(r.pick(&[".", "e", "-", "+", "0", "00", ".e1", "x"]));
    }
}

/// A random JSON value, flat in its own nesting (no recursion) up to `depth`, rarely
/// broken when `bad`.
fn rv_value(r: &mut Rng, out: &mut String, depth: usize, bad: bool) {
    rv_ws(r, out, bad);
    let kind = if depth == 0 {
        3 + r.below(7)
    } else {
        r.below(10)
    };
    match kind {
        0 | 1 => {
            out.push('[');
            rv_ws(r, out, bad);
            let n = r.below(4);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                rv_value(r, out, depth - 1, bad);
            }
            if bad && r.one_in(80) {
                out.push(',');
            }
            rv_ws(r, out, bad);
            out.push(if bad && r.one_in(100) { '}' } else { ']' });
        }
        2 => {
            out.push('{');
            rv_ws(r, out, bad);
            for i in 0..r.below(4) {
                if i > 0 {
                    out.push(',');
                }
                rv_ws(r, out, bad);
                rv_string(r, out, bad);
                rv_ws(r, out, bad);
                if !(bad && r.one_in(100)) {
                    out.push(':');
                }
                rv_value(r, out, depth - 1, bad);
            }
            rv_ws(r, out, bad);
            out.push(if bad && r.one_in(100) { ']' } else { '}' });
        }
        3..=5 => rv_string(r, out, bad),
        6 | 7 => rv_number(r, out, bad),
        _ => {
            let word = r.pick(&["true", "false", "null"]);
            if bad && r.one_in(30) {
                out.push_str(&word[..r.below(word.len())]);
            } else {
                out.push_str(word);
            }
        }
    }
    rv_ws(r, out, bad);
}

/// One random edit: replace, insert, delete a byte, or a range; duplicate or truncate.
fn rv_mutate(r: &mut Rng, text: &str) -> Option<String> {
    const ALPHABET: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "\"",
        ":",
        ",",
        "\\",
        " ",
        "\t",
        "\n",
        "u",
        "0",
        "1",
        "9",
        "-",
        "+",
        ".",
        "e",
        "E",
        "t",
        "r",
        "f",
        "n",
        "l",
        "a",
        "x",
        "\u{1}",
        "\u{7f}",
        "é",
        "😀",
        "\\u0069d",
        "\"id\":",
        "\"body\":",
        "\"headers\":{",
        "null",
        "\"\"",
    ];
    let mut b = text.as_bytes().to_vec();
    if b.is_empty() {
        return Some(r.pick(ALPHABET).to_string());
    }
    let at = r.below(b.len() + 1);
    let with = r.pick(ALPHABET).as_bytes();
    match r.below(6) {
        0 if at < b.len() => {
            b.splice(at..at + 1, with.iter().copied());
        }
        1 => {
            b.splice(at..at, with.iter().copied());
        }
        2 if at < b.len() => {
            b.remove(at);
        }
        3 => {
            let end = (at + r.below(8)).min(b.len());
            b.drain(at..end);
        }
        4 => {
            let end = (at + r.below(12)).min(b.len());
            let copy = b[at..end].to_vec();
            b.splice(at..at, copy);
        }
        _ => b.truncate(at),
    }
    String::from_utf8(b).ok()
}

#[test]
fn strings_with_any_special_at_any_position_are_judged_like_serde_json() {
    let specials: Vec<&str> = PIECES.iter().chain(BAD_PIECES).copied().collect();
    let mut n = 0;
    for len in 0..100 {
        for pos in 0..=len {
            let (a, z) = ("x".repeat(pos), "y".repeat(len - pos));
            for sp in &specials {
                for case in [
                    format!("\"{a}{sp}{z}\""),
                    format!("[\"{a}{sp}{z}\"]"),
                    format!("{{\"{a}{sp}{z}\":1}}"),
                    format!("\"{a}{sp}{z}"),
                ] {
                    rv_check_value(&case);
                    n += 1;
                }
            }
        }
    }
    assert!(n > 100_000, "{n}");
}

#[test]
fn all_short_token_sequences_are_judged_like_serde_json() {
    // Every string of up to five symbols over number and literal characters, bare and in
    // the contexts a value can end in.
    let symbols = ["-", "0", "1", ".", "e", "E", "+", "t", "n", " "];
    let mut cases = vec![String::new()];
    let mut all = Vec::new();
    for _ in 0..5 {
        let mut longer = Vec::new();
        for c in &cases {
            for s in symbols {
                longer.push(format!("{c}{s}"));
            }
        }
        all.extend(longer.iter().cloned());
        cases = longer;
    }
    for c in &all {
        for case in [
            c.clone(),
            format!("[{c}]"),
            format!("{{\"a\":{c}}}"),
            format!("[{c},1]"),
        ] {
            rv_check_value(&case);
        }
    }
    // Literals cut short and extended, structural tokens in every small combination.
    for word in ["true", "false", "null"] {
        for i in 0..=word.len() {
            for tail in ["", "e", "x", " ", ",", "]", "}", "1", "\""] {
                let w = format!("{}{tail}", &word[..i]);
                for case in [w.clone(), format!("[{w}]"), format!("{{\"a\":{w}}}")] {
                    rv_check_value(&case);
                }
            }
        }
    }
    let tokens = ["{", "}", "[", "]", ",", ":", "\"a\"", "1", " "];
    let mut seqs = vec![String::new()];
    for _ in 0..6 {
        let mut longer = Vec::new();
        for c in &seqs {
            for t in tokens {
                let s = format!("{c}{t}");
                rv_check_value(&s);
                longer.push(s);
            }
        }
        seqs = longer;
    }
}

#[test]
fn random_and_mutated_values_are_judged_like_serde_json() {
    let mut r = Rng(0x1234_5678_9abc_def1);
    let mut accepted = 0;
    for i in 0..300_000 {
        let mut text = String::new();
        let depth = r.below(6);
        rv_value(&mut r, &mut text, depth, i % 2 == 1);
        rv_check_value(&text);
        if Raw::parse(&text).is_some() {
            accepted += 1;
            // Items of an array are what serde_json gives.
            if let Ok(v) = serde_json::from_str::<Vec<&RawValue>>(&text) {
                let items: Vec<&str> = Raw::parse(&text)
                    .and_then(Raw::items)
                    .expect("array")
                    .map(Raw::get)
                    .collect();
                let want: Vec<&str> = v.iter().map(|x| x.get()).collect();
                assert_eq!(items, want, "{text:?}");
            }
        }
        for _ in 0..2 {
            if let Some(m) = rv_mutate(&mut r, &text) {
                rv_check_value(&m);
            }
        }
    }
    assert!(accepted > 100_000, "{accepted}");
}

#[test]
fn deep_and_crossed_nesting_is_judged_like_serde_json_without_native_stack() {
    // Up to serde_json's limit, compare; beyond it, the answer is known.
    let mut r = Rng(77);
    for depth in 0..140 {
        let opens: Vec<bool> = (0..depth).map(|_| r.one_in(2)).collect();
        let mut text = String::new();
        for &o in &opens {
            text.push_str(if o { "[" } else { "{\"k\":" });
        }
        text.push('1');
        for &o in opens.iter().rev() {
            text.push(if o { ']' } else { '}' });
        }
        rv_check_value(&text);
        for _ in 0..50 {
            if let Some(m) = rv_mutate(&mut r, &text) {
                rv_check_value(&m);
            }
        }
    }
    let n = 300_000;
    let arrays = format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(Raw::parse(&arrays).is_some());
    assert!(Raw::parse(&arrays[1..]).is_none());
    assert!(Raw::parse(&arrays[..arrays.len() - 1]).is_none());
    let objects = format!("{}null{}", "{\"a\":".repeat(n), "}".repeat(n));
    assert!(Raw::parse(&objects).is_some());
    assert!(Raw::parse(&format!("{objects},")).is_none());
    let mixed = format!("{}0{}", "[{\"\":".repeat(n), "}]".repeat(n));
    assert!(Raw::parse(&mixed).is_some());
    let crossed = format!("{}0{}", "[{\"\":".repeat(n), "]}".repeat(n));
    assert!(Raw::parse(&crossed).is_none());
    let trailing = format!("{}0,{}", "[".repeat(n), "]".repeat(n));
    assert!(Raw::parse(&trailing).is_none());
    assert!(frame(&format!("{{\"headers\":{mixed},\"body\":{arrays}}}")).is_some());
    assert!(frame(&format!("{{\"headers\":{crossed}}}")).is_none());
}

fn rv_view<'a>(e: &Entries<'a>) -> Vec<(String, &'a str)> {
    e.iter().map(|(k, v)| (k.to_string(), v.get())).collect()
}

/// `frame(text)` checked against serde_json's `IndexMap<String, &RawValue>` (first
/// position, last value), and its headers against the same map of the headers value.
fn rv_check_frame(text: &str) {
    let got = frame(text);
    let want = match serde_json::from_str::<indexmap::IndexMap<String, &RawValue>>(text) {
        Err(e) if e.to_string().contains("recursion limit") => return,
        Err(_) => {
            assert!(got.is_none(), "frame accepts {text:?}");
            return;
        }
        Ok(map) => map,
    };
    let Some((top, headers)) = got else {
        // Known divergence (see frames_with_lone_surrogate_keys_are_refused_not_misread): a key holding a lone
        // surrogate escape, valid JSON, makes frame reject the line.
        if text.to_ascii_lowercase().contains("\\ud") {
            return;
        }
        panic!("frame rejects {text:?}");
    };
    let keys: Vec<&str> = want.keys().map(String::as_str).collect();
    let got_keys: Vec<&str> = top.iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(got_keys, keys, "{text:?}");
    for ((k, v), (_, w)) in top.iter().zip(&want) {
        if k == "headers" {
            assert_eq!(v.get(), "{}", "{text:?}");
        } else {
            assert_eq!(v.get(), w.get(), "{text:?} key {k}");
        }
    }
    match (headers, want.get("headers")) {
        (HeadersAt::Missing, None) => {}
        (HeadersAt::NotObject, Some(w)) => assert!(!w.get().starts_with('{'), "{text:?}"),
        (HeadersAt::Object(h), Some(w)) => {
            let wh = serde_json::from_str::<indexmap::IndexMap<String, &RawValue>>(w.get())
                .expect("object headers");
            let wh: Vec<(String, &str)> = wh.iter().map(|(k, v)| (k.clone(), v.get())).collect();
            assert_eq!(rv_view(&h), wh, "{text:?}");
        }
        _ => panic!("headers differ on {text:?}"),
    }
}

const TOP_KEYS: &[&str] = &[
    "headers", "body", "id", "x", "y", "z", "a", "b", "c", "d", "e", "f", "g", "é", "",
];
const HEADER_KEYS: &[&str] = &[
    "id", "to", "type", "x", "groups", "a", "b", "c", "d", "e", "f", "g", "h", "",
];
/// Escaped keys (the layout is never learned from a frame holding one as a kept key).
const ESCAPED_KEYS: &[&str] = &[
    "h\\u0065aders",
    "b\\u006fdy",
    "\\u0078",
    "\\u0069d",
    "i\\u0064",
    "\\ud800",
    "\\ud83d\\ude00",
    "t\\u006f",
];

/// `"key":` with optional whitespace around each part; one time in 30 the key is written
/// with an escape (`escaped`), which must read the same.
fn rv_key(r: &mut Rng, out: &mut String, bad: bool, plain: &str, escaped: &str) {
    rv_ws(r, out, bad);
    out.push('"');
    out.push_str(if r.one_in(30) { escaped } else { plain });
    out.push('"');
    rv_ws(r, out, bad);
    out.push(':');
    rv_ws(r, out, bad);
}

/// A random frame as `prefix`, an id string, `between`, a body, `suffix`: the marked id
/// and body are where a layout would put them when nothing later overrides them.
fn rv_template(r: &mut Rng, bad: bool) -> (String, String, String) {
    let entry = |r: &mut Rng, out: &mut String, keys: &[&str]| {
        rv_ws(r, out, bad);
        out.push('"');
        out.push_str(if r.one_in(40) {
            r.pick(ESCAPED_KEYS)
        } else {
            r.pick(keys)
        });
        out.push('"');
        rv_ws(r, out, bad);
        out.push(':');
        if r.one_in(8) {
            // A nested headers-like object, or a headers value that is not an object.
            out.push_str(r.pick(&["{\"id\":\"q\",\"to\":1}", "{}", "[{\"id\":\"z\"}]", "\"s\""]));
        } else {
            let d = r.below(3);
            rv_value(r, out, d, bad);
        }
    };
    let mut p = String::new();
    rv_ws(r, &mut p, bad);
    p.push('{');
    for _ in 0..r.below(4) {
        entry(r, &mut p, TOP_KEYS);
        p.push(',');
    }
    rv_key(r, &mut p, bad, "headers", "h\\u0065aders");
    p.push('{');
    for _ in 0..r.below(4) {
        entry(r, &mut p, HEADER_KEYS);
        p.push(',');
    }
    rv_key(r, &mut p, bad, "id", "\\u0069d");
    let mut m = String::new();
    rv_ws(r, &mut m, bad);
    for _ in 0..r.below(4) {
        m.push(',');
        entry(r, &mut m, HEADER_KEYS);
    }
    m.push('}');
    for _ in 0..r.below(4) {
        m.push(',');
        entry(r, &mut m, TOP_KEYS);
    }
    m.push(',');
    rv_key(r, &mut m, bad, "body", "b\\u006fdy");
    let mut s = String::new();
    for _ in 0..r.below(4) {
        s.push(',');
        entry(r, &mut s, TOP_KEYS);
    }
    rv_ws(r, &mut s, bad);
    s.push('}');
    rv_ws(r, &mut s, bad);
    (p, m, s)
}

fn rv_id(r: &mut Rng) -> String {
    let mut id = String::new();
    match r.below(12) {
        0 => {
            let d = r.below(2);
            rv_value(r, &mut id, d, true);
        }
        1 => id.push_str(r.pick(&["\"a\\x\"", "\"abc", "\"a\"b\"", "5", " \"a\"", "\"a\" "])),
        _ => {
            let bad = r.one_in(10);
            rv_string(r, &mut id, bad)
        }
    }
    id
}

fn rv_body(r: &mut Rng) -> String {
    let mut body = String::new();
    match r.below(12) {
        0 => body.push_str(r.pick(&["1,2", "1 2", "\"a\"}", "", " 1", "01", "{", "[1,]", "1}"])),
        _ => {
            let d = r.below(4);
            let bad = r.one_in(6);
            rv_value(r, &mut body, d, bad);
            if !r.one_in(8) {
                body = body
                    .trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
                    .into();
            }
        }
    }
    body
}

#[test]
fn random_frames_give_the_entries_serde_json_gives() {
    let mut r = Rng(0xdead_beef_cafe_f00d);
    for i in 0..150_000 {
        let (p, m, s) = rv_template(&mut r, i % 3 == 2);
        let line = format!("{p}{}{m}{}{s}", rv_id(&mut r), rv_body(&mut r));
        rv_check_frame(&line);
        rv_check_value(&line);
        for _ in 0..2 {
            if let Some(x) = rv_mutate(&mut r, &line) {
                rv_check_frame(&x);
                rv_check_value(&x);
            }
        }
    }
    for fixed in [
        r#"{"\ud800":1}"#,
        r#"{"headers":{"\udc00":1}}"#,
        r#"{"headers":{"id":"a"},"headers":[1]}"#,
        r#"{"headers":[1],"headers":{"id":"a"}}"#,
        r#"{"h\u0065aders":{"id":"a"},"body":1,"headers":{"\u0069d":"b","id":"c"}}"#,
        r#"{"body":1,"headers":{"id":"a"},"body":2}"#,
    ] {
        rv_check_frame(fixed);
    }
}

/// Lines read one after another through one layout give what a full scan gives.
#[test]
fn lines_read_through_one_layout_match_a_full_scan() {
    let mut r = Rng(0x0bad_5eed_1234_4321);
    let mut reused = 0;
    let mut lines = 0;
    for t in 0..25_000 {
        let (p, m, s) = rv_template(&mut r, t % 8 == 7);
        let mut layout = Layout::default();
        let mut last = format!("{p}\"first\"{m}{{\"n\":1}}{s}");
        for _ in 0..40 {
            let line = match r.below(10) {
                0..=4 => format!("{p}{}{m}{}{s}", rv_id(&mut r), rv_body(&mut r)),
                5 => rv_mutate(&mut r, &last).unwrap_or_default(),
                6 => {
                    // Prefixes and extensions of the remembered line.
                    let mut x = last.clone();
                    if r.one_in(2) {
                        let cut = r.below(x.len() + 1);
                        x = x.get(..cut).unwrap_or_default().to_string();
                    } else {
                        x.push_str(r.pick(&[" ", "}", ",\"a\":1}", "\n", "1", "\"\""]));
                    }
                    x
                }
                7 => {
                    // The id and body moved around the fixed bytes.
                    let (id, body) = (rv_id(&mut r), rv_body(&mut r));
                    format!("{p}{body}{m}{id}{s}")
                }
                8 => {
                    let (p2, m2, s2) = rv_template(&mut r, false);
                    format!("{p2}{}{m2}{}{s2}", rv_id(&mut r), rv_body(&mut r))
                }
                _ => {
                    let (p2, m2, s2) = rv_template(&mut r, false);
                    let id = rv_id(&mut r);
                    let body = rv_body(&mut r);
                    match r.below(3) {
                        0 => format!("{p}{id}{m2}{body}{s2}"),
                        1 => format!("{p2}{id}{m}{body}{s}"),
                        _ => format!("{p}{id}{m}{body}{s2}"),
                    }
                }
            };
            let before = layout.reused();
            let got = frame_with(&line, &mut layout);
            let want = frame(&line);
            let hit = layout.reused() > before;
            assert!(
                same(got, want),
                "layout reuse (hit: {hit}) differs from a full scan on {line:?} after {last:?}"
            );
            // A hit must also agree with serde_json.
            if hit {
                rv_check_frame(&line);
            }
            lines += 1;
            if frame(&line).is_some() {
                last = line;
            }
        }
        reused += layout.reused();
    }
    assert!(reused > 40_000, "{reused} of {lines}");
}

/// The cases the review found: a duplicate key whose kept (first) position and kept (last)
/// value lie on different sides of the id or the body.
#[test]
fn duplicate_keys_whose_value_lies_across_the_id_or_body_are_not_misread() {
    for (learned, line) in [
        (
            r#"{"x":1,"headers":{"id":"a"},"x":2,"body":3}"#,
            r#"{"x":1,"headers":{"id":"abcd"},"x":2,"body":3}"#,
        ),
        (
            r#"{"x":1,"headers":{"id":"a"},"body":3,"x":2}"#,
            r#"{"x":1,"headers":{"id":"abcd"},"body":3,"x":2}"#,
        ),
        (
            r#"{"headers":{"id":"a"},"x":1,"body":3,"x":2}"#,
            r#"{"headers":{"id":"a"},"x":1,"body":345,"x":2}"#,
        ),
        (
            r#"{"headers":{"to":"r","id":"a","to":"s"},"body":3}"#,
            r#"{"headers":{"to":"r","id":"abc","to":"s"},"body":3}"#,
        ),
    ] {
        let mut layout = Layout::default();
        frame_with(learned, &mut layout);
        assert!(same(frame_with(line, &mut layout), frame(line)), "{line}");
    }
}

/// `JSON.parse` takes keys holding lone surrogate escapes, which a Rust `String` cannot hold:
/// such a line is refused as a frame (a clear error to its sender), never misread.
#[test]
fn frames_with_lone_surrogate_keys_are_refused_not_misread() {
    for line in [
        r#"{"\ud800":1}"#,
        r#"{"headers":{"\udc00":1},"body":1}"#,
        r#"{"headers":{"\ud800":1},"headers":{"id":"a"},"body":1}"#,
    ] {
        assert!(Raw::parse(line).is_some(), "{line}");
        assert!(frame(line).is_none(), "{line}");
    }
}

/// Objects with many keys find duplicates through an index (a linear search per key made a
/// 1 MB object of 100k keys cost 12 s): first position and last value still hold.
#[test]
fn objects_with_thousands_of_keys_keep_first_positions_and_last_values() {
    let mut headers = String::from("{");
    for i in 0..5000 {
        headers.push_str(&format!("\"k{}\":{},", i % 3000, i));
    }
    headers.push_str("\"id\":\"x\"}");
    let line = format!("{{\"headers\":{headers},\"body\":1}}");
    let (top, found) = frame(&line).expect("a frame");
    assert_eq!(top.len(), 2);
    let HeadersAt::Object(h) = found else {
        panic!("headers should be an object")
    };
    let want = serde_json::from_str::<indexmap::IndexMap<String, &RawValue>>(&headers)
        .expect("headers object");
    let got: Vec<(String, &str)> = h.iter().map(|(k, v)| (k.to_string(), v.get())).collect();
    let want: Vec<(String, &str)> = want.iter().map(|(k, v)| (k.clone(), v.get())).collect();
    assert_eq!(got.len(), 3001);
    assert_eq!(got[0], ("k0".to_string(), "3000"));
    assert_eq!(got, want);
}
