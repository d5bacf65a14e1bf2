//! A validating single-pass JSON scanner for frames.
//!
//! Every frame is checked to be JSON on every hop: the server routes only JSON, and a client
//! splices bodies into the batch its JS thread parses, where an unchecked body could inject
//! events. serde_json did this through its visitor machinery at ~1.5 bytes/ns (~0.3 µs for a
//! 330-byte frame, on both the server and the receiving client); this scanner only checks the
//! grammar and hands out slices, skipping string contents eight bytes at a time.
//!
//! It accepts exactly RFC 8259 JSON, as `JSON.parse` does: no comments, no trailing commas,
//! only ` \t\n\r` as whitespace, no raw control characters in strings, and any `\uXXXX` escape
//! (lone surrogates included). Nesting depth is unbounded and costs no native stack.

use std::borrow::Cow;
use std::collections::HashMap;

/// A JSON value as a slice of the line it was read from, known to be valid JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw<'a>(&'a str);

impl<'a> Raw<'a> {
    /// The value's JSON text.
    pub fn get(self) -> &'a str {
        self.0
    }

    /// `text` as one JSON value, or `None` when it is anything else (surrounding whitespace
    /// is allowed, as `JSON.parse` allows it, and kept).
    pub fn parse(text: &'a str) -> Option<Raw<'a>> {
        let mut s = Scan::new(text.as_bytes());
        s.value().ok()?;
        s.ws();
        s.at_end().then_some(Raw(text))
    }

    /// The elements of an array value; `None` for any other value.
    pub fn items(self) -> Option<Items<'a>> {
        let mut s = Scan::new(self.0.as_bytes());
        s.ws();
        if !s.eat(b'[') {
            return None;
        }
        Some(Items {
            text: self.0,
            scan: s,
            first: true,
        })
    }
}

/// The elements of an array value, in order (see [`Raw::items`]).
#[derive(Clone)]
pub struct Items<'a> {
    text: &'a str,
    scan: Scan<'a>,
    first: bool,
}

impl<'a> Iterator for Items<'a> {
    type Item = Raw<'a>;

    fn next(&mut self) -> Option<Raw<'a>> {
        let s = &mut self.scan;
        s.ws();
        if s.peek() == Some(b']') {
            return None;
        }
        if !std::mem::take(&mut self.first) {
            if !s.eat(b',') {
                return None;
            }
            s.ws();
        }
        let start = s.i;
        s.value().ok()?;
        self.text.get(start..s.i).map(Raw)
    }
}

/// An object's entries: keys in their first position with their last value, as `JSON.parse`
/// leaves them.
pub type Entries<'a> = Vec<(Cow<'a, str>, Raw<'a>)>;

/// What [`frame`] found under the `headers` key.
pub enum HeadersAt<'a> {
    /// No `headers` key.
    Missing,
    /// A value that is not an object.
    NotObject,
    /// An object's entries.
    Object(Entries<'a>),
}

/// Stands in for the `headers` value among a frame's top-level entries.
pub const HEADERS_PLACEHOLDER: Raw<'static> = Raw("{}");

/// Scans a line that must be one JSON object: its top-level entries (with
/// [`HEADERS_PLACEHOLDER`] for `headers`) and, in the same pass, the `headers` value. `None`
/// when the line is not a JSON object.
pub fn frame(text: &str) -> Option<(Entries<'_>, HeadersAt<'_>)> {
    let mut s = Scan::new(text.as_bytes());
    let mut top = Collect::with_capacity(4);
    let mut headers = HeadersAt::Missing;
    s.ws();
    if !s.eat(b'{') {
        return None;
    }
    s.members(text, |s, key| {
        if key == "headers" && s.peek() == Some(b'{') {
            s.i += 1;
            headers = HeadersAt::Object(s.entries(text)?);
        } else {
            let start = s.i;
            s.value().ok()?;
            if key != "headers" {
                top.put(key, Raw(text.get(start..s.i)?));
                return Some(());
            }
            headers = HeadersAt::NotObject;
        }
        top.put(key, HEADERS_PLACEHOLDER);
        Some(())
    })?;
    s.ws();
    s.at_end().then_some((top.out, headers))
}

/// The layout of the last frame [`frame_with`] scanned in full: the line's bytes around its
/// id and body values and where every entry sits.
///
/// A connection's frames mostly differ only in `headers.id` and `body`. When a line's other
/// bytes equal the remembered ones exactly, and its id is a valid string and its body a valid
/// value, the line has the same grammar structure as the remembered one (JSON is context
/// free: swapping one value for another leaves the rest's parse unchanged), so its entries are
/// the remembered ones at shifted offsets. Only the id and body are scanned; the headers,
/// about half of a frame and most of its tokens, are compared with `memcmp`.
#[derive(Debug, Default)]
pub struct Layout {
    ready: bool,
    /// Bytes before the id value, between it and the body value, and after the body value.
    head: Vec<u8>,
    mid: Vec<u8>,
    tail: Vec<u8>,
    top: Vec<Spot>,
    headers: Vec<Spot>,
    reused: u64,
}

/// An entry's key and value, as offsets from the start of the part of the line they lie in
/// (before the id, between id and body, or after the body: never across one of those).
#[derive(Debug, Clone, Copy)]
struct Spot {
    part: usize,
    key: (usize, usize),
    value: At,
}

#[derive(Debug, Clone, Copy)]
enum At {
    Span(usize, usize),
    Id,
    Body,
    Placeholder,
}

/// Bytes of a line outside its id and body beyond which its layout is not remembered (the
/// usual headers are 100-300 bytes).
pub const MAX_LAYOUT_BYTES: usize = 4096;

/// Like [`frame`], through a connection's [`Layout`].
pub fn frame_with<'a>(text: &'a str, layout: &mut Layout) -> Option<(Entries<'a>, HeadersAt<'a>)> {
    if let Some(hit) = layout.reuse(text) {
        layout.reused += 1;
        return Some(hit);
    }
    let (top, headers) = frame(text)?;
    layout.learn(text, &top, &headers);
    Some((top, headers))
}

impl Layout {
    /// How many lines were read through the remembered layout (for tests and tracing).
    pub fn reused(&self) -> u64 {
        self.reused
    }

    fn reuse<'a>(&self, text: &'a str) -> Option<(Entries<'a>, HeadersAt<'a>)> {
        if !self.ready {
            return None;
        }
        let b = text.as_bytes();
        if !b.starts_with(&self.head) {
            return None;
        }
        let id_start = self.head.len();
        if b.get(id_start) != Some(&b'"') {
            return None;
        }
        let (id_end, _) = string_end(b, id_start + 1).ok()?;
        if !b.get(id_end..)?.starts_with(&self.mid) {
            return None;
        }
        let body_start = id_end + self.mid.len();
        // A full scan would start the body after any whitespace.
        if matches!(b.get(body_start)?, b' ' | b'\t' | b'\n' | b'\r') {
            return None;
        }
        let mut s = Scan::new(b);
        s.i = body_start;
        s.value().ok()?;
        let body_end = s.i;
        if b.get(body_end..)? != self.tail.as_slice() {
            return None;
        }
        let bases = [0, id_end, body_end];
        let entries = |spots: &[Spot]| -> Option<Entries<'a>> {
            let mut out = Vec::with_capacity(spots.len());
            for spot in spots {
                let base = *bases.get(spot.part)?;
                let key = text.get(base + spot.key.0..base + spot.key.1)?;
                let value = match spot.value {
                    At::Span(a, z) => Raw(text.get(base + a..base + z)?),
                    At::Id => Raw(text.get(id_start..id_end)?),
                    At::Body => Raw(text.get(body_start..body_end)?),
                    At::Placeholder => HEADERS_PLACEHOLDER,
                };
                out.push((Cow::Borrowed(key), value));
            }
            Some(out)
        };
        Some((
            entries(&self.top)?,
            HeadersAt::Object(entries(&self.headers)?),
        ))
    }

    /// Remembers `text`'s layout when it has a string id in an object `headers` and a body
    /// after it, and no escaped keys; forgets the old one either way.
    fn learn(&mut self, text: &str, top: &Entries<'_>, headers: &HeadersAt<'_>) {
        self.ready = false;
        let HeadersAt::Object(h) = headers else {
            return;
        };
        let offset = |s: &str| {
            (s.as_ptr() as usize)
                .checked_sub(text.as_ptr() as usize)
                .filter(|o| o + s.len() <= text.len())
                .map(|o| (o, o + s.len()))
        };
        let (Some((_, id)), Some((_, body))) = (
            h.iter().find(|(k, _)| k == "id"),
            top.iter().find(|(k, _)| k == "body"),
        ) else {
            return;
        };
        let (Some(id), Some(body)) = (offset(id.get()), offset(body.get())) else {
            return;
        };
        if text.as_bytes().get(id.0) != Some(&b'"') || id.1 > body.0 {
            return;
        }
        let part_of = |pos: usize| {
            if pos < id.0 {
                0
            } else if pos < body.0 {
                1
            } else {
                2
            }
        };
        let spots = |entries: &Entries<'_>, is_top: bool| -> Option<Vec<Spot>> {
            entries
                .iter()
                .map(|(k, v)| {
                    let Cow::Borrowed(k) = k else { return None };
                    let key = offset(k)?;
                    let part = part_of(key.0);
                    let base = [0, id.1, body.1][part];
                    let value = match (is_top, *k) {
                        (true, "headers") => At::Placeholder,
                        (true, "body") => At::Body,
                        (false, "id") => At::Id,
                        _ => {
                            let (a, z) = offset(v.get())?;
                            // A duplicate key keeps its first position and its last value,
                            // which may lie across the id or the body from it: its offset
                            // would shift differently. Such a line is not remembered.
                            if part_of(a) != part {
                                return None;
                            }
                            At::Span(a.checked_sub(base)?, z - base)
                        }
                    };
                    Some(Spot {
                        part,
                        key: (key.0.checked_sub(base)?, key.1 - base),
                        value,
                    })
                })
                .collect()
        };
        let (Some(top_spots), Some(header_spots)) = (spots(top, true), spots(h, false)) else {
            return;
        };
        let b = text.as_bytes();
        let (Some(head), Some(mid), Some(tail)) =
            (b.get(..id.0), b.get(id.1..body.0), b.get(body.1..))
        else {
            return;
        };
        // Kept per connection: a frame with huge headers must not pin its size until the next.
        if head.len() + mid.len() + tail.len() > MAX_LAYOUT_BYTES {
            return;
        }
        for (buf, part) in [
            (&mut self.head, head),
            (&mut self.mid, mid),
            (&mut self.tail, tail),
        ] {
            buf.clear();
            buf.extend_from_slice(part);
        }
        self.top = top_spots;
        self.headers = header_spots;
        self.ready = true;
    }
}

/// Entries past which duplicates are found through a hash index: a linear search per key made
/// an object of 100k keys (1 MB) cost 12 s of CPU.
const LINEAR_KEYS: usize = 32;

/// Collects an object's entries: a duplicate key keeps its first position and its last value.
struct Collect<'a> {
    out: Entries<'a>,
    index: Option<HashMap<Cow<'a, str>, usize>>,
}

impl<'a> Collect<'a> {
    fn with_capacity(n: usize) -> Self {
        Collect {
            out: Vec::with_capacity(n),
            index: None,
        }
    }

    fn put(&mut self, k: Cow<'a, str>, v: Raw<'a>) {
        if let Some(index) = &mut self.index {
            match index.get(&k).and_then(|&i| self.out.get_mut(i)) {
                Some(slot) => slot.1 = v,
                None => {
                    index.insert(k.clone(), self.out.len());
                    self.out.push((k, v));
                }
            }
            return;
        }
        match self.out.iter_mut().find(|(ek, _)| *ek == k) {
            Some(slot) => slot.1 = v,
            None => {
                self.out.push((k, v));
                if self.out.len() > LINEAR_KEYS {
                    let index = self
                        .out
                        .iter()
                        .enumerate()
                        .map(|(i, (k, _))| (k.clone(), i))
                        .collect();
                    self.index = Some(index);
                }
            }
        }
    }
}

/// Why a value was rejected; the scanner only needs to know that it was.
struct Invalid;

/// Brackets enclosing the current value: the first [`INLINE`] without allocating.
struct Stack {
    inline: [u8; INLINE],
    len: usize,
    spill: Vec<u8>,
}

const INLINE: usize = 32;

impl Stack {
    fn new() -> Self {
        Stack {
            inline: [0; INLINE],
            len: 0,
            spill: Vec::new(),
        }
    }

    fn push(&mut self, b: u8) {
        if self.len < INLINE {
            self.inline[self.len] = b;
        } else {
            self.spill.push(b);
        }
        self.len += 1;
    }

    fn top(&self) -> Option<u8> {
        match self.len {
            0 => None,
            n if n <= INLINE => Some(self.inline[n - 1]),
            _ => self.spill.last().copied(),
        }
    }

    fn pop(&mut self) {
        if self.len > INLINE {
            self.spill.pop();
        }
        self.len = self.len.saturating_sub(1);
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `v` that is zero (exact for the lowest such byte).
#[inline]
fn zero_bytes(v: u64) -> u64 {
    v.wrapping_sub(ONES) & !v & HIGHS
}

/// High bit set in each byte that ends a run of plain string characters: `"`, `\` or a
/// control character (exact for the lowest such byte; bytes >= 0x80 never match).
#[inline]
fn specials(v: u64) -> u64 {
    zero_bytes(v ^ (ONES * u64::from(b'"')))
        | zero_bytes(v ^ (ONES * u64::from(b'\\')))
        | (v.wrapping_sub(ONES * 0x20) & !v & HIGHS)
}

/// The index of the first `"`, `\\` or control character at or after `i` (or the end).
///
/// Short runs (keys, names) go eight bytes at a time. A run longer than 32 bytes (a body
/// field, ~490 hex digits of ciphertext) goes to `memchr2`'s SIMD search for the quote or
/// backslash, then one branch-free pass over the skipped bytes for control characters,
/// which the compiler vectorises: about three times faster than words on long runs.
fn skip_plain(b: &[u8], mut i: usize) -> usize {
    for _ in 0..4 {
        let Some(Ok(word)) = b.get(i..i + 8).map(<[u8; 8]>::try_from) else {
            while b
                .get(i)
                .is_some_and(|&c| c >= 0x20 && c != b'"' && c != b'\\')
            {
                i += 1;
            }
            return i;
        };
        let hits = specials(u64::from_le_bytes(word));
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let rest = b.get(i..).unwrap_or_default();
    #[cfg(target_arch = "x86_64")]
    if rest.len() >= 32 && is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        return i + unsafe { special_avx2(rest) };
    }
    let run = rest
        .get(..memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len()))
        .unwrap_or_default();
    if run.iter().fold(false, |any, &c| any | (c < 0x20)) {
        i + run.iter().position(|&c| c < 0x20).unwrap_or(run.len())
    } else {
        i + run.len()
    }
}

/// The first quote, backslash or control character of `rest` (at least 32 bytes), or its
/// length: the search and the control check of [`skip_plain`] in one pass of 32-byte
/// steps, the last step overlapping the one before it.
///
/// # Safety
///
/// The CPU must have AVX2, and `rest` must hold at least 32 bytes (the last step starts at
/// `len - 32`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn special_avx2(rest: &[u8]) -> usize {
    debug_assert!(rest.len() >= 32);
    use std::arch::x86_64::*;
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let control = _mm256_set1_epi8(0x1f);
    let len = rest.len();
    let mut at = 0;
    loop {
        let start = at.min(len - 32);
        // SAFETY: start + 32 <= len.
        let c = _mm256_loadu_si256(rest.as_ptr().add(start).cast());
        let hits = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi8(c, quote), _mm256_cmpeq_epi8(c, backslash)),
            _mm256_cmpeq_epi8(_mm256_min_epu8(c, control), c),
        );
        // Bytes before `at` were clean: an overlapping last step ignores them.
        let mask = (_mm256_movemask_epi8(hits) as u32) >> (at - start);
        if mask != 0 {
            return at + mask.trailing_zeros() as usize;
        }
        at = start + 32;
        if at == len {
            return len;
        }
    }
}

/// Where the string whose contents start at `i` ends (after its closing quote), and whether it
/// holds an escape. Works in locals: through `self` the index was stored back to memory on
/// every word, at half the speed.
fn string_end(b: &[u8], mut i: usize) -> Result<(usize, bool), Invalid> {
    let mut escaped = false;
    loop {
        i = skip_plain(b, i);
        let c = *b.get(i).ok_or(Invalid)?;
        i += 1;
        match c {
            b'"' => return Ok((i, escaped)),
            b'\\' => {
                escaped = true;
                match b.get(i).ok_or(Invalid)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 1,
                    b'u' => {
                        let hex = b.get(i + 1..i + 5).ok_or(Invalid)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return Err(Invalid);
                        }
                        i += 5;
                    }
                    _ => return Err(Invalid),
                }
            }
            c if c < 0x20 => return Err(Invalid),
            _ => {}
        }
    }
}

#[derive(Clone)]
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn new(b: &'a [u8]) -> Self {
        Scan { b, i: 0 }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    fn at_end(&self) -> bool {
        self.i >= self.b.len()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// A string's contents after its opening quote, through the closing one; `true` when it
    /// holds an escape.
    fn string(&mut self) -> Result<bool, Invalid> {
        let (end, escaped) = string_end(self.b, self.i)?;
        self.i = end;
        Ok(escaped)
    }

    fn digits(&mut self) -> Result<(), Invalid> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if self.i == start {
            Err(Invalid)
        } else {
            Ok(())
        }
    }

    fn number(&mut self) -> Result<(), Invalid> {
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits()?,
            _ => return Err(Invalid),
        }
        if self.eat(b'.') {
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digits()?;
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Invalid> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// `"key":` with the whitespace around the colon; the key unescaped only when needed.
    fn key(&mut self, text: &'a str) -> Option<Cow<'a, str>> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        let escaped = self.string().ok()?;
        let key = if escaped {
            Cow::Owned(serde_json::from_str::<String>(text.get(start - 1..self.i)?).ok()?)
        } else {
            Cow::Borrowed(text.get(start..self.i - 1)?)
        };
        self.ws();
        self.eat(b':').then_some(key)
    }

    /// An object's entries after its opening brace, through the closing one.
    fn entries(&mut self, text: &'a str) -> Option<Entries<'a>> {
        let mut out = Collect::with_capacity(8);
        self.members(text, |s, key| {
            let start = s.i;
            s.value().ok()?;
            out.put(key, Raw(text.get(start..s.i)?));
            Some(())
        })?;
        Some(out.out)
    }

    /// An object's members after its opening brace, through the closing one: `member` is
    /// called with each key and the scanner at its value, which it must consume.
    fn members(
        &mut self,
        text: &'a str,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Option<()>,
    ) -> Option<()> {
        self.ws();
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let key = self.key(text)?;
            self.ws();
            member(self, key)?;
            self.ws();
            if self.eat(b'}') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
            self.ws();
        }
    }

    /// One value of any depth (leading whitespace skipped), without recursion.
    fn value(&mut self) -> Result<(), Invalid> {
        let mut stack = Stack::new();
        loop {
            self.ws();
            match self.peek().ok_or(Invalid)? {
                b'{' => {
                    self.i += 1;
                    self.ws();
                    if !self.eat(b'}') {
                        stack.push(b'{');
                        self.member_key()?;
                        continue;
                    }
                }
                b'[' => {
                    self.i += 1;
                    self.ws();
                    if !self.eat(b']') {
                        stack.push(b'[');
                        continue;
                    }
                }
                b'"' => {
                    self.i += 1;
                    self.string()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return Err(Invalid),
            }
            // A value ended: close every container it completes, then go on to the next.
            loop {
                let Some(open) = stack.top() else {
                    return Ok(());
                };
                self.ws();
                match self.peek().ok_or(Invalid)? {
                    b',' => {
                        self.i += 1;
                        if open == b'{' {
                            self.ws();
                            self.member_key()?;
                        }
                        break;
                    }
                    b']' if open == b'[' => {
                        self.i += 1;
                        stack.pop();
                    }
                    b'}' if open == b'{' => {
                        self.i += 1;
                        stack.pop();
                    }
                    _ => return Err(Invalid),
                }
            }
        }
    }

    /// A nested object's `"key":`, checked but not kept.
    fn member_key(&mut self) -> Result<(), Invalid> {
        if !self.eat(b'"') {
            return Err(Invalid);
        }
        self.string()?;
        self.ws();
        if self.eat(b':') {
            Ok(())
        } else {
            Err(Invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::scan_differential::{same, Rng};
    use serde_json::value::RawValue;

    #[test]
    fn plain_runs_end_at_the_first_quote_backslash_or_control_byte_for_every_length_and_start() {
        let naive = |b: &[u8], i: usize| {
            (i..b.len())
                .find(|&j| b[j] < 0x20 || b[j] == b'"' || b[j] == b'\\')
                .unwrap_or(b.len())
        };
        for len in 0..140 {
            let clean: Vec<u8> = (0..len).map(|j| b"ab0\x7f\xe9 ~"[j % 7]).collect();
            for start in [0, 1, 5, 31, 33].into_iter().filter(|&s| s <= len) {
                assert_eq!(skip_plain(&clean, start), len, "len {len} start {start}");
                for at in start..len {
                    for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                        let mut b = clean.clone();
                        b[at] = special;
                        // A second one later must not win.
                        if at + 3 < len {
                            b[at + 3] = b'"';
                        }
                        assert_eq!(
                            skip_plain(&b, start),
                            naive(&b, start),
                            "{len} {start} {at}"
                        );
                    }
                }
            }
        }
    }

    /// Replaces, inserts or removes one byte at a random place.
    fn mutate_byte(bytes: &mut Vec<u8>, alphabet: &[u8], r: &mut Rng) {
        let at = r.below(bytes.len());
        let with = alphabet[r.below(alphabet.len())];
        match r.next() % 3 {
            0 => bytes[at] = with,
            1 => bytes.insert(at, with),
            _ => {
                bytes.remove(at);
            }
        }
    }

    fn serde_accepts(text: &str) -> bool {
        serde_json::from_str::<&RawValue>(text).is_ok()
    }

    /// Strings every JSON rule is exercised by, valid and not.
    const CASES: &[&str] = &[
        "0",
        "-0",
        "1.5",
        "-1.5e+3",
        "1E-2",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "+1",
        "00",
        "-01",
        "true",
        "false",
        "null",
        "tru",
        "nul",
        "True",
        "\"\"",
        "\"a\\\"b\"",
        "\"\\u00e9\"",
        "\"\\ud800\"",
        "\"\\u12\"",
        "\"\\x\"",
        "\"\\/\"",
        "\"a\tb\"",
        "\"\u{7f}\"",
        "\"é\"",
        "[]",
        "[ ]",
        "[1,]",
        "[,1]",
        "[1 2]",
        "[[[]]]",
        "[[]",
        "[]]",
        "{}",
        "{ }",
        "{\"a\":1}",
        "{\"a\" : [1, {\"b\":null}] }",
        "{\"a\":1,}",
        "{a:1}",
        "{\"a\"1}",
        "{\"a\":}",
        "{,}",
        "{\"a\":1 \"b\":2}",
        "[1]x",
        " [1] ",
        "\t{}\r\n",
        "",
        " ",
        "[\"\\u0000\"]",
        "\"\\",
        "\"abc",
        "[\"abcdefghijklmnop\\n\", \"qrstuvwxyz\"]",
        "{\"\\u0041\":1}",
        "1 2",
        "[1e400]",
        "-1e-400",
        "[true,false,null]",
        "[tr]",
        "{\"a\":[}",
        "{\"a\":{]}",
    ];

    #[test]
    fn values_are_accepted_exactly_when_serde_json_accepts_them() {
        for case in CASES {
            assert_eq!(Raw::parse(case).is_some(), serde_accepts(case), "{case:?}");
        }
    }

    #[test]
    fn strings_are_checked_across_every_word_boundary() {
        // A special character at each offset of an eight-byte word, before and after, in
        // short runs and in runs long enough for the SIMD search.
        for pad in (0..40).chain([63, 64, 65, 100, 500]) {
            let plain = "x".repeat(pad);
            for special in ["\\n", "\\u0041", "\u{1}", "\u{1f}", "é", "\\q", "\\"] {
                for case in [
                    format!("\"{plain}{special}\""),
                    format!("\"{special}{plain}\""),
                    format!("[\"{plain}{special}{plain}\",1]"),
                ] {
                    assert_eq!(
                        Raw::parse(&case).is_some(),
                        serde_accepts(&case),
                        "{case:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn deep_nesting_costs_no_stack() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(Raw::parse(&deep).is_some());
        let mixed = format!("{}1{}", "{\"a\":[".repeat(50), "]}".repeat(50));
        assert!(Raw::parse(&mixed).is_some());
        let unbalanced = format!("{}1{}", "[".repeat(100), "]".repeat(99));
        assert!(Raw::parse(&unbalanced).is_none());
        let crossed = format!("{}1{}", "[{\"a\":".repeat(40), "]}".repeat(40));
        assert!(Raw::parse(&crossed).is_none());
    }

    #[test]
    fn array_items_are_the_elements_in_order() {
        let raw = Raw::parse(r#" [ "a" , {"b":[1,2]},3 ,[] ] "#).expect("valid");
        let items: Vec<&str> = raw.items().expect("array").map(Raw::get).collect();
        assert_eq!(items, ["\"a\"", "{\"b\":[1,2]}", "3", "[]"]);
        assert_eq!(
            Raw::parse("[]").and_then(Raw::items).map(Iterator::count),
            Some(0)
        );
        assert!(Raw::parse("{}").and_then(Raw::items).is_none());
    }

    #[test]
    fn frames_give_entries_in_first_position_with_last_value() {
        let (top, headers) =
            frame(r#" {"a":1,"headers":{"to":"x","t\u006f":"y","n":[1]},"body":{"k":"v"},"a":2} "#)
                .expect("object");
        let top: Vec<(&str, &str)> = top.iter().map(|(k, v)| (k.as_ref(), v.get())).collect();
        assert_eq!(
            top,
            [("a", "2"), ("headers", "{}"), ("body", "{\"k\":\"v\"}")]
        );
        let HeadersAt::Object(h) = headers else {
            panic!("headers should be an object")
        };
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_ref(), v.get())).collect();
        assert_eq!(h, [("to", "\"y\""), ("n", "[1]")]);
        assert!(matches!(
            frame("{\"headers\":[1]}"),
            Some((_, HeadersAt::NotObject))
        ));
        assert!(matches!(frame("{}"), Some((_, HeadersAt::Missing))));
        for bad in [
            "[1]",
            "{\"a\":1",
            "{\"a\":1}x",
            "{\"headers\":{\"a\":}}",
            "{\"a\":1,}",
            "1",
        ] {
            assert!(frame(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn frames_differing_in_id_and_body_reuse_the_layout() {
        let mut layout = Layout::default();
        let first = r#"{"headers":{"id":"a1","to":"r","groups":["g"]},"body":{"n":1},"x":2}"#;
        assert!(same(frame_with(first, &mut layout), frame(first)));
        assert_eq!(layout.reused(), 0);
        for line in [
            r#"{"headers":{"id":"a much longer id","to":"r","groups":["g"]},"body":[1,{"b":"c"}],"x":2}"#,
            r#"{"headers":{"id":"","to":"r","groups":["g"]},"body":"s","x":2}"#,
            r#"{"headers":{"id":"\u0041\n","to":"r","groups":["g"]},"body":null,"x":2}"#,
        ] {
            assert!(same(frame_with(line, &mut layout), frame(line)), "{line}");
        }
        assert_eq!(layout.reused(), 3);
        for line in [
            // Not a string id, a body that is not one value, other header bytes, whitespace.
            r#"{"headers":{"id":5,"to":"r","groups":["g"]},"body":1,"x":2}"#,
            r#"{"headers":{"id":"a","to":"r","groups":["g"]},"body":1,2,"x":2}"#,
            r#"{"headers":{"id":"a","to":"q","groups":["g"]},"body":1,"x":2}"#,
            r#"{"headers":{"id":"a","to":"r","groups":["g"]},"body": 1,"x":2}"#,
            r#"{"headers":{"id":"a\x","to":"r","groups":["g"]},"body":1,"x":2}"#,
        ] {
            let mut fresh = Layout::default();
            frame_with(first, &mut fresh);
            assert!(same(frame_with(line, &mut fresh), frame(line)), "{line}");
            assert_eq!(fresh.reused(), 0, "{line}");
        }
    }

    #[test]
    fn frames_with_headers_past_the_layout_limit_are_not_remembered() {
        let big = "x".repeat(MAX_LAYOUT_BYTES);
        let line = |id: &str| format!(r#"{{"headers":{{"id":"{id}","pad":"{big}"}},"body":1}}"#);
        let mut layout = Layout::default();
        let (first, second) = (line("a"), line("b"));
        assert!(same(frame_with(&first, &mut layout), frame(&first)));
        assert!(same(frame_with(&second, &mut layout), frame(&second)));
        assert_eq!(layout.reused(), 0);
        assert!(layout.head.capacity() + layout.mid.capacity() + layout.tail.capacity() < 1024);
    }

    /// Mutations of a frame read through the layout of the frame itself give what a full
    /// scan gives, hit or miss.
    #[test]
    fn mutated_frames_read_through_a_layout_match_a_full_scan() {
        let seed = r#"{"headers":{"to":"r","id":"AbCd","type":"message","groups":["g"]},"body":{"seq":1,"data":"xx"},"z":[]}"#;
        let alphabet = b"{}[]\":,\\ 0123456789aetrfnl.-x";
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        let mut reused = 0;
        for _ in 0..20_000 {
            let mut layout = Layout::default();
            frame_with(seed, &mut layout);
            let mut bytes = seed.as_bytes().to_vec();
            mutate_byte(&mut bytes, alphabet, &mut r);
            let Ok(text) = std::str::from_utf8(&bytes) else {
                continue;
            };
            assert!(same(frame_with(text, &mut layout), frame(text)), "{text}");
            reused += layout.reused();
        }
        assert!(reused > 1_000, "{reused}");
    }

    /// Mutates valid frames byte by byte (deterministically) and checks the scanner against
    /// serde_json on every result: same acceptance, and for objects the same entries.
    #[test]
    fn mutated_frames_are_judged_like_serde_json() {
        let seeds = [
            r#"{"headers":{"id":"AbCd","to":"r","type":"message","handle":"h","encrypted":false,"groups":["g",true]},"body":{"seq":1,"ts":-2.5e3,"data":"xx\n\u00e9"}}"#,
            r#"{"body":[null,true,false,{"a":{}}],"headers":{"to":"r"}}"#,
        ];
        let alphabet = b"{}[]\":,\\ \tu0123456789aeEtrfnl.-+\x01x";
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        for seed in seeds {
            for _ in 0..20_000 {
                let mut bytes = seed.as_bytes().to_vec();
                for _ in 0..1 + r.below(3) {
                    mutate_byte(&mut bytes, alphabet, &mut r);
                }
                let Ok(text) = std::str::from_utf8(&bytes) else {
                    continue;
                };
                assert_eq!(Raw::parse(text).is_some(), serde_accepts(text), "{text}");
                let want = serde_json::from_str::<indexmap::IndexMap<String, &RawValue>>(text);
                match (frame(text), want) {
                    (Some((top, _)), Ok(map)) => {
                        let got: Vec<&str> = top.iter().map(|(k, _)| k.as_ref()).collect();
                        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                        assert_eq!(got, keys, "{text}");
                    }
                    (None, Err(_)) => {}
                    (got, want) => {
                        panic!("{text}: scanner {} serde {}", got.is_some(), want.is_ok())
                    }
                }
                checked += 1;
            }
        }
        assert!(checked > 30_000);
    }
}
