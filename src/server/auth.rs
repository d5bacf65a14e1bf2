//! The auth checks of PROTOCOL.md §3.2 in their original order, hardened: decrypt errors count
//! as wrong keys (D3), the authKey is compared untrimmed (D10) in constant time, its padding
//! must be the frame's own authStamp and the stamp must be fresh (D1). Failures never carry
//! the expected secrets (D22).

use super::registry::Groups;
use crate::codes::{self, Code};
use crate::wire::crypto;
use crate::wire::json;
use crate::wire::message::RawObject;
use crate::wire::seal::{Encryption, Seal};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use subtle::ConstantTimeEq;

/// A rejected auth attempt: the code plus extra, non-secret payload fields (JSON values).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub code: Code,
    pub extra: Vec<(&'static str, String)>,
}

impl Failure {
    fn new(code: Code) -> Self {
        Failure {
            code,
            extra: Vec::new(),
        }
    }

    pub(crate) fn with(mut self, key: &'static str, json: String) -> Self {
        self.extra.push((key, json));
        self
    }
}

/// An accepted login.
pub(crate) struct Accepted {
    pub channel: String,
    pub groups: Groups,
    pub cipher: Seal,
}

/// Step 1: the frame has `publicKey`, `authKey` and `authStamp`.
pub(crate) fn frame_is_well_formed(frame: &RawObject) -> bool {
    ["publicKey", "authKey", "authStamp"]
        .iter()
        .all(|k| frame.contains_key(*k))
}

/// The peer address as the auth check sees it: IPv4-mapped IPv6 reduced to dotted IPv4.
pub(crate) fn normalized_ip(addr: &SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// JS `parseInt(text)` for decimal input: optional sign, then leading digits.
pub(crate) fn parse_int(text: &str) -> Option<i64> {
    let t = crypto::js_trim(text);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let n: i64 = digits[..end].parse().unwrap_or(i64::MAX);
    Some(if neg { -n } else { n })
}

fn str_field<'a>(frame: &'a RawObject, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    frame.get(key).and_then(|v| json::as_str(v.get()))
}

/// Steps 3–7 on the callback's result (step 8, the channel, is claimed by the caller).
/// Accepts both result shapes: 0.3.16's six keys and the README's
/// `{channel, publicKey, privateKey, groups}`; `authKey` and `ip` are checked when given.
pub(crate) fn check_result(
    result: &Value,
    frame: &RawObject,
    peer: &SocketAddr,
    now_ms: i64,
    window_ms: i64,
    encryption: Encryption,
) -> Result<Accepted, Failure> {
    let obj = result
        .as_object()
        .ok_or_else(|| Failure::new(codes::AUTH_LOOKUP))?;
    let channel = match obj.get("channel") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(Failure::new(codes::AUTH_LOOKUP)),
    };
    let private_key = match obj.get("privateKey") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(Failure::new(codes::AUTH_LOOKUP)),
    };
    let groups = match obj.get("groups") {
        None => return Err(Failure::new(codes::AUTH_LOOKUP)),
        Some(Value::Bool(true)) => Groups {
            all: true,
            list: Vec::new(),
            json: "true".into(),
        },
        Some(Value::Array(list)) if !list.is_empty() => Groups {
            all: false,
            list: list.clone(),
            json: Value::Array(list.clone()).to_string().into(),
        },
        Some(other) => {
            return Err(Failure::new(codes::AUTH_NOGROUPS).with("provided", other.to_string()))
        }
    };
    let peer_ip = normalized_ip(peer);
    if let Some(ip) = obj.get("ip") {
        if json::truthy(&ip.to_string()) && ip.as_str() != Some(peer_ip.as_str()) {
            return Err(Failure::new(codes::AUTH_IP)
                .with("provided", Value::String(peer_ip).to_string())
                .with("expected", ip.to_string()));
        }
    }
    let cipher = Seal::new(encryption, private_key.as_bytes());
    let stamp_hex = str_field(frame, "authStamp");
    match obj.get("authKey") {
        None | Some(Value::Null) => {}
        Some(expected) => {
            let ok = match (expected.as_str(), str_field(frame, "authKey"), &stamp_hex) {
                (Some(expected), Some(hex), Some(stamp_hex)) => cipher
                    .decrypt_hex(hex.as_bytes())
                    .ok()
                    .and_then(|plain| crypto::split_untrimmed(&plain))
                    .is_some_and(|(piece, tail)| {
                        let key_ok: bool = piece.as_bytes().ct_eq(expected.as_bytes()).into();
                        key_ok && tail == stamp_hex.as_ref()
                    }),
                _ => false,
            };
            if !ok {
                return Err(Failure::new(codes::AUTH_AUTHKEY));
            }
        }
    }
    let stamp = stamp_hex
        .and_then(|hex| cipher.decrypt_piece(hex.as_bytes()).ok().flatten())
        .and_then(|piece| parse_int(&piece));
    match stamp {
        Some(ms) if (now_ms.saturating_sub(ms)).unsigned_abs() <= window_ms.unsigned_abs() => {}
        _ => return Err(Failure::new(codes::AUTH_EXPIREDKEY)),
    }
    Ok(Accepted {
        channel,
        groups,
        cipher,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::crypto::Cipher;
    use crate::wire::message::{parse_line, Parsed};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;
    const WINDOW: i64 = 30_000;

    fn peer() -> SocketAddr {
        "127.0.0.1:5000".parse().expect("addr")
    }

    fn frame(private_key: &str, auth_key: &str, stamp: i64) -> RawObject {
        let c = Cipher::new(private_key.as_bytes());
        let stamp_hex = c
            .encrypt_hex(stamp.to_string().as_bytes(), b"")
            .expect("enc");
        let key_hex = c
            .encrypt_hex(auth_key.as_bytes(), stamp_hex.as_bytes())
            .expect("enc");
        let line =
            format!(r#"{{"publicKey":"pub","authKey":"{key_hex}","authStamp":"{stamp_hex}"}}"#);
        match parse_line(line.as_bytes()) {
            Parsed::Object(o) => o,
            _ => panic!("bad frame"),
        }
    }

    fn result(extra: Value) -> Value {
        let mut base = json!({"ip": "127.0.0.1", "privateKey": "pk", "publicKey": "pub",
                              "authKey": "ak", "channel": "alpha", "groups": ["g1"]});
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        base
    }

    /// The outcome code of the checks on frame `f` with callback result `r`.
    fn check(r: &Value, f: &RawObject) -> &'static str {
        code(check_result(r, f, &peer(), NOW, WINDOW, Encryption::Xts))
    }

    fn code(r: Result<Accepted, Failure>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(f) => f.code.name,
        }
    }

    #[test]
    fn a_correct_login_is_accepted() {
        let f = frame("pk", "ak", NOW);
        assert_eq!(check(&result(json!({})), &f), "ok");
    }

    #[test]
    fn the_readme_result_shape_without_ip_and_authkey_is_accepted() {
        let f = frame("pk", "whatever", NOW);
        let r = json!({"channel": "alpha", "publicKey": "pub", "privateKey": "pk", "groups": true});
        assert_eq!(check(&r, &f), "ok");
    }

    #[test]
    fn missing_channel_private_key_or_groups_is_auth_lookup() {
        let f = frame("pk", "ak", NOW);
        for key in ["channel", "privateKey", "groups"] {
            let mut r = result(json!({}));
            r.as_object_mut().map(|o| o.remove(key));
            assert_eq!(check(&r, &f), "auth_lookup");
        }
    }

    #[test]
    fn empty_or_invalid_groups_is_auth_nogroups() {
        let f = frame("pk", "ak", NOW);
        for g in [json!([]), json!(false), json!("g1")] {
            let r = result(json!({ "groups": g }));
            assert_eq!(check(&r, &f), "auth_nogroups");
        }
    }

    #[test]
    fn wrong_ip_is_auth_ip_and_mapped_ipv6_counts_as_ipv4() {
        let f = frame("pk", "ak", NOW);
        let r = result(json!({"ip": "10.9.8.7"}));
        assert_eq!(check(&r, &f), "auth_ip");
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().expect("addr");
        assert_eq!(
            code(check_result(
                &result(json!({})),
                &f,
                &mapped,
                NOW,
                WINDOW,
                Encryption::Xts
            )),
            "ok"
        );
    }

    #[test]
    fn wrong_authkey_is_auth_authkey() {
        let f = frame("pk", "not-ak", NOW);
        assert_eq!(check(&result(json!({})), &f), "auth_authkey");
    }

    #[test]
    fn d10_leading_whitespace_in_the_authkey_is_rejected() {
        let f = frame("pk", "  ak", NOW);
        assert_eq!(check(&result(json!({})), &f), "auth_authkey");
    }

    #[test]
    fn d9_an_empty_authkey_can_authenticate() {
        let f = frame("pk", "", NOW);
        let r = result(json!({"authKey": ""}));
        assert_eq!(check(&r, &f), "ok");
    }

    #[test]
    fn d3_undecryptable_fields_are_wrong_keys_not_crashes() {
        let line = r#"{"publicKey":"pub","authKey":"zz","authStamp":"zz"}"#;
        let Parsed::Object(f) = parse_line(line.as_bytes()) else {
            panic!()
        };
        assert_eq!(check(&result(json!({})), &f), "auth_authkey");
        let r = json!({"channel": "a", "privateKey": "pk", "groups": true});
        assert_eq!(check(&r, &f), "auth_expiredkey");
    }

    #[test]
    fn d1_a_stamp_outside_the_window_is_auth_expiredkey() {
        for stamp in [NOW - WINDOW - 1, NOW + WINDOW + 1, 1] {
            let f = frame("pk", "ak", stamp);
            assert_eq!(check(&result(json!({})), &f), "auth_expiredkey");
        }
        let f = frame("pk", "ak", NOW - WINDOW);
        assert_eq!(check(&result(json!({})), &f), "ok");
    }

    #[test]
    fn d1_an_authkey_padded_with_another_stamp_is_rejected() {
        let c = Cipher::new(b"pk");
        let stamp_hex = c.encrypt_hex(NOW.to_string().as_bytes(), b"").expect("enc");
        let key_hex = c.encrypt_hex(b"ak", b"").expect("enc");
        let line =
            format!(r#"{{"publicKey":"p","authKey":"{key_hex}","authStamp":"{stamp_hex}"}}"#);
        let Parsed::Object(f) = parse_line(line.as_bytes()) else {
            panic!()
        };
        assert_eq!(check(&result(json!({})), &f), "auth_authkey");
    }

    #[test]
    fn parse_int_follows_javascript() {
        assert_eq!(parse_int("1700000000000"), Some(1_700_000_000_000));
        assert_eq!(parse_int("123abc"), Some(123));
        assert_eq!(parse_int("-5"), Some(-5));
        assert_eq!(parse_int("abc"), None);
    }
}
