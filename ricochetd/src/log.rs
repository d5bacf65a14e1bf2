//! One stdout line per lifecycle event, in `bin/ricochet-server.js`'s format:
//! `<ISO time> <what> <details…>`.

use ricochet::server::Event;
use serde_json::Value;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes `<ISO time> <parts joined by spaces>` as one write, so lines never interleave. A
/// closed stdout is not a reason to stop serving.
pub fn line(parts: &[&str]) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut text = ricochet::trace::iso8601(now);
    for p in parts.iter().filter(|p| !p.is_empty()) {
        text.push(' ');
        text.push_str(p);
    }
    text.push('\n');
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// A payload field as text (`-` when missing).
fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("-")
}

/// Logs a server event the way the Node bin logs it; other events are not logged.
pub fn event(ev: &Event) {
    let wanted = matches!(
        ev.name,
        "clientConnected"
            | "clientReady"
            | "clientAuthFail"
            | "clientDisconnected"
            | "clientRejected"
            | "messageError"
            | "error"
            | "clusterConnected"
            | "clusterDisconnected"
    );
    if !wanted {
        return;
    }
    let p: Value = serde_json::from_str(&ev.payload).unwrap_or(Value::Null);
    let raw_id = || p.get("raw").map_or("-", |r| field(r, "id"));
    match ev.name {
        "clientConnected" => line(&["connect", field(&p, "id"), field(&p, "ip")]),
        "clientReady" => line(&["ready", field(&p, "id")]),
        "clientAuthFail" => {
            let id = p.get("id").and_then(Value::as_str).unwrap_or_else(raw_id);
            line(&["auth-fail", id, field(&p, "code")])
        }
        "clientDisconnected" => line(&["disconnect", field(&p, "id")]),
        "clientRejected" => line(&["refused", field(&p, "ip"), field(&p, "code")]),
        "messageError" => line(&["route-fail", raw_id(), field(&p, "code")]),
        "error" => line(&[
            "error",
            p.get("code").and_then(Value::as_str).unwrap_or(""),
            field(&p, "message"),
        ]),
        "clusterConnected" => line(&["cluster", "connected to NATS"]),
        "clusterDisconnected" => line(&["cluster", "lost NATS; local routing goes on"]),
        _ => {}
    }
}
