//! Counters and gauges of one server, read by `server.metrics()` and served as Prometheus text
//! on an optional port by the core itself.

use super::Shared;
use crate::codes;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Monotonic counters (gauges are computed when read).
pub(crate) struct Counters {
    pub connections_total: AtomicU64,
    pub auth_success: AtomicU64,
    pub auth_failures: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub frames_in: AtomicU64,
    /// Routing failures by code, indexed like [`codes::ALL`].
    pub failed: Vec<AtomicU64>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            connections_total: AtomicU64::new(0),
            auth_success: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            frames_in: AtomicU64::new(0),
            failed: codes::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Counters {
    /// Counts a routing failure.
    pub fn failed(&self, code: codes::Code) {
        if let Some(i) = codes::ALL.iter().position(|c| *c == code) {
            self.failed[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A snapshot of every figure.
pub(crate) struct Snapshot {
    pub connections: u64,
    pub authenticated: u64,
    pub queued_bytes: u64,
    pub max_queued_bytes: u64,
    pub routed: u64,
    pub counters: Vec<(&'static str, u64)>,
    pub failed: Vec<(String, u64)>,
}

pub(crate) fn snapshot(shared: &Shared) -> Snapshot {
    let (connections, authenticated, queued_bytes, max_queued_bytes) =
        super::lock(&shared.registry).gauges();
    let c = &shared.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Snapshot {
        connections,
        authenticated,
        queued_bytes,
        max_queued_bytes,
        routed: shared.routed.load(Ordering::Relaxed),
        counters: vec![
            ("connections_total", get(&c.connections_total)),
            ("auth_success_total", get(&c.auth_success)),
            ("auth_failures_total", get(&c.auth_failures)),
            ("bytes_in_total", get(&c.bytes_in)),
            ("bytes_out_total", get(&c.bytes_out)),
            ("frames_in_total", get(&c.frames_in)),
        ],
        failed: codes::ALL
            .iter()
            .zip(&c.failed)
            .map(|(code, n)| (code.full(), get(n)))
            .filter(|(_, n)| *n > 0)
            .collect(),
    }
}

/// `server.metrics()` as JSON.
pub(crate) fn json(shared: &Shared) -> String {
    let s = snapshot(shared);
    let mut v = serde_json::Map::new();
    v.insert("connections".into(), s.connections.into());
    v.insert("authenticated".into(), s.authenticated.into());
    v.insert("queuedBytes".into(), s.queued_bytes.into());
    v.insert("maxQueuedBytes".into(), s.max_queued_bytes.into());
    v.insert("messagesRouted".into(), s.routed.into());
    for (k, n) in s.counters {
        v.insert(camel(k), n.into());
    }
    let failed: serde_json::Map<String, serde_json::Value> =
        s.failed.into_iter().map(|(k, n)| (k, n.into())).collect();
    v.insert("messagesFailed".into(), failed.into());
    serde_json::Value::Object(v).to_string()
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for ch in snake.chars() {
        if ch == '_' {
            up = true;
        } else if up {
            out.extend(ch.to_uppercase());
            up = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// The Prometheus text exposition of every figure.
pub(crate) fn prometheus(shared: &Shared) -> String {
    let s = snapshot(shared);
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP ricochet_{name} {help}\n# TYPE ricochet_{name} gauge\nricochet_{name} {v}"
        );
    };
    gauge("connections", "Open connections.", s.connections);
    gauge(
        "authenticated",
        "Authenticated connections.",
        s.authenticated,
    );
    gauge(
        "queued_bytes",
        "Bytes waiting to be written, all connections.",
        s.queued_bytes,
    );
    gauge(
        "max_queued_bytes",
        "Largest outbound queue of one connection.",
        s.max_queued_bytes,
    );
    let _ = writeln!(out, "# HELP ricochet_messages_routed_total Messages routed.\n# TYPE ricochet_messages_routed_total counter\nricochet_messages_routed_total {}", s.routed);
    for (name, v) in s.counters {
        let _ = writeln!(out, "# TYPE ricochet_{name} counter\nricochet_{name} {v}");
    }
    let _ = writeln!(out, "# HELP ricochet_messages_failed_total Routing failures by code.\n# TYPE ricochet_messages_failed_total counter");
    for (code, v) in s.failed {
        let _ = writeln!(out, "ricochet_messages_failed_total{{code=\"{code}\"}} {v}");
    }
    out
}

/// Serves `GET /metrics` (Prometheus text) until shutdown. Any other path gets 404.
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let Ok((mut stream, _)) = accepted else {
            continue;
        };
        let shared = shared.clone();
        shared.clone().tracker.spawn(async move {
            let mut buf = [0u8; 2048];
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
                .await
                .ok()
                .and_then(|r| r.ok())
                .unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = if head.starts_with("GET ") && (path == "/metrics" || path.starts_with("/metrics?")) {
                ("200 OK", prometheus(&shared))
            } else {
                ("404 Not Found", "not found\n".to_string())
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(resp.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
