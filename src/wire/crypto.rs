//! Payload encryption of ricochet 0.3.x (PROTOCOL.md §2), byte-compatible with Node's
//! `crypto.createCipher('aes-256-xts', password)`.
//!
//! * Key derivation: OpenSSL `EVP_BytesToKey` with MD5, no salt, one round, giving a
//!   64-byte XTS key and a 16-byte iv ([`derive_key_iv`]).
//! * Cipher: XTS-AES-256 (IEEE 1619) with `key1 = key[0..32)` for the data,
//!   `key2 = key[32..64)` for the tweak, the iv as the tweak and the **whole plaintext as a
//!   single data unit** (ciphertext stealing for a partial last block).
//! * Plaintext: `data ‖ DELIM ‖ (pad if non-empty else PAD16)`; wire form: lowercase hex.
//! * Receiver: Node hex rules, decrypt, lossy UTF-8, JS `trim`, split on [`DELIM`].
//!
//! Every decode/decrypt failure is reported as a [`CryptoError`] value instead of
//! throwing (defect D3); receivers split at the last delimiter (D6) and the authKey is
//! compared before trimming (D10, [`split_untrimmed`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use md5::{Digest, Md5};

use super::xts::Xts;

/// The delimiter between the data and the padding: `"{ENCRYPT}"` including both double
/// quotes (11 bytes).
pub const DELIM: &[u8] = b"\"{ENCRYPT}\"";

/// The default padding: sixteen LF bytes, used when the pad is empty.
pub const PAD16: &[u8] = b"\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n";

/// Smallest plaintext/ciphertext (in bytes) that XTS accepts: one full block.
pub const MIN_PLAINTEXT: usize = 16;

/// Largest plaintext/ciphertext (in bytes) of one XTS data unit: 2^20 blocks (16 MiB).
pub const MAX_PLAINTEXT: usize = 16 * 1024 * 1024;

/// [`DELIM`] as text, for searching decoded strings.
const DELIM_STR: &str = "\"{ENCRYPT}\"";

/// What a sender writes instead of [`DELIM`] inside JSON text (same JSON value, D6).
const DELIM_ESCAPED: &[u8] = b"\"\\u007bENCRYPT}";

/// Lowercase hex digits.
#[cfg(test)]
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Why a payload could not be encrypted or decrypted.
///
/// Receivers should treat every variant exactly like a wrong key (D3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// The hex text has an odd length (in UTF-16 code units, as Node measures it).
    OddHex,
    /// The plaintext/ciphertext is shorter than [`MIN_PLAINTEXT`] bytes.
    TooShort,
    /// The plaintext/ciphertext is longer than [`MAX_PLAINTEXT`] bytes.
    TooLong,
    /// Authenticated decryption failed: wrong key or a tampered body (AES-256-GCM only).
    Forged,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CryptoError::OddHex => "encrypted payload is not valid hex (odd length)",
            CryptoError::TooShort => "encrypted payload is shorter than 16 bytes",
            CryptoError::TooLong => "encrypted payload is longer than 16 MiB",
            CryptoError::Forged => "encrypted payload failed authentication",
        })
    }
}

impl std::error::Error for CryptoError {}

/// `EVP_BytesToKey(MD5, no salt, 1 round)` over `password`: `D1 = MD5(P)`,
/// `Di = MD5(D(i-1) ‖ P)`; returns `(D1‖D2‖D3‖D4, D5)` as (key, iv).
pub fn derive_key_iv(password: &[u8]) -> ([u8; 64], [u8; 16]) {
    let mut material = [0u8; 80];
    let mut prev: Option<[u8; 16]> = None;
    for chunk in material.chunks_exact_mut(16) {
        let mut hasher = Md5::new();
        if let Some(p) = &prev {
            hasher.update(p);
        }
        hasher.update(password);
        let digest: [u8; 16] = hasher.finalize().into();
        chunk.copy_from_slice(&digest);
        prev = Some(digest);
    }
    let mut key = [0u8; 64];
    let mut iv = [0u8; 16];
    key.copy_from_slice(&material[..64]);
    iv.copy_from_slice(&material[64..]);
    (key, iv)
}

/// A password's derived cipher, built once per key and reused (key schedule is not free).
///
/// Cloning is cheap (the key schedules are shared).
#[derive(Clone)]
pub struct Cipher {
    /// XTS with key1 (data) and the iv from the key derivation as the tweak.
    xts: Arc<Xts>,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Cipher").finish_non_exhaustive()
    }
}

impl Cipher {
    /// Derives key and iv from `password` (its UTF-8 bytes) and builds both AES-256 key
    /// schedules. An empty password is allowed.
    pub fn new(password: &[u8]) -> Cipher {
        let (key, iv) = derive_key_iv(password);
        Cipher {
            xts: Arc::new(Xts::new(&key, iv)),
        }
    }

    /// plaintext = data ‖ DELIM ‖ (pad if non-empty else PAD16); returns lowercase hex.
    pub fn encrypt_hex(&self, data: &[u8], pad: &[u8]) -> Result<String, CryptoError> {
        let mut out = Vec::new();
        self.encrypt_hex_into(data, pad, &mut out)?;
        // Only ASCII hex digits were written.
        Ok(out.into_iter().map(char::from).collect())
    }

    /// Same, but appends the hex to `out` (avoid an extra allocation on the hot path).
    ///
    /// On error `out` is left unchanged.
    pub fn encrypt_hex_into(
        &self,
        data: &[u8],
        pad: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let pad = if pad.is_empty() { PAD16 } else { pad };
        let n = data
            .len()
            .saturating_add(DELIM.len())
            .saturating_add(pad.len());
        check_len(n)?;
        // Plaintexts of ordinary messages are sealed in a stack buffer: the SIMD hex encoder
        // needs its input apart from its output, and a heap copy per message showed in profiles.
        let mut small = [0u8; 1024];
        let mut large = Vec::new();
        let unit: &mut [u8] = if n <= small.len() {
            &mut small[..n]
        } else {
            large.resize(n, 0);
            &mut large
        };
        let (d, rest) = unit.split_at_mut(data.len());
        d.copy_from_slice(data);
        let (m, p) = rest.split_at_mut(DELIM.len());
        m.copy_from_slice(DELIM);
        p.copy_from_slice(pad);
        self.xts.encrypt(unit);
        let start = out.len();
        out.resize(start + 2 * n, 0);
        if faster_hex::hex_encode(unit, &mut out[start..]).is_err() {
            // Unreachable (the region is exactly twice the input); leave `out` as it was.
            out.truncate(start);
            return Err(CryptoError::TooLong);
        }
        Ok(())
    }

    /// Node hex rules (odd length -> OddHex; otherwise decoding stops silently at the first non-hex pair; either case accepted), then decrypt as one unit (<16 bytes TooShort, >16MiB TooLong). Returns the raw plaintext bytes.
    ///
    /// `hex` is the UTF-8 form of the JS string; like Node, its length is measured in
    /// UTF-16 code units. There is no integrity check: a wrong key yields garbage.
    pub fn decrypt_hex(&self, hex: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut buf = Vec::new();
        self.decrypt_hex_into(hex, &mut buf)?;
        Ok(buf)
    }

    /// [`Cipher::decrypt_hex`] into `buf` (cleared first), so a caller that keeps one buffer
    /// per connection allocates nothing per message.
    pub fn decrypt_hex_into(&self, hex: &[u8], buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        buf.clear();
        buf.resize(hex.len() / 2, 0);
        // All hex (the normal case): checked and decoded in one SIMD pass, and being ASCII of
        // even length, its UTF-16 length is even too. Otherwise Node's parity rule, then pairs
        // decoded until the first one that is not hex, where Node stops.
        if hex.len() % 2 == 1 || !super::hex::decode(hex, buf) {
            buf.clear();
            if utf16_len_is_odd(hex) {
                return Err(CryptoError::OddHex);
            }
            for p in hex.chunks_exact(2) {
                match (hex_val(p[0]), hex_val(p[1])) {
                    (Some(h), Some(l)) => buf.push((h << 4) | l),
                    _ => break,
                }
            }
        }
        check_len(buf.len())?;
        self.xts.decrypt(buf);
        Ok(())
    }

    /// Convenience: decrypt a body: decrypt_hex + receiver_piece.
    pub fn decrypt_piece(&self, hex: &[u8]) -> Result<Option<String>, CryptoError> {
        self.decrypt_hex(hex).map(receiver_piece_owned)
    }
}

/// Checks a plaintext/ciphertext length against the XTS data-unit limits.
fn check_len(n: usize) -> Result<(), CryptoError> {
    if n < MIN_PLAINTEXT {
        Err(CryptoError::TooShort)
    } else if n > MAX_PLAINTEXT {
        Err(CryptoError::TooLong)
    } else {
        Ok(())
    }
}

/// Value of one hex digit (either case).
fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Whether the UTF-16 length of the UTF-8 text `s` is odd: every non-continuation byte
/// starts one code unit, and 4-byte sequences (lead 0xF0..=0xF7) add a second one.
fn utf16_len_is_odd(s: &[u8]) -> bool {
    if s.is_ascii() {
        return s.len() % 2 == 1;
    }
    let units = s
        .iter()
        .map(|&b| match b {
            0x80..=0xBF => 0usize,
            0xF0..=0xF7 => 2,
            _ => 1,
        })
        .sum::<usize>();
    units % 2 == 1
}

/// Whether `c` is JS whitespace or a line terminator (what `String.prototype.trim` strips).
fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{0009}'..='\u{000D}'
            | '\u{0020}'
            | '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
            | '\u{FEFF}'
    )
}

/// JS String.prototype.trim with the exact JS whitespace set (see js_trim_code_points; NOT Rust's str::trim).
pub fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_whitespace)
}

/// Receiver step 3-5 of §2.6 with the D6 fix: lossy UTF-8 decode, js_trim, split at the LAST DELIM (keep what is before it; no DELIM → whole text), empty → None.
pub fn receiver_piece(plaintext: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(plaintext);
    let trimmed = js_trim(&text);
    let piece = match rfind_delim(trimmed) {
        Some(i) => &trimmed[..i],
        None => trimmed,
    };
    (!piece.is_empty()).then(|| piece.to_owned())
}

/// [`receiver_piece`] taking the plaintext by value: valid UTF-8 (the normal case) is cut in
/// place instead of copied.
pub fn receiver_piece_owned(plaintext: Vec<u8>) -> Option<String> {
    match String::from_utf8(plaintext) {
        Ok(mut text) => {
            let (start, end) = {
                let trimmed = js_trim(&text);
                let start = trimmed.as_ptr() as usize - text.as_ptr() as usize;
                let piece_len = rfind_delim(trimmed).unwrap_or(trimmed.len());
                (start, start + piece_len)
            };
            if start == end {
                return None;
            }
            text.truncate(end);
            text.drain(..start);
            Some(text)
        }
        Err(e) => receiver_piece(e.as_bytes()),
    }
}

/// [`receiver_piece`] borrowed from the plaintext when it is valid UTF-8 (the normal case),
/// so a plaintext decrypted into a reused buffer is neither copied nor allocated.
pub fn receiver_piece_in(plaintext: &[u8]) -> Option<Cow<'_, str>> {
    match std::str::from_utf8(plaintext) {
        Ok(text) => {
            let trimmed = js_trim(text);
            let piece = &trimmed[..rfind_delim(trimmed).unwrap_or(trimmed.len())];
            (!piece.is_empty()).then_some(Cow::Borrowed(piece))
        }
        Err(_) => receiver_piece(plaintext).map(Cow::Owned),
    }
}

/// The original's (pre-D6) behaviour: split at the FIRST DELIM. Used only to prove the vectors' receiver_result.
pub fn receiver_piece_first(plaintext: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(plaintext);
    let trimmed = js_trim(&text);
    let piece = match trimmed.find(DELIM_STR) {
        Some(i) => &trimmed[..i],
        None => trimmed,
    };
    (!piece.is_empty()).then(|| piece.to_owned())
}

/// D10: the authKey check compares the piece BEFORE trimming: lossy UTF-8, split at the last DELIM, no trim; also returns the tail after that DELIM (D1: the server checks it equals the authStamp hex). None if no DELIM.
pub fn split_untrimmed(plaintext: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(plaintext);
    let i = rfind_delim(&text)?;
    let before = &text[..i];
    let after = &text[i + DELIM_STR.len()..];
    Some((before.to_owned(), after.to_owned()))
}

/// Escape for senders (D6): replace every occurrence of the bytes `"{ENCRYPT}"` inside JSON text by `"\u007bENCRYPT}"` (same JSON value; see vector delimiter_escaped_by_sender). Returns Cow to avoid copying when absent.
///
/// In valid JSON the `{` of such an occurrence is always inside a string literal, so the
/// escape keeps the value. Overlapping occurrences (sharing a quote) are all escaped, so
/// the result never contains [`DELIM`].
pub fn escape_delimiter(json: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = find(json, DELIM) else {
        return Cow::Borrowed(json);
    };
    let mut out = Vec::with_capacity(json.len() + 8);
    let mut rest = json;
    let mut next = Some(first);
    while let Some(i) = next {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(DELIM_ESCAPED);
        // Keep the closing quote unconsumed: it may open the next occurrence.
        rest = &rest[i + DELIM.len() - 1..];
        next = find(rest, DELIM);
    }
    out.extend_from_slice(rest);
    Cow::Owned(out)
}

/// Position of the first occurrence of [`DELIM`] in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    debug_assert_eq!(needle, DELIM);
    delim_finder().find(haystack)
}

/// Position of the last occurrence of [`DELIM`] in `haystack`.
///
/// Walks back over its `{` bytes with `memrchr` and checks the delimiter around each: the
/// delimiter sits just before the pad (a 32-character id from a client, nothing once PAD16
/// is trimmed), so the walk usually stops at the first `{` it finds. `memmem`'s reverse
/// searcher took ~30 ns even over the last 64 bytes.
fn rfind_delim(haystack: &str) -> Option<usize> {
    let b = haystack.as_bytes();
    memchr::memrchr_iter(b'{', b)
        .filter_map(|i| i.checked_sub(1))
        .find(|&start| b.get(start..start + DELIM.len()) == Some(DELIM))
}

// Built once: constructing a substring searcher per body showed up in the server's profile.
fn delim_finder() -> &'static memchr::memmem::Finder<'static> {
    static F: std::sync::OnceLock<memchr::memmem::Finder<'static>> = std::sync::OnceLock::new();
    F.get_or_init(|| memchr::memmem::Finder::new(DELIM))
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn assert_send_sync<T: Send + Sync + Clone>() {}
    const _: () = assert_send_sync::<Cipher>();

    #[test]
    fn constants_have_the_documented_bytes() {
        assert_eq!(
            DELIM,
            hex::decode("227b454e43525950547d22").unwrap().as_slice()
        );
        assert_eq!(DELIM.len(), 11);
        assert_eq!(PAD16, [b'\n'; 16].as_slice());
        assert_eq!(DELIM_STR.as_bytes(), DELIM);
    }

    #[test]
    fn key_derivation_matches_the_spec_example() {
        let (key, iv) = derive_key_iv(b"secret-private-key");
        let key = hex::encode(key);
        assert!(key.starts_with("00a51fb0"), "{key}");
        assert!(key.ends_with("5127023ae64c"), "{key}");
        assert_eq!(hex::encode(iv), "51b6778de0e353052aa4af09c919d11a");
    }

    #[test]
    fn js_trim_strips_js_whitespace_only() {
        assert_eq!(js_trim(" \t\n\u{b}\u{c}\r x y \u{a0}\u{feff}"), "x y");
        assert_eq!(
            js_trim("\u{1680}\u{2000}\u{200a}\u{2028}\u{2029}z\u{202f}\u{205f}\u{3000}"),
            "z"
        );
        // U+0085 is whitespace for Rust but not for JS; U+FEFF is the reverse.
        assert_eq!(js_trim("\u{85}a\u{85}"), "\u{85}a\u{85}");
        assert_eq!("\u{85}a\u{85}".trim(), "a");
        assert_eq!(js_trim("\u{feff}a"), "a");
        assert_eq!(js_trim("\u{200b}a"), "\u{200b}a");
        assert_eq!(js_trim(""), "");
        assert_eq!(js_trim(" \n "), "");
    }

    #[test]
    fn escape_delimiter_keeps_the_json_value_and_removes_every_delimiter() {
        let plain = br#"{"a":"b"}"#;
        assert!(matches!(escape_delimiter(plain), Cow::Borrowed(_)));

        let raw = br#"{"a":"{ENCRYPT}","b":1}"#;
        let esc = escape_delimiter(raw);
        assert_eq!(&*esc, br#"{"a":"\u007bENCRYPT}","b":1}"#.as_slice());

        for raw in [
            br#"{"{ENCRYPT}":"{ENCRYPT}"}"#.as_slice(),
            br#"["x\"{ENCRYPT}"]"#,
            br#"["{ENCRYPT}\"{ENCRYPT}"]"#,
            br#"["\"{ENCRYPT}\"{ENCRYPT}"]"#,
        ] {
            let esc = escape_delimiter(raw);
            assert!(
                find(&esc, DELIM).is_none(),
                "{}",
                String::from_utf8_lossy(&esc)
            );
            let before: serde_json::Value = serde_json::from_slice(raw).unwrap();
            let after: serde_json::Value = serde_json::from_slice(&esc).unwrap();
            assert_eq!(before, after);
        }
    }

    #[test]
    fn hex_follows_node_rules() {
        let c = Cipher::new(b"secret");
        let hex = c.encrypt_hex(b"hello world", b"").unwrap();
        let pt = c.decrypt_hex(hex.as_bytes()).unwrap();
        // Uppercase accepted.
        assert_eq!(c.decrypt_hex(hex.to_uppercase().as_bytes()).unwrap(), pt);
        // Decoding stops at the first non-hex pair.
        assert_eq!(
            c.decrypt_hex(format!("{hex}zz00ff").as_bytes()).unwrap(),
            pt
        );
        assert_eq!(c.decrypt_hex(format!("{hex}0z").as_bytes()).unwrap(), pt);
        // Odd length rejected before decoding.
        assert_eq!(
            c.decrypt_hex(&hex.as_bytes()[1..]),
            Err(CryptoError::OddHex)
        );
        assert_eq!(c.decrypt_hex(b"[object Object]"), Err(CryptoError::OddHex));
        // Non-hex decodes to nothing.
        assert_eq!(c.decrypt_hex(b"zzzz"), Err(CryptoError::TooShort));
        assert_eq!(c.decrypt_hex(b""), Err(CryptoError::TooShort));
        assert_eq!(
            c.decrypt_hex(&hex.as_bytes()[..30]),
            Err(CryptoError::TooShort)
        );
        // Length is counted in UTF-16 code units: "é" is 1 unit (2 bytes), "😀" is 2 (4 bytes).
        assert_eq!(c.decrypt_hex(format!("{hex}é0").as_bytes()).unwrap(), pt);
        assert_eq!(
            c.decrypt_hex(format!("{hex}é").as_bytes()),
            Err(CryptoError::OddHex)
        );
        assert_eq!(c.decrypt_hex(format!("{hex}😀").as_bytes()).unwrap(), pt);
    }

    #[test]
    fn encrypt_round_trips_and_respects_limits() {
        let c = Cipher::new(b"");
        let mut out = b"prefix:".to_vec();
        c.encrypt_hex_into(b"abcd", b"X", &mut out).unwrap();
        assert_eq!(&out[..7], b"prefix:");
        assert_eq!(out.len(), 7 + 32);
        assert!(out[7..].iter().all(|b| HEX_DIGITS.contains(b)));
        let pt = c.decrypt_hex(&out[7..]).unwrap();
        assert_eq!(pt, b"abcd\"{ENCRYPT}\"X");
        assert_eq!(c.encrypt_hex(b"abc", b"X"), Err(CryptoError::TooShort));
        let mut untouched = b"keep".to_vec();
        assert_eq!(
            c.encrypt_hex_into(b"abc", b"X", &mut untouched),
            Err(CryptoError::TooShort)
        );
        assert_eq!(untouched, b"keep");
        assert_eq!(
            c.decrypt_piece(c.encrypt_hex(b"{}", b"").unwrap().as_bytes()),
            Ok(Some("{}".into()))
        );
    }

    #[test]
    fn plaintexts_on_both_sides_of_the_stack_buffer_round_trip() {
        let c = Cipher::new(b"k");
        // 1024 bytes is the largest plaintext sealed on the stack; 1025 takes the heap path.
        for total in [1023usize, 1024, 1025, 70_000] {
            let data = vec![b'a'; total - DELIM.len() - PAD16.len()];
            let hex = c.encrypt_hex(&data, b"").unwrap();
            assert_eq!(hex.len(), 2 * total);
            let mut expected = data.clone();
            expected.extend_from_slice(DELIM);
            expected.extend_from_slice(PAD16);
            assert_eq!(c.decrypt_hex(hex.as_bytes()).unwrap(), expected, "{total}");
        }
    }

    #[test]
    fn the_in_place_and_borrowing_receiver_splits_match_the_copying_one() {
        let cases: [&[u8]; 7] = [
            b"  {\"a\":1}\"{ENCRYPT}\"\n\n",
            b"{\"a\":\"{ENCRYPT}\"}\"{ENCRYPT}\"pad",
            b"no delimiter here",
            b"   \"{ENCRYPT}\"x",
            b"",
            b"\xff\xfe{}\"{ENCRYPT}\"",
            "\u{feff}\u{3000}x\"{ENCRYPT}\"".as_bytes(),
        ];
        for c in cases {
            assert_eq!(receiver_piece_owned(c.to_vec()), receiver_piece(c), "{c:?}");
            assert_eq!(
                receiver_piece_in(c).map(Cow::into_owned),
                receiver_piece(c),
                "{c:?}"
            );
        }
    }

    #[test]
    fn receivers_split_as_documented() {
        let pt = b" \t{\"a\":\"{ENCRYPT}\"} \"{ENCRYPT}\"pad\n";
        assert_eq!(receiver_piece_first(pt).as_deref(), Some("{\"a\":"));
        assert_eq!(
            receiver_piece(pt).as_deref(),
            Some("{\"a\":\"{ENCRYPT}\"} ")
        );
        assert_eq!(
            split_untrimmed(pt),
            Some((" \t{\"a\":\"{ENCRYPT}\"} ".to_owned(), "pad\n".to_owned()))
        );
        assert_eq!(receiver_piece(b"  \"{ENCRYPT}\"\n"), None);
        assert_eq!(
            receiver_piece(b"  no delim \n").as_deref(),
            Some("no delim")
        );
        assert_eq!(split_untrimmed(b"no delim"), None);
        assert_eq!(
            split_untrimmed(b"\"{ENCRYPT}\""),
            Some((String::new(), String::new()))
        );
        // Invalid UTF-8 becomes U+FFFD without eating the delimiter.
        assert_eq!(
            receiver_piece(b"a\xe2\"{ENCRYPT}\"").as_deref(),
            Some("a\u{fffd}")
        );
    }

    #[test]
    fn the_last_delimiter_is_found_wherever_it_lies() {
        // One or two delimiters (also sharing a quote) at every position of texts up to 150
        // bytes, against std's rfind; the filler is plain, or full of near misses (braces,
        // quotes and a truncated delimiter).
        for pattern in ["x", "{\"{ENCRYPT\"}{"] {
            let fill = |n: usize| pattern.repeat(n)[..n].to_owned();
            for len in 0..150 {
                assert_eq!(rfind_delim(&fill(len)), None, "len {len}");
                for at in 0..=len {
                    let one = format!("{}{DELIM_STR}{}", fill(at), fill(len - at));
                    assert_eq!(rfind_delim(&one), one.rfind(DELIM_STR), "{one}");
                    for gap in [0usize, 3, 64] {
                        let two = format!(
                            "{}{DELIM_STR}{}{DELIM_STR}{}",
                            fill(at),
                            fill(gap),
                            fill(len - at)
                        );
                        assert_eq!(rfind_delim(&two), two.rfind(DELIM_STR), "{two}");
                    }
                    let shared =
                        format!("{}\"{{ENCRYPT}}\"{{ENCRYPT}}\"{}", fill(at), fill(len - at));
                    assert_eq!(rfind_delim(&shared), shared.rfind(DELIM_STR), "{shared}");
                }
            }
        }
    }

    #[test]
    fn hex_that_is_not_all_ascii_still_follows_node_parity_and_stops_at_the_first_bad_pair() {
        let c = Cipher::new(b"k");
        let hex = c.encrypt_hex(b"{\"a\":1}", b"").expect("encrypt");
        // 'é' is two UTF-8 bytes but one UTF-16 unit: an even byte length that Node sees odd.
        assert_eq!(
            c.decrypt_hex(format!("{hex}\u{e9}").as_bytes()),
            Err(CryptoError::OddHex)
        );
        // An odd byte length that Node sees even; decoding stops at the first pair that is
        // not hex, so the plaintext comes back whole.
        let pt = c.decrypt_hex(format!("{hex}\u{e9}0").as_bytes());
        assert_eq!(
            pt.map(|p| receiver_piece(&p)),
            Ok(Some("{\"a\":1}".to_owned()))
        );
    }
}
