//! Small helpers that read raw JSON the way JavaScript would (truthiness, `String()` coercion)
//! without building value trees, so the router can splice frames through untouched.

use std::borrow::Cow;

/// JS truthiness of a raw JSON value: `false`, `null`, `0`, `-0` and `""` are falsy.
pub fn truthy(raw: &str) -> bool {
    let t = raw.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    match t.as_bytes().first() {
        None => false,
        Some(b'f') | Some(b'n') => false,
        Some(b't') | Some(b'[') | Some(b'{') => true,
        Some(b'"') => t.len() > 2,
        Some(_) => t.parse::<f64>().map(|n| n != 0.0).unwrap_or(true),
    }
}

/// The string value of raw JSON text (valid JSON), or `None` for any other type.
pub fn as_str(text: &str) -> Option<Cow<'_, str>> {
    if !text.starts_with('"') {
        return None;
    }
    // A raw value is valid JSON, so a string without a backslash is its own contents: no
    // second scan (an encrypted body is ~490 hex digits, scanned on every hop).
    if text.len() >= 2 && text.ends_with('"') && memchr::memchr(b'\\', text.as_bytes()).is_none() {
        return text.get(1..text.len() - 1).map(Cow::Borrowed);
    }
    serde_json::from_str::<Cow<'_, str>>(text).ok()
}

/// `String(value)` for the types a routing key can sensibly hold (strings, numbers, booleans,
/// null); arrays and objects give `None` (they can never name a channel).
pub fn js_string(text: &str) -> Option<Cow<'_, str>> {
    match text.as_bytes().first()? {
        b'"' => as_str(text),
        b't' | b'f' | b'n' => Some(Cow::Borrowed(text)),
        _ => {
            let n: f64 = text.parse().ok()?;
            Some(Cow::Owned(js_number(n)))
        }
    }
}

/// JS `Number.prototype.toString()` for the common cases (integers print without `.0`).
pub fn js_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n == 0.0 {
        "0".into()
    } else if n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{}", n as i128)
    } else {
        format!("{n}")
    }
}

/// True when `text` is JSON that `JSON.parse` accepts and whose value is truthy, as required
/// of a decrypted body (PROTOCOL.md §2.6 step 6). Lone surrogate escapes are accepted, as in JS.
pub fn is_truthy_json(text: &str) -> bool {
    super::scan::Raw::parse(text).is_some() && truthy(text)
}

/// Appends `s` to `out` as a JSON string literal (JSON.stringify escaping).
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's escaping matches JSON.stringify for valid UTF-8 (lowercase \u00xx, short
    // forms for \b \t \n \f \r, no escaping of '/', U+2028 or U+2029).
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> &str {
        super::super::scan::Raw::parse(s).expect("valid json").get()
    }

    #[test]
    fn truthiness_matches_javascript() {
        for f in ["false", "null", "0", "-0", "0.0", "\"\"", "0e5"] {
            assert!(!truthy(f), "{f} should be falsy");
        }
        for t in ["true", "1", "\"x\"", "[]", "{}", "-1", "1e-300"] {
            assert!(truthy(t), "{t} should be truthy");
        }
    }

    #[test]
    fn routing_keys_are_coerced_like_string_of_value() {
        assert_eq!(js_string(raw("\"beta\"")).as_deref(), Some("beta"));
        assert_eq!(js_string(raw("123")).as_deref(), Some("123"));
        assert_eq!(js_string(raw("1.5")).as_deref(), Some("1.5"));
        assert_eq!(js_string(raw("null")).as_deref(), Some("null"));
        assert_eq!(js_string(raw("[1]")), None);
    }

    #[test]
    fn strings_read_the_same_with_and_without_escapes() {
        assert_eq!(as_str(raw("\"ab01\"")).as_deref(), Some("ab01"));
        assert!(matches!(as_str(raw("\"ab01\"")), Some(Cow::Borrowed(_))));
        assert_eq!(as_str(raw("\"\"")).as_deref(), Some(""));
        assert_eq!(as_str(raw("\"a\\\"b\"")).as_deref(), Some("a\"b"));
        assert_eq!(as_str(raw(r#""\u00e9té""#)).as_deref(), Some("été"));
        assert_eq!(as_str(raw("12")), None);
        assert_eq!(as_str(raw("[\"a\"]")), None);
    }

    #[test]
    fn bodies_with_lone_surrogates_are_valid_json() {
        assert!(is_truthy_json("\"\\ud800\""));
        assert!(is_truthy_json("{\"a\":1}"));
        assert!(!is_truthy_json("null"));
        assert!(!is_truthy_json("{\"a\":"));
    }
}
