//! The config file named by `--config`: the format of `bin/ricochet-server.js`, with its
//! `"server"` options validated like `lib/options.js` validates them and mapped onto
//! [`ServerConfig`] the way the napi binding maps them.
//!
//! One difference on purpose: a key this server does not know (a typo such as `maxConection`)
//! is an error here, where the Node server ignores it.

use ricochet::config::ServerConfig;
use ricochet::wire::seal::Encryption;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `listen.port` when the config names none, as in `bin/ricochet-server.js`.
pub const DEFAULT_PORT: u16 = 23225;
/// `listen.host` when the config names none.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// Everything the daemon needs from its config file.
#[derive(Debug)]
pub struct Config {
    /// Address to bind; `None` (an empty `listen.host`) binds every interface.
    pub host: Option<String>,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// The keys file, resolved against the config file's directory.
    pub keys: PathBuf,
    /// Limits and timeouts of the core.
    pub server: ServerConfig,
    /// `metrics: {port, host}`: where to serve `GET /metrics`.
    pub metrics: Option<(String, u16)>,
    /// `cluster: {nats, name}`: the NATS URL and this node's name.
    pub cluster: Option<(String, String)>,
    /// Options accepted for compatibility but ignored, one line each (the Node server warns too).
    pub warnings: Vec<String>,
}

/// Reads and parses a JSON file; the error names what the file is.
pub fn read_json(file: &Path, what: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {what} {}: {e}", file.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("cannot read {what} {}: {e}", file.display()))
}

/// Reads the config file and validates all of it.
pub fn load(file: &Path) -> Result<Config, String> {
    let root = read_json(file, "config")?;
    let Value::Object(root) = root else {
        return Err(format!("{}: must be a JSON object", file.display()));
    };
    known_keys(&root, "", &["listen", "keys", "cluster", "server"])?;
    let keys = match root.get("keys") {
        Some(Value::String(k)) => absolute(&file.parent().unwrap_or(Path::new("")).join(k)),
        _ => return Err("config needs \"keys\": \"<path to keys file>\"".into()),
    };
    let (host, port) = listen(root.get("listen"))?;

    let mut server = match root.get("server") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err("\"server\" must be an object of Server options".into()),
    };
    // A top-level "cluster" is a shorthand for server.cluster (a falsy one is no shorthand).
    if let Some(c) = root.get("cluster").filter(|c| truthy(c)) {
        server.insert("cluster".into(), c.clone());
    }
    let opts = server_options(&server).map_err(|e| format!("invalid \"server\" options: {e}"))?;
    Ok(Config {
        host,
        port,
        keys,
        server: opts.config,
        metrics: opts.metrics,
        cluster: opts.cluster,
        warnings: opts.warnings,
    })
}

/// The path made absolute against the working directory, for clear log lines.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// JavaScript truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `listen: {host, port}`: the Node bin's `listen.host ?? '127.0.0.1'` and `listen.port ??
/// 23225`, with the port rules of `lib/listen-args.js` (an integer 0-65535, or its digits).
fn listen(v: Option<&Value>) -> Result<(Option<String>, u16), String> {
    let empty = Map::new();
    let m = match v {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err("\"listen\" must be an object like {host, port}".into()),
    };
    known_keys(m, "listen.", &["host", "port"])?;
    let host = match m.get("host") {
        None | Some(Value::Null) => Some(DEFAULT_HOST.to_string()),
        Some(Value::String(h)) if h.is_empty() => None,
        Some(Value::String(h)) => Some(h.clone()),
        Some(_) => return Err("option \"listen.host\" must be a string".into()),
    };
    let port = match m.get("port") {
        None | Some(Value::Null) => Some(DEFAULT_PORT),
        Some(Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Some(Value::String(s)) => s.trim().parse::<u16>().ok(),
        Some(_) => None,
    };
    let port = port.ok_or_else(|| {
        format!(
            "option \"listen.port\" must be an integer 0-65535, got {}",
            m.get("port").map_or_else(String::new, Value::to_string)
        )
    })?;
    Ok((host, port))
}

/// Fails on the first key of `m` that is not in `known`.
fn known_keys(m: &Map<String, Value>, prefix: &str, known: &[&str]) -> Result<(), String> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unknown option \"{prefix}{k}\" (known: {})",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

/// The validated `"server"` options.
#[derive(Debug)]
pub struct ServerOptions {
    /// What the core takes.
    pub config: ServerConfig,
    /// `metrics`: host and port of the Prometheus endpoint.
    pub metrics: Option<(String, u16)>,
    /// `cluster`: NATS URL and node name.
    pub cluster: Option<(String, String)>,
    /// Ignored options, one line each.
    pub warnings: Vec<String>,
}

/// Every option the Node `Server` accepts (`lib/options.js` DEFAULTS plus `metrics` and
/// `cluster`). Client options are valid in a shared config and are checked, then ignored.
const OPTIONS: &[&str] = &[
    "delimiters",
    "timeouts",
    "keepAlive",
    "events",
    "encoding",
    "encryption",
    "queueSize",
    "host",
    "port",
    "maxMessageSize",
    "maxQueueSize",
    "maxConnections",
    "maxAuthFailures",
    "maxQueue",
    "maxBuffer",
    "highWaterMark",
    "metrics",
    "cluster",
];
const TIMEOUTS: &[&str] = &[
    "reconnect",
    "reconnectMax",
    "message",
    "latencyBuffer",
    "auth",
    "authKey",
    "idle",
];
const DELIMITERS: &[&str] = &["message", "encryption", "authKey"];

const MIB: f64 = 1024.0 * 1024.0;

/// Checks and maps the `"server"` options; the error names the option, in the words of
/// `lib/options.js`.
pub fn server_options(m: &Map<String, Value>) -> Result<ServerOptions, String> {
    known_keys(m, "", OPTIONS)?;
    for key in ["delimiters", "timeouts", "events"] {
        if m.get(key).is_some_and(|v| !v.is_object()) {
            return Err(format!("option \"{key}\" must be an object"));
        }
    }
    if let Some(Value::Object(t)) = m.get("timeouts") {
        known_keys(t, "timeouts.", TIMEOUTS)?;
    }
    if let Some(Value::Object(d)) = m.get("delimiters") {
        known_keys(d, "delimiters.", DELIMITERS)?;
    }

    let encryption = match m.get("encryption") {
        None => Some(Encryption::Xts),
        Some(Value::String(s)) => Encryption::parse(s),
        Some(_) => None,
    }
    .ok_or_else(|| {
        let given = match m.get("encryption") {
            Some(Value::String(s)) => s.clone(),
            other => other.map_or_else(String::new, Value::to_string),
        };
        format!("unknown encryption \"{given}\"; supported: aes-256-xts, aes-256-gcm")
    })?;

    let mut warnings = Vec::new();
    let delimiter = |k: &str| m.get("delimiters").and_then(|d| d.get(k));
    if delimiter("message").is_some_and(|v| v.as_str() != Some("\n")) {
        warnings.push("delimiters.message is ignored; frames always end with LF".to_string());
    }
    if delimiter("encryption").is_some_and(|v| v.as_str() != Some("\"{ENCRYPT}\"")) {
        warnings.push(
            "delimiters.encryption is ignored; the wire-compatible \"{ENCRYPT}\" is always used"
                .to_string(),
        );
    }
    if m.get("encoding")
        .is_some_and(|v| !matches!(v.as_str(), Some("utf8" | "utf-8")))
    {
        warnings.push("encoding is ignored; frames are always UTF-8".to_string());
    }

    let timeout = |k: &str| m.get("timeouts").and_then(|t| t.get(k));
    let n = |path: &str, v: Option<&Value>, default: f64, min: f64, integer: bool| {
        number(path, v, default, min, integer)
    };
    // Client timeouts: checked, unused.
    n(
        "timeouts.reconnect",
        timeout("reconnect"),
        1500.0,
        1.0,
        false,
    )?;
    n(
        "timeouts.reconnectMax",
        timeout("reconnectMax"),
        30000.0,
        1.0,
        false,
    )?;
    n("timeouts.message", timeout("message"), 5000.0, 1.0, false)?;
    let auth = n("timeouts.auth", timeout("auth"), 3500.0, 1.0, false)?;
    let auth_key = n("timeouts.authKey", timeout("authKey"), 30000.0, 1.0, false)?;
    n(
        "timeouts.latencyBuffer",
        timeout("latencyBuffer"),
        500.0,
        0.0,
        false,
    )?;
    let idle = n("timeouts.idle", timeout("idle"), 0.0, 0.0, false)?;
    let keepalive = n("keepAlive", m.get("keepAlive"), 30000.0, 0.0, false)?;
    let max_message = n(
        "maxMessageSize",
        m.get("maxMessageSize"),
        40.0 * MIB,
        64.0,
        true,
    )?;
    let max_queue = n(
        "maxQueueSize",
        m.get("maxQueueSize"),
        64.0 * MIB,
        1024.0,
        true,
    )?;
    let max_conns = n(
        "maxConnections",
        m.get("maxConnections"),
        10000.0,
        1.0,
        true,
    )?;
    // Client limits: checked, unused.
    n("maxQueue", m.get("maxQueue"), 1000.0, 0.0, true)?;
    let max_auth_failures = n("maxAuthFailures", m.get("maxAuthFailures"), 30.0, 0.0, true)?;
    n("maxBuffer", m.get("maxBuffer"), 64.0 * MIB, 1024.0, true)?;
    n("highWaterMark", m.get("highWaterMark"), MIB, 1.0, true)?;

    Ok(ServerOptions {
        // The same conversions as the binding's NativeServer::new.
        config: ServerConfig {
            auth_timeout: ms(auth),
            auth_key_window: ms(auth_key),
            max_message_size: max_message.max(1.0) as usize,
            max_queue_bytes: max_queue.max(1.0) as usize,
            max_connections: max_conns.max(1.0) as usize,
            idle_timeout: opt_ms(idle),
            keepalive: opt_ms(keepalive),
            max_auth_failures: max_auth_failures.clamp(0.0, u32::MAX as f64) as u32,
            encryption,
        },
        metrics: metrics(m.get("metrics"))?,
        cluster: cluster(m.get("cluster"))?,
        warnings,
    })
}

fn ms(v: f64) -> Duration {
    Duration::from_millis(v.max(0.0) as u64)
}

fn opt_ms(v: f64) -> Option<Duration> {
    (v > 0.0).then(|| ms(v))
}

/// The JavaScript `typeof` of a JSON value, for messages.
fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null | Value::Array(_) | Value::Object(_) => "object",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
    }
}

/// A numeric option (`positive()` of `lib/options.js`): `default` when absent.
fn number(
    path: &str,
    v: Option<&Value>,
    default: f64,
    min: f64,
    integer: bool,
) -> Result<f64, String> {
    let Some(v) = v else {
        return Ok(default);
    };
    let Some(x) = v.as_f64() else {
        return Err(format!(
            "option \"{path}\" must be a number, got {}",
            type_of(v)
        ));
    };
    if !x.is_finite() || x < min || (integer && x.fract() != 0.0) {
        let kind = if integer { "an integer" } else { "a number" };
        return Err(format!(
            "option \"{path}\" must be {kind} >= {min}, got {v}"
        ));
    }
    Ok(x)
}

/// `metrics: {port, host = '127.0.0.1'}`; absent, null or false: off.
fn metrics(v: Option<&Value>) -> Result<Option<(String, u16)>, String> {
    let m = match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => return Ok(None),
        Some(Value::Object(m)) => m,
        Some(_) => return Err("option \"metrics\" must be an object like {port, host}".into()),
    };
    known_keys(m, "metrics.", &["port", "host"])?;
    let port = m
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| {
            format!(
                "option \"metrics.port\" must be an integer 0-65535, got {}",
                m.get("port")
                    .map_or_else(|| "undefined".into(), Value::to_string)
            )
        })?;
    let host = match m.get("host") {
        None => DEFAULT_HOST.to_string(),
        Some(Value::String(h)) if h.is_empty() => DEFAULT_HOST.to_string(),
        Some(Value::String(h)) => h.clone(),
        Some(_) => return Err("option \"metrics.host\" must be a string".into()),
    };
    Ok(Some((host, port)))
}

/// `cluster: {nats, name}`; absent, null or false: off. The default name is the Node server's
/// `ricochet-<hostname>-<pid>`.
fn cluster(v: Option<&Value>) -> Result<Option<(String, String)>, String> {
    let c = match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => return Ok(None),
        Some(Value::Object(c)) => c,
        Some(_) => return Err("option \"cluster\" must be an object like {nats, name}".into()),
    };
    known_keys(c, "cluster.", &["nats", "name"])?;
    let nats = match c.get("nats") {
        Some(Value::String(u)) if u.starts_with("nats://") || u.starts_with("tls://") => u.clone(),
        _ => return Err("option \"cluster.nats\" must be a nats:// URL".into()),
    };
    let name = match c.get("name") {
        None => format!("ricochet-{}-{}", hostname(), std::process::id()),
        Some(Value::String(n)) if !n.is_empty() => n.clone(),
        Some(_) => return Err("option \"cluster.name\" must be a non-empty string".into()),
    };
    Ok(Some((nats, name)))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> Result<ServerOptions, String> {
        match v {
            Value::Object(m) => server_options(&m),
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn no_options_give_the_node_servers_defaults() {
        let o = opts(json!({})).expect("defaults are valid");
        let d = ServerConfig::default();
        assert_eq!(o.config.auth_timeout, d.auth_timeout);
        assert_eq!(o.config.auth_key_window, d.auth_key_window);
        assert_eq!(o.config.max_message_size, d.max_message_size);
        assert_eq!(o.config.max_queue_bytes, d.max_queue_bytes);
        assert_eq!(o.config.max_connections, d.max_connections);
        assert_eq!(o.config.idle_timeout, d.idle_timeout);
        assert_eq!(o.config.keepalive, d.keepalive);
        assert_eq!(o.config.max_auth_failures, d.max_auth_failures);
        assert_eq!(o.config.encryption, d.encryption);
        assert!(o.metrics.is_none() && o.cluster.is_none() && o.warnings.is_empty());
    }

    #[test]
    fn server_options_map_onto_the_core_config() {
        let o = opts(json!({
            "timeouts": {"auth": 1000, "authKey": 5000, "idle": 250.9, "reconnect": 10},
            "keepAlive": 0,
            "maxMessageSize": 4096, "maxQueueSize": 2048, "maxConnections": 3,
            "maxAuthFailures": 0, "encryption": "aes-256-gcm",
            "metrics": {"port": 0}, "cluster": {"nats": "nats://127.0.0.1:4222", "name": "edge"},
            "events": {"wildcard": false}, "maxQueue": 5
        }))
        .expect("valid options");
        assert_eq!(o.config.auth_timeout, Duration::from_millis(1000));
        assert_eq!(o.config.auth_key_window, Duration::from_millis(5000));
        assert_eq!(o.config.idle_timeout, Some(Duration::from_millis(250)));
        assert_eq!(o.config.keepalive, None);
        assert_eq!(o.config.max_message_size, 4096);
        assert_eq!(o.config.max_queue_bytes, 2048);
        assert_eq!(o.config.max_connections, 3);
        assert_eq!(o.config.max_auth_failures, 0);
        assert_eq!(o.config.encryption, Encryption::Gcm);
        assert_eq!(o.metrics, Some(("127.0.0.1".into(), 0)));
        assert_eq!(
            o.cluster,
            Some(("nats://127.0.0.1:4222".into(), "edge".into()))
        );
    }

    #[test]
    fn invalid_and_unknown_options_are_named_in_the_error() {
        let cases = [
            (
                json!({"maxConection": 5}),
                "unknown option \"maxConection\"",
            ),
            (
                json!({"timeouts": {"auht": 5}}),
                "unknown option \"timeouts.auht\"",
            ),
            (
                json!({"timeouts": 5}),
                "option \"timeouts\" must be an object",
            ),
            (
                json!({"timeouts": {"auth": "5"}}),
                "option \"timeouts.auth\" must be a number, got string",
            ),
            (
                json!({"timeouts": {"auth": 0}}),
                "option \"timeouts.auth\" must be a number >= 1, got 0",
            ),
            (
                json!({"maxConnections": 1.5}),
                "option \"maxConnections\" must be an integer >= 1, got 1.5",
            ),
            (
                json!({"maxMessageSize": 10}),
                "option \"maxMessageSize\" must be an integer >= 64, got 10",
            ),
            (
                json!({"maxQueueSize": null}),
                "option \"maxQueueSize\" must be a number, got object",
            ),
            (
                json!({"encryption": "rot13"}),
                "unknown encryption \"rot13\"",
            ),
            (
                json!({"metrics": {"port": 70000}}),
                "option \"metrics.port\" must be an integer 0-65535",
            ),
            (
                json!({"metrics": 9100}),
                "option \"metrics\" must be an object",
            ),
            (
                json!({"cluster": {"nats": "http://x"}}),
                "option \"cluster.nats\" must be a nats:// URL",
            ),
            (
                json!({"cluster": {"nats": "nats://x", "name": ""}}),
                "option \"cluster.name\"",
            ),
        ];
        for (input, want) in cases {
            let err = opts(input.clone()).expect_err(&input.to_string());
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn ignored_compatibility_options_warn_instead_of_failing() {
        let o = opts(json!({"delimiters": {"message": "\r\n"}, "encoding": "latin1"}))
            .expect("accepted with warnings");
        assert_eq!(o.warnings.len(), 2);
    }

    #[test]
    fn listen_defaults_and_port_forms_follow_the_node_bin() {
        assert_eq!(listen(None), Ok((Some("127.0.0.1".into()), 23225)));
        assert_eq!(
            listen(Some(&json!({"port": "8080"}))),
            Ok((Some("127.0.0.1".into()), 8080))
        );
        assert_eq!(listen(Some(&json!({"host": "", "port": 0}))), Ok((None, 0)));
        assert!(listen(Some(&json!({"port": 65536}))).is_err());
        assert!(listen(Some(&json!({"port": -1}))).is_err());
        assert!(listen(Some(&json!({"prot": 1}))).is_err());
    }
}
