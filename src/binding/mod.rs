//! The only napi code: `NativeServer` and `NativeClient`, the native halves of the JS classes.
//!
//! Events travel to JS in batches: one threadsafe-function call carries every event queued
//! since the previous call, as one JSON array `[name, payload, name, payload, …]`, and exactly
//! one call is in flight at a time, so a busy JS thread gets bigger batches instead of an
//! unbounded backlog of calls.

use crate::config::ServerConfig;
use crate::server::{AuthAnswer, Event, EventSink, ListenError, Server};
use crate::wire::seal::Encryption;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::time::Duration;

mod client;
#[cfg(unix)]
mod poll;
mod send;
mod sink;

use sink::JsSink;
use std::sync::Arc;

/// Limits and timeouts, already merged with defaults and validated by `lib/options.js`.
#[napi(object)]
pub struct NativeServerConfig {
    /// `timeouts.auth` in ms.
    pub auth_timeout: f64,
    /// `timeouts.authKey` in ms.
    pub auth_key_window: f64,
    /// `maxMessageSize` in bytes.
    pub max_message_size: f64,
    /// `maxQueueSize` in bytes.
    pub max_queue_size: f64,
    /// `maxConnections`.
    pub max_connections: f64,
    /// `timeouts.idle` in ms; 0 disables.
    pub idle_timeout: f64,
    /// `keepAlive` in ms; 0 disables.
    pub keepalive: f64,
    /// `maxAuthFailures` per IP per minute; 0 disables.
    pub max_auth_failures: f64,
    /// `encryption`: `aes-256-xts` or `aes-256-gcm`.
    pub encryption: String,
}

fn opt_ms(v: f64) -> Option<Duration> {
    (v > 0.0).then(|| ms(v))
}

/// The native server behind `lib/server.js`.
#[napi]
pub struct NativeServer {
    core: Server,
    js: Arc<JsSink>,
    sink: EventSink,
}

fn ms(v: f64) -> Duration {
    Duration::from_millis(v.max(0.0) as u64)
}

fn listen_error(e: ListenError) -> Error {
    let code = match &e {
        ListenError::InUse => "ricochet.server_inuse",
        ListenError::Closed => "ricochet.server_closed",
        ListenError::Io(io) => crate::net::io_code(io),
    };
    Error::new(Status::GenericFailure, format!("{code}|{e}"))
}

#[napi]
impl NativeServer {
    /// A server that is not listening yet.
    #[napi(constructor)]
    pub fn new(config: NativeServerConfig) -> Self {
        let js = Arc::new(JsSink::default());
        let sink = js.sink();
        let cfg = ServerConfig {
            auth_timeout: ms(config.auth_timeout),
            auth_key_window: ms(config.auth_key_window),
            max_message_size: config.max_message_size.max(1.0) as usize,
            max_queue_bytes: config.max_queue_size.max(1.0) as usize,
            max_connections: config.max_connections.max(1.0) as usize,
            idle_timeout: opt_ms(config.idle_timeout),
            keepalive: opt_ms(config.keepalive),
            max_auth_failures: config.max_auth_failures.clamp(0.0, u32::MAX as f64) as u32,
            encryption: Encryption::parse(&config.encryption).unwrap_or_default(),
        };
        NativeServer {
            core: Server::new(cfg, sink.clone()),
            js,
            sink,
        }
    }

    /// Starts delivering events to `on_events`; keeps the process alive until `close()`.
    #[napi]
    pub fn start(&self, on_events: Function<String, ()>) -> Result<()> {
        self.js.start(on_events)
    }

    /// Binds and starts accepting; resolves with `{address, family, port}` as JSON.
    #[napi]
    pub async fn listen(&self, host: String, port: u32, backlog: u32) -> Result<String> {
        let addr = self
            .core
            .listen(&host, port as u16, backlog)
            .await
            .map_err(listen_error)?;
        let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
        Ok(serde_json::json!({"address": addr.ip().to_string(), "family": family, "port": addr.port()}).to_string())
    }

    /// Stops accepting, disconnects everyone, then emits `_closed` as the last event.
    #[napi]
    pub async fn close(&self) -> Result<()> {
        self.core.close().await;
        self.sink.send(Event {
            name: "_closed",
            payload: "null".into(),
        });
        Ok(())
    }

    /// Answers an `_auth` event with `cb(err, result)`'s arguments as JSON.
    #[napi]
    pub fn resolve_auth(&self, rid: f64, err_json: Option<String>, result_json: Option<String>) {
        let parse =
            |s: &str| serde_json::from_str(s).unwrap_or(serde_json::Value::String(s.to_string()));
        let answer = match (err_json, result_json) {
            (Some(e), _) => AuthAnswer::Err(parse(&e)),
            (None, Some(r)) => AuthAnswer::Ok(parse(&r)),
            (None, None) => AuthAnswer::Ok(serde_json::Value::Null),
        };
        self.core.resolve_auth(rid as u64, answer);
    }

    /// Answers an `_unrouted` event: no code when the application took the frame over.
    #[napi]
    pub fn resolve_unrouted(&self, rid: f64, code: Option<String>) {
        self.core.resolve_unrouted(rid as u64, code);
    }

    /// Turns a per-message event (`clientInput`, `message`) on or off.
    #[napi]
    pub fn set_wants(&self, event: String, on: bool) {
        self.core.set_wants(&event, on);
    }

    /// Whether an unrouted callback is installed.
    #[napi]
    pub fn set_unrouted(&self, on: bool) {
        self.core.set_unrouted(on);
    }

    /// Messages routed since start.
    #[napi]
    pub fn routed(&self) -> f64 {
        self.core.routed() as f64
    }

    /// Joins the cluster on the NATS server at `url` under `name`.
    #[napi]
    pub async fn join_cluster(&self, url: String, name: String) -> Result<()> {
        self.core
            .join_cluster(&url, &name)
            .await
            .map_err(|e| Error::new(Status::GenericFailure, format!("ricochet.cluster|{e}")))
    }

    /// Counters and gauges as JSON.
    #[napi]
    pub fn metrics(&self) -> String {
        self.core.metrics_json()
    }

    /// Counters and gauges as Prometheus text.
    #[napi]
    pub fn metrics_text(&self) -> String {
        self.core.metrics_text()
    }

    /// Serves `GET /metrics` on `host:port`; resolves with `{address, port}` as JSON.
    #[napi]
    pub async fn listen_metrics(&self, host: String, port: u32) -> Result<String> {
        let addr = self
            .core
            .listen_metrics(&host, port as u16)
            .await
            .map_err(|e| Error::new(Status::GenericFailure, format!("EIO|{e}")))?;
        Ok(serde_json::json!({"address": addr.ip().to_string(), "port": addr.port()}).to_string())
    }

    /// Every connection as JSON.
    #[napi]
    pub fn clients(&self) -> String {
        self.core.clients_json()
    }

    /// The `ricochet.*` error table as JSON `[[name, text], …]`, the source of `errorCodes`.
    #[napi]
    pub fn error_table() -> String {
        let table: Vec<(&str, &str)> = crate::codes::ALL.iter().map(|c| (c.name, c.text)).collect();
        serde_json::to_string(&table).unwrap_or_else(|_| "[]".into())
    }
}

/// Runs the core on a runtime sized by `RICOCHET_THREADS` (see [`crate::net::runtime`]).
#[napi_derive::module_init]
fn init() {
    crate::trace::configure(std::env::var("DEBUG").ok().as_deref());
    if let Ok(rt) = crate::net::runtime() {
        napi::bindgen_prelude::create_custom_tokio_runtime(rt);
    }
}
