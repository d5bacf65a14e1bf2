//! Checks `ricochet::wire::crypto` against the Node-generated vectors in
//! `shared/vectors/crypto.json` (PROTOCOL.md §2 and defects D3, D6, D9, D10).

use md5::{Digest, Md5};
use ricochet::wire::crypto::*;
use serde_json::Value;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors/crypto.json");

fn vectors() -> Value {
    let text = std::fs::read_to_string(VECTORS).expect("read crypto.json");
    serde_json::from_str(&text).expect("parse crypto.json")
}

fn cases<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    let list = v[key].as_array().expect("case list");
    assert!(!list.is_empty(), "{key} is empty");
    list
}

fn s<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("{}: {key} is not a string", case["name"]))
}

fn name(case: &Value) -> &str {
    s(case, "name")
}

/// `receiver_result`: a string, or `false` (failure) -> `None`.
fn expected_result(case: &Value) -> Option<String> {
    match &case["receiver_result"] {
        Value::String(r) => Some(r.clone()),
        Value::Bool(false) => None,
        other => panic!("{}: unexpected receiver_result {other}", name(case)),
    }
}

fn md5_chain(password: &[u8]) -> Vec<[u8; 16]> {
    let mut chain: Vec<[u8; 16]> = Vec::new();
    for _ in 0..5 {
        let mut h = Md5::new();
        if let Some(prev) = chain.last() {
            h.update(prev);
        }
        h.update(password);
        chain.push(h.finalize().into());
    }
    chain
}

/// The pad argument the sender passed (`concat`; `null` means none).
fn pad_arg(case: &Value) -> &str {
    case["concat"].as_str().unwrap_or("")
}

fn find_case<'a>(v: &'a Value, key: &str, wanted: &str) -> &'a Value {
    cases(v, key)
        .iter()
        .find(|c| name(c) == wanted)
        .unwrap_or_else(|| panic!("no case {wanted}"))
}

#[test]
fn every_encrypt_vector_derives_node_key_and_iv() {
    let v = vectors();
    for case in cases(&v, "encrypt_cases") {
        let n = name(case);
        let pw = s(case, "password").as_bytes();
        assert_eq!(hex::encode(pw), s(case, "password_hex"), "{n}");

        let chain = md5_chain(pw);
        let expected_chain: Vec<&str> = case["md5_chain_hex"]
            .as_array()
            .expect("md5_chain_hex")
            .iter()
            .map(|x| x.as_str().expect("chain entry"))
            .collect();
        let got_chain: Vec<String> = chain.iter().map(hex::encode).collect();
        assert_eq!(got_chain, expected_chain, "{n}: md5 chain");

        let (key, iv) = derive_key_iv(pw);
        assert_eq!(hex::encode(key), s(case, "key_hex"), "{n}: key");
        assert_eq!(
            hex::encode(key),
            expected_chain[..4].concat(),
            "{n}: key = D1..D4"
        );
        assert_eq!(hex::encode(iv), s(case, "iv_hex"), "{n}: iv");
        assert_eq!(hex::encode(iv), expected_chain[4], "{n}: iv = D5");
        assert_eq!(hex::encode(&key[..32]), s(case, "key1_data_hex"), "{n}");
        assert_eq!(hex::encode(&key[32..]), s(case, "key2_tweak_hex"), "{n}");
        assert_eq!(
            case["key_halves_differ"],
            Value::Bool(key[..32] != key[32..]),
            "{n}"
        );
    }
}

#[test]
fn every_encrypt_vector_matches_node_byte_for_byte() {
    let v = vectors();
    let mut encrypted = 0;
    for case in cases(&v, "encrypt_cases") {
        let n = name(case);
        let data_type = s(case, "data_type");
        assert!(matches!(data_type, "number" | "string"), "{n}: {data_type}");
        // For numbers `data` already holds the JS text form ("-0", 13-digit ms).
        let data = s(case, "data");
        let pad = pad_arg(case);
        assert_eq!(s(case, "delimiter").as_bytes(), DELIM, "{n}");

        // Plaintext = data ‖ DELIM ‖ (pad if non-empty else PAD16).
        let used = if pad.is_empty() {
            PAD16
        } else {
            pad.as_bytes()
        };
        assert_eq!(
            s(case, "padding_used").as_bytes(),
            used,
            "{n}: padding_used"
        );
        let plaintext = [data.as_bytes(), DELIM, used].concat();
        assert_eq!(plaintext, s(case, "plaintext").as_bytes(), "{n}: plaintext");
        assert_eq!(hex::encode(&plaintext), s(case, "plaintext_hex"), "{n}");
        assert_eq!(
            case["plaintext_bytes"].as_u64(),
            Some(plaintext.len() as u64),
            "{n}"
        );

        let cipher = Cipher::new(s(case, "password").as_bytes());
        let Some(ct_hex) = case["ciphertext_hex"].as_str() else {
            // Node threw: only the < 16 byte case is expected here.
            assert!(plaintext.len() < MIN_PLAINTEXT, "{n}");
            assert_eq!(
                cipher.encrypt_hex(data.as_bytes(), pad.as_bytes()),
                Err(CryptoError::TooShort),
                "{n}"
            );
            continue;
        };
        assert_eq!(
            case["ciphertext_bytes"].as_u64(),
            Some(plaintext.len() as u64),
            "{n}"
        );

        // Encrypt gives Node's ciphertext, lowercase hex.
        let got = cipher
            .encrypt_hex(data.as_bytes(), pad.as_bytes())
            .unwrap_or_else(|e| panic!("{n}: {e}"));
        assert_eq!(got, ct_hex, "{n}: ciphertext");
        let mut appended = b"{\"body\":\"".to_vec();
        cipher
            .encrypt_hex_into(data.as_bytes(), pad.as_bytes(), &mut appended)
            .unwrap_or_else(|e| panic!("{n}: {e}"));
        assert_eq!(&appended[..9], b"{\"body\":\"", "{n}");
        assert_eq!(&appended[9..], ct_hex.as_bytes(), "{n}: encrypt_hex_into");

        // Decrypt gives back the plaintext (either hex case) and the receiver result.
        let back = cipher.decrypt_hex(ct_hex.as_bytes()).expect("decrypt");
        assert_eq!(back, plaintext, "{n}: decrypt");
        let upper = cipher
            .decrypt_hex(ct_hex.to_uppercase().as_bytes())
            .expect("decrypt");
        assert_eq!(upper, plaintext, "{n}: decrypt uppercase");
        assert_eq!(
            receiver_piece_first(&back),
            expected_result(case),
            "{n}: receiver_result"
        );
        encrypted += 1;
    }
    assert!(encrypted >= 20, "only {encrypted} cases encrypted");
}

#[test]
fn fifteen_byte_plaintext_is_rejected_as_too_short() {
    let v = vectors();
    let case = find_case(&v, "encrypt_cases", "bytes_15_rejected");
    assert!(case["ciphertext_hex"].is_null());
    assert_eq!(s(case, "error"), "Trying to add data in unsupported state");
    let cipher = Cipher::new(s(case, "password").as_bytes());
    let data = s(case, "data").as_bytes();
    assert_eq!(
        cipher.encrypt_hex(data, pad_arg(case).as_bytes()),
        Err(CryptoError::TooShort)
    );
    let mut out = Vec::new();
    assert_eq!(
        cipher.encrypt_hex_into(data, pad_arg(case).as_bytes(), &mut out),
        Err(CryptoError::TooShort)
    );
    assert!(out.is_empty());
}

#[test]
fn last_delimiter_split_keeps_data_containing_the_delimiter_d6() {
    let v = vectors();
    for case in cases(&v, "encrypt_cases") {
        let Some(ct_hex) = case["ciphertext_hex"].as_str() else {
            continue;
        };
        let n = name(case);
        let cipher = Cipher::new(s(case, "password").as_bytes());
        let fixed = cipher.decrypt_piece(ct_hex.as_bytes()).expect("decrypt");
        if n == "delimiter_inside_data" {
            // The original truncates to `{"a":`; the fix recovers the whole JSON body.
            assert_eq!(expected_result(case).as_deref(), Some("{\"a\":"));
            assert_eq!(fixed.as_deref(), Some(s(case, "data")), "{n}");
            let parsed: Value = serde_json::from_str(fixed.as_deref().unwrap_or("")).expect("json");
            assert_eq!(parsed, serde_json::json!({"a": "{ENCRYPT}", "b": 1}));
        } else {
            // Stock pads never contain the delimiter: same result as the original.
            assert_eq!(fixed, expected_result(case), "{n}");
        }
    }
}

#[test]
fn sender_escape_produces_the_escaped_vector_and_the_same_json_value_d6() {
    let v = vectors();
    let raw = find_case(&v, "encrypt_cases", "delimiter_inside_data");
    let escaped = find_case(&v, "encrypt_cases", "delimiter_escaped_by_sender");
    let out = escape_delimiter(s(raw, "data").as_bytes());
    assert_eq!(&*out, s(escaped, "data").as_bytes());
    let a: Value = serde_json::from_str(s(raw, "data")).expect("json");
    let b: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(a, b);
    // Escaped data survives even the original first-delimiter receiver.
    assert_eq!(
        expected_result(escaped).as_deref(),
        Some(s(escaped, "data"))
    );
    // Data without the delimiter is not copied.
    let plain = s(escaped, "data").as_bytes();
    assert!(matches!(
        escape_delimiter(plain),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn untrimmed_split_returns_auth_key_and_auth_stamp_tail_d1_d10() {
    let v = vectors();
    let stamp = find_case(&v, "encrypt_cases", "auth_stamp");
    let key = find_case(&v, "encrypt_cases", "auth_key");
    let cipher = Cipher::new(s(key, "password").as_bytes());
    let pt = cipher
        .decrypt_hex(s(key, "ciphertext_hex").as_bytes())
        .expect("decrypt");
    let (piece, tail) = split_untrimmed(&pt).expect("delimiter");
    assert_eq!(piece, "auth-alpha");
    assert_eq!(tail, s(stamp, "ciphertext_hex"));

    // Leading whitespace is kept for the authKey comparison (D10)...
    let ws = find_case(&v, "encrypt_cases", "leading_whitespace_is_lost");
    let cipher = Cipher::new(s(ws, "password").as_bytes());
    let pt = cipher
        .decrypt_hex(s(ws, "ciphertext_hex").as_bytes())
        .expect("decrypt");
    let (piece, tail) = split_untrimmed(&pt).expect("delimiter");
    assert_eq!(piece, s(ws, "data"));
    assert_eq!(tail.as_bytes(), PAD16);
    // ...while bodies keep the original trimming.
    assert_eq!(receiver_piece(&pt), expected_result(ws));

    // An empty authKey is an empty piece, not a failure (D9).
    let empty = find_case(&v, "encrypt_cases", "empty_data_default_pad");
    let cipher = Cipher::new(s(empty, "password").as_bytes());
    let pt = cipher
        .decrypt_hex(s(empty, "ciphertext_hex").as_bytes())
        .expect("decrypt");
    assert_eq!(split_untrimmed(&pt), Some((String::new(), "\n".repeat(16))));
    assert_eq!(receiver_piece(&pt), None);
}

#[test]
fn every_decrypt_vector_has_node_outcome() {
    let v = vectors();
    for case in cases(&v, "decrypt_cases") {
        let n = name(case);
        let cipher = Cipher::new(s(case, "password").as_bytes());
        let got = cipher.decrypt_hex(s(case, "input").as_bytes());
        match s(case, "outcome") {
            "ok" => {
                let pt = got.unwrap_or_else(|e| panic!("{n}: {e}"));
                // Node reports the UTF-8 decoded text (invalid sequences -> U+FFFD).
                let text = String::from_utf8_lossy(&pt);
                assert_eq!(
                    hex::encode(text.as_bytes()),
                    s(case, "decrypted_text_hex"),
                    "{n}"
                );
                let placeholder = case["receiver_result"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("(garbage"));
                if placeholder {
                    // Wrong key: no integrity check, decryption "succeeds" with garbage.
                    assert!(String::from_utf8(pt.clone()).is_err(), "{n}");
                    let piece = cipher
                        .decrypt_piece(s(case, "input").as_bytes())
                        .expect("ok");
                    assert!(piece.is_none_or(|p| serde_json::from_str::<Value>(&p).is_err()));
                } else {
                    let expected = expected_result(case);
                    assert_eq!(receiver_piece_first(&pt), expected, "{n}");
                    assert_eq!(receiver_piece(&pt), expected, "{n}");
                    assert_eq!(
                        cipher.decrypt_piece(s(case, "input").as_bytes()),
                        Ok(expected),
                        "{n}"
                    );
                }
            }
            "throws" => {
                let want = if s(case, "error").starts_with("ERR_INVALID_ARG_VALUE") {
                    CryptoError::OddHex
                } else {
                    assert_eq!(s(case, "error"), "Trying to add data in unsupported state");
                    CryptoError::TooShort
                };
                assert_eq!(got, Err(want), "{n}");
                let piece = cipher.decrypt_piece(s(case, "input").as_bytes());
                assert_eq!(piece, Err(want), "{n}");
            }
            other => panic!("{n}: unknown outcome {other}"),
        }
    }
}

#[test]
fn js_trim_strips_exactly_the_listed_code_points() {
    let v = vectors();
    let listed: Vec<char> = v["js_trim_code_points"]
        .as_array()
        .expect("js_trim_code_points")
        .iter()
        .map(|x| {
            let t = x.as_str().expect("code point");
            let cp = u32::from_str_radix(t.trim_start_matches("U+"), 16).expect("hex");
            char::from_u32(cp).expect("char")
        })
        .collect();
    assert_eq!(listed.len(), 25);
    for &c in &listed {
        let t = format!("{c}{c}a{c}b{c}");
        assert_eq!(js_trim(&t), format!("a{c}b"), "U+{:04X}", c as u32);
    }
    let all: String = listed.iter().collect();
    assert_eq!(js_trim(&format!("{all}x{all}")), "x");
    // U+0085 is not JS whitespace (Rust's str::trim strips it).
    assert_eq!(js_trim("\u{85}x\u{85}"), "\u{85}x\u{85}");
    // Nothing outside the list is stripped.
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        let mut buf = [0u8; 4];
        let one = c.encode_utf8(&mut buf);
        assert_eq!(
            js_trim(one).is_empty(),
            listed.contains(&c),
            "U+{:04X}",
            c as u32
        );
    }
}

#[test]
fn plaintext_of_exactly_16_mib_encrypts_and_one_more_byte_is_too_long() {
    let v = vectors();
    let limits = &v["limits"];
    assert_eq!(
        limits["min_plaintext_bytes"].as_u64(),
        Some(MIN_PLAINTEXT as u64)
    );
    assert_eq!(
        limits["max_plaintext_bytes"].as_u64(),
        Some(MAX_PLAINTEXT as u64)
    );
    assert_eq!(limits["max_ok"], Value::Bool(true));
    assert_eq!(
        s(limits, "max_plus_one_error"),
        "Trying to add data in unsupported state"
    );

    let cipher = Cipher::new(b"secret");
    let data = vec![b'x'; MAX_PLAINTEXT - DELIM.len() - PAD16.len()];
    let ct = cipher.encrypt_hex(&data, b"").expect("16 MiB encrypts");
    assert_eq!(ct.len(), 2 * MAX_PLAINTEXT);
    let back = cipher.decrypt_hex(ct.as_bytes()).expect("16 MiB decrypts");
    assert_eq!(back.len(), MAX_PLAINTEXT);
    assert!(back.starts_with(&data) && back.ends_with(PAD16));

    let data = vec![b'x'; MAX_PLAINTEXT - DELIM.len() - PAD16.len() + 1];
    assert_eq!(cipher.encrypt_hex(&data, b""), Err(CryptoError::TooLong));
    let mut too_long = ct.into_bytes();
    too_long.extend_from_slice(b"00");
    assert_eq!(cipher.decrypt_hex(&too_long), Err(CryptoError::TooLong));
    // Trailing non-hex does not count toward the limit (decoding stops there).
    too_long.truncate(2 * MAX_PLAINTEXT);
    too_long.extend_from_slice(b"zz");
    assert_eq!(
        cipher.decrypt_hex(&too_long).map(|b| b.len()),
        Ok(MAX_PLAINTEXT)
    );
}

#[test]
fn decrypting_through_a_reused_buffer_gives_every_vector_the_same_outcome() {
    use ricochet::wire::seal::{Encryption, Seal};
    let v = vectors();
    // One buffer for every case, in list order: leftovers of a longer or failed case must
    // never leak into the next one.
    let mut buf = b"stale bytes from an earlier, longer message".to_vec();
    let mut ran = 0;
    for list in ["decrypt_cases", "encrypt_cases"] {
        for case in cases(&v, list) {
            let input = case["input"].as_str().or(case["ciphertext_hex"].as_str());
            let Some(input) = input else { continue };
            let seal = Seal::new(Encryption::Xts, s(case, "password").as_bytes());
            let want = seal.decrypt_piece(input.as_bytes());
            let got = seal
                .decrypt_piece_in(input.as_bytes(), &mut buf)
                .map(|p| p.map(|p| p.into_owned()));
            assert_eq!(got, want, "{}", name(case));
            ran += 1;
        }
    }
    assert!(ran > 10, "only {ran} vectors");
}
