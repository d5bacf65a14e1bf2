//! The keys file: publicKey → `{privateKey, channel, groups, authKey?, ip?}`, and the auth
//! answers built from it, exactly as `bin/ricochet-server.js`'s authCallback builds them.

use ricochet::server::AuthAnswer;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// The error of an unknown publicKey, as the Node bin's `throw new Error('unknown publicKey')`
/// reaches the core (the message of the error).
pub const UNKNOWN: &str = "unknown publicKey";

/// The users of one keys file, by publicKey.
#[derive(Debug, Default)]
pub struct Keys(HashMap<String, Map<String, Value>>);

impl Keys {
    /// Reads and validates `file`; the error names the first bad entry.
    pub fn load(file: &Path) -> Result<Keys, String> {
        let Value::Object(all) = crate::config::read_json(file, "keys file")? else {
            return Err(format!(
                "{}: must map publicKey to {{privateKey, channel, groups}}",
                file.display()
            ));
        };
        let mut keys = HashMap::with_capacity(all.len());
        for (public_key, entry) in all {
            match entry {
                Value::Object(k) if valid(&k) => {
                    keys.insert(public_key, k);
                }
                _ => {
                    return Err(format!(
                        "{}: entry \"{public_key}\" needs privateKey, channel and groups (true or a non-empty list)",
                        file.display()
                    ))
                }
            }
        }
        Ok(Keys(keys))
    }

    /// How many users the file grants.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Answers the `data` of an `_auth` event: the user's `{publicKey, privateKey, channel,
    /// groups}` plus `authKey` and `ip` when the file gives them (the core checks both), or the
    /// [`UNKNOWN`] error.
    pub fn answer(&self, data: &Value) -> AuthAnswer {
        let public_key = data.get("publicKey").and_then(Value::as_str);
        let Some((public_key, k)) = public_key.and_then(|p| self.0.get_key_value(p)) else {
            return AuthAnswer::Err(Value::String(UNKNOWN.into()));
        };
        let mut result = Map::new();
        result.insert("publicKey".into(), Value::String(public_key.clone()));
        for field in ["privateKey", "channel", "groups", "authKey", "ip"] {
            if let Some(v) = k.get(field) {
                result.insert(field.into(), v.clone());
            }
        }
        AuthAnswer::Ok(Value::Object(result))
    }
}

/// `privateKey` a string, `channel` a non-empty string, `groups` true or a non-empty list.
fn valid(k: &Map<String, Value>) -> bool {
    let private_key = k.get("privateKey").is_some_and(Value::is_string);
    let channel = k
        .get("channel")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty());
    let groups = match k.get("groups") {
        Some(Value::Bool(true)) => true,
        Some(Value::Array(g)) => !g.is_empty(),
        _ => false,
    };
    private_key && channel && groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(v: Value) -> Keys {
        let Value::Object(m) = v else {
            unreachable!("tests pass objects")
        };
        Keys(
            m.into_iter()
                .map(|(k, v)| match v {
                    Value::Object(e) => (k, e),
                    _ => unreachable!("tests pass objects"),
                })
                .collect(),
        )
    }

    #[test]
    fn a_known_key_answers_with_its_entry_and_the_public_key() {
        let k = keys(
            json!({"pub-a": {"privateKey": "pa", "channel": "a", "groups": ["g"],
            "authKey": "ka", "ip": "127.0.0.1", "note": "not passed on"}}),
        );
        let AuthAnswer::Ok(v) = k.answer(&json!({"publicKey": "pub-a", "ip": "::1"})) else {
            panic!("expected Ok");
        };
        assert_eq!(
            v,
            json!({"publicKey": "pub-a", "privateKey": "pa", "channel": "a", "groups": ["g"],
                "authKey": "ka", "ip": "127.0.0.1"})
        );
    }

    #[test]
    fn an_unknown_or_missing_public_key_is_refused() {
        let k = keys(json!({"pub-a": {"privateKey": "pa", "channel": "a", "groups": true}}));
        for data in [
            json!({"publicKey": "pub-x"}),
            json!({}),
            json!({"publicKey": 5}),
        ] {
            assert!(matches!(k.answer(&data), AuthAnswer::Err(Value::String(s)) if s == UNKNOWN));
        }
    }

    #[test]
    fn entries_need_private_key_channel_and_groups() {
        let ok = |v: Value| valid(v.as_object().expect("object"));
        assert!(ok(
            json!({"privateKey": "", "channel": "c", "groups": true})
        ));
        assert!(!ok(
            json!({"privateKey": "p", "channel": "", "groups": true})
        ));
        assert!(!ok(
            json!({"privateKey": "p", "channel": "c", "groups": []})
        ));
        assert!(!ok(
            json!({"privateKey": "p", "channel": "c", "groups": false})
        ));
        assert!(!ok(json!({"channel": "c", "groups": ["g"]})));
    }
}
