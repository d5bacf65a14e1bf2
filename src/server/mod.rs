//! The ricochet server core.
//!
//! [`Server`] owns an accept loop and one task per connection. Connections authenticate
//! through the embedder (an `_auth` [`Event`] answered with [`Server::resolve_auth`]), then
//! their frames are routed entirely here: header checks, groups, decryption and re-encryption,
//! and writes into the recipient's outbound queue. Nothing on the routing path waits for the
//! embedder except the optional unrouted callback.

mod auth;
pub(crate) mod cluster;
mod connection;
mod events;
mod metrics;
mod registry;
mod router;

pub(crate) use connection::sleep_or_never;

/// Runs the auth checks of one arbitrary auth frame against a fixed callback result (fuzzing).
pub(crate) fn auth_fuzz(data: &[u8]) {
    use crate::wire::message::{parse_line, Parsed};
    if let Parsed::Object(frame) = parse_line(data) {
        if auth::frame_is_well_formed(&frame) {
            let result = serde_json::json!({"ip": "127.0.0.1", "privateKey": "pk", "publicKey": "p",
                "authKey": "ak", "channel": "c", "groups": ["g"]});
            let peer: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 1));
            for enc in [
                crate::wire::seal::Encryption::Xts,
                crate::wire::seal::Encryption::Gcm,
            ] {
                let _ = auth::check_result(&result, &frame, &peer, 1_700_000_000_000, 30_000, enc);
            }
        }
    }
}
pub use events::{Event, EventSink};

use crate::config::ServerConfig;
use registry::Registry;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the embedder's auth callback answered.
#[derive(Debug, Clone)]
pub enum AuthAnswer {
    /// `cb(null, result)`: the result object.
    Ok(Value),
    /// `cb(err)`: the error, reported as the event's `Error` field.
    Err(Value),
}

/// Why `listen` failed.
#[derive(Debug)]
pub enum ListenError {
    /// The server is already listening (`ricochet.server_inuse`).
    InUse,
    /// The server was closed.
    Closed,
    /// Binding failed.
    Io(std::io::Error),
}

impl std::fmt::Display for ListenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenError::InUse => f.write_str(crate::codes::SERVER_INUSE.text),
            ListenError::Closed => f.write_str(crate::codes::SERVER_CLOSED.text),
            ListenError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ListenError {}

/// State shared by the accept loop and every connection task.
pub(crate) struct Shared {
    pub config: ServerConfig,
    pub events: EventSink,
    pub registry: Mutex<Registry>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub routed: AtomicU64,
    pub want_input: AtomicBool,
    pub want_message: AtomicBool,
    pub want_error: AtomicBool,
    pub want_invalid: AtomicBool,
    pub has_unrouted: AtomicBool,
    next_rid: AtomicU64,
    pending_auth: Mutex<HashMap<u64, oneshot::Sender<AuthAnswer>>>,
    pending_unrouted: Mutex<HashMap<u64, oneshot::Sender<Option<String>>>>,
    auth_failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    pub counters: metrics::Counters,
    pub cluster: std::sync::OnceLock<Arc<cluster::Cluster>>,
}

/// The window of `maxAuthFailures`.
const AUTH_FAILURE_WINDOW: Duration = Duration::from_secs(60);

impl Shared {
    /// Whether an event that copies frames is listened to (the others always are produced).
    pub fn wants(&self, name: &str) -> bool {
        let flag = match name {
            "clientInput" => &self.want_input,
            "message" => &self.want_message,
            "messageError" => &self.want_error,
            "invalidMessage" => &self.want_invalid,
            _ => return true,
        };
        flag.load(Ordering::Relaxed)
    }

    /// Counts a failed login from `ip`.
    pub fn auth_failed(&self, ip: IpAddr) {
        if self.config.max_auth_failures == 0 {
            return;
        }
        let now = Instant::now();
        let mut map = lock(&self.auth_failures);
        if map.len() >= 4096 {
            map.retain(|_, (start, _)| now.duration_since(*start) < AUTH_FAILURE_WINDOW);
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= AUTH_FAILURE_WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Whether `ip` used up its failed logins for this minute.
    pub fn auth_blocked(&self, ip: IpAddr) -> bool {
        let limit = self.config.max_auth_failures;
        limit > 0
            && lock(&self.auth_failures)
                .get(&ip)
                .is_some_and(|(start, n)| *n >= limit && start.elapsed() < AUTH_FAILURE_WINDOW)
    }

    pub fn emit(&self, name: &'static str, payload: String) {
        self.events.send(Event { name, payload });
    }

    /// Asks the embedder to authenticate; `None` when the server closes first.
    pub async fn ask_auth(&self, data: String) -> Option<AuthAnswer> {
        let rid = self.next_rid.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending_auth).insert(rid, tx);
        self.emit("_auth", format!("{{\"rid\":{rid},\"data\":{data}}}"));
        // The wait may be abandoned (auth deadline, disconnect): forget the entry either way.
        struct Forget<'a>(&'a Shared, u64);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                lock(&self.0.pending_auth).remove(&self.1);
            }
        }
        let _forget = Forget(self, rid);
        rx.await.ok()
    }

    /// Asks the embedder's unrouted callback; `Ok(None)` means it took the frame over.
    pub async fn ask_unrouted(&self, data: String) -> Option<Option<String>> {
        let rid = self.next_rid.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending_unrouted).insert(rid, tx);
        self.emit("_unrouted", format!("{{\"rid\":{rid},\"data\":{data}}}"));
        struct Forget<'a>(&'a Shared, u64);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                lock(&self.0.pending_unrouted).remove(&self.1);
            }
        }
        let _forget = Forget(self, rid);
        rx.await.ok()
    }
}

pub(crate) use crate::net::lock;

/// A ricochet server.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
    state: Arc<Mutex<ListenState>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListenState {
    Idle,
    Listening(SocketAddr),
    Closed,
}

impl Server {
    /// A server that reports its events to `events`.
    pub fn new(config: ServerConfig, events: EventSink) -> Server {
        Server {
            shared: Arc::new(Shared {
                config,
                events,
                registry: Mutex::new(Registry::default()),
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
                routed: AtomicU64::new(0),
                want_input: AtomicBool::new(false),
                want_message: AtomicBool::new(false),
                want_error: AtomicBool::new(false),
                want_invalid: AtomicBool::new(false),
                has_unrouted: AtomicBool::new(false),
                next_rid: AtomicU64::new(1),
                pending_auth: Mutex::new(HashMap::new()),
                pending_unrouted: Mutex::new(HashMap::new()),
                auth_failures: Mutex::new(HashMap::new()),
                counters: metrics::Counters::default(),
                cluster: std::sync::OnceLock::new(),
            }),
            state: Arc::new(Mutex::new(ListenState::Idle)),
        }
    }

    /// Binds `host:port` (names are resolved; port 0 picks a free port) and starts accepting.
    /// Must be called inside a tokio runtime.
    pub async fn listen(
        &self,
        host: &str,
        port: u16,
        backlog: u32,
    ) -> Result<SocketAddr, ListenError> {
        match *lock(&self.state) {
            ListenState::Idle => {}
            ListenState::Listening(_) => return Err(ListenError::InUse),
            ListenState::Closed => return Err(ListenError::Closed),
        }
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(ListenError::Io)?
            .next()
            .ok_or_else(|| {
                ListenError::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("getaddrinfo ENOTFOUND {host}"),
                ))
            })?;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(ListenError::Io)?;
        socket.set_reuseaddr(true).map_err(ListenError::Io)?;
        socket.bind(addr).map_err(ListenError::Io)?;
        let listener = socket.listen(backlog).map_err(ListenError::Io)?;
        let bound = listener.local_addr().map_err(ListenError::Io)?;
        {
            let mut st = lock(&self.state);
            if *st != ListenState::Idle {
                return Err(ListenError::InUse);
            }
            *st = ListenState::Listening(bound);
        }
        let shared = self.shared.clone();
        self.shared
            .tracker
            .spawn(connection::accept_loop(shared, listener));
        Ok(bound)
    }

    /// The bound address while listening.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match *lock(&self.state) {
            ListenState::Listening(a) => Some(a),
            _ => None,
        }
    }

    /// Stops accepting, disconnects every client (each reported as `clientDisconnected`) and
    /// returns when every connection task has finished.
    pub async fn close(&self) {
        *lock(&self.state) = ListenState::Closed;
        self.shared.shutdown.cancel();
        self.shared.tracker.close();
        // Unblock connections waiting on the embedder: their callbacks will never be answered.
        lock(&self.shared.pending_auth).clear();
        lock(&self.shared.pending_unrouted).clear();
        self.shared.tracker.wait().await;
    }

    /// Answers an `_auth` event.
    pub fn resolve_auth(&self, rid: u64, answer: AuthAnswer) {
        if let Some(tx) = lock(&self.shared.pending_auth).remove(&rid) {
            let _ = tx.send(answer);
        }
    }

    /// Answers an `_unrouted` event: `None` when the embedder took the frame over, or an error
    /// code (with or without the `ricochet.` prefix; unknown codes mean `message_norecipient`).
    pub fn resolve_unrouted(&self, rid: u64, code: Option<String>) {
        if let Some(tx) = lock(&self.shared.pending_unrouted).remove(&rid) {
            let _ = tx.send(code);
        }
    }

    /// Whether the events that copy frames (`clientInput`, `message`, `messageError`,
    /// `invalidMessage`) are produced; they are off until someone listens, so a flood of bad or
    /// unroutable frames costs no memory when nobody watches.
    pub fn set_wants(&self, event: &str, on: bool) {
        let flag = match event {
            "clientInput" => &self.shared.want_input,
            "message" => &self.shared.want_message,
            "messageError" => &self.shared.want_error,
            "invalidMessage" => &self.shared.want_invalid,
            _ => return,
        };
        flag.store(on, Ordering::Relaxed);
    }

    /// Whether an unrouted callback is installed.
    pub fn set_unrouted(&self, on: bool) {
        self.shared.has_unrouted.store(on, Ordering::Relaxed);
    }

    /// Messages routed since start.
    pub fn routed(&self) -> u64 {
        self.shared.routed.load(Ordering::Relaxed)
    }

    /// Joins the cluster on the NATS server at `url` as `name`: channels become unique across
    /// every server there and frames reach channels held elsewhere. Returns once connecting has
    /// started; NATS state is reported as `clusterConnected` / `clusterDisconnected`.
    pub async fn join_cluster(&self, url: &str, name: &str) -> Result<(), String> {
        let c = cluster::Cluster::connect(Arc::downgrade(&self.shared), url, name).await?;
        self.shared
            .cluster
            .set(Arc::new(c))
            .map_err(|_| "already in a cluster".to_string())
    }

    /// Counters and gauges as JSON (`server.metrics()`).
    pub fn metrics_json(&self) -> String {
        metrics::json(&self.shared)
    }

    /// Counters and gauges in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        metrics::prometheus(&self.shared)
    }

    /// Serves `GET /metrics` on `host:port` until the server closes; returns the bound address.
    pub async fn listen_metrics(&self, host: &str, port: u16) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind((host, port)).await?;
        let addr = listener.local_addr()?;
        let shared = self.shared.clone();
        self.shared.tracker.spawn(metrics::serve(shared, listener));
        Ok(addr)
    }

    /// `[{id, ip, channel, groups, stats: {sent, received}}]` of every connection, as JSON.
    pub fn clients_json(&self) -> String {
        lock(&self.shared.registry).clients_json()
    }
}
