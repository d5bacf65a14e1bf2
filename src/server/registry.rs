//! Who is connected: every connection by id, and authenticated ones by channel. Only
//! authenticated connections have a channel entry, so nothing is ever routed to a connection
//! that has not logged in (D25).

use crate::server::events::Payload;
use crate::wire::outbound::Outbound;
use crate::wire::seal::Seal;
use bytes::Bytes;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A client's groups: the wildcard `true` or a non-empty list.
#[derive(Debug, Clone)]
pub(crate) struct Groups {
    /// `groups: true`.
    pub all: bool,
    /// The list (empty when `all`).
    pub list: Vec<Value>,
    /// The value as JSON, as the auth callback gave it.
    pub json: std::sync::Arc<str>,
}

impl Groups {
    /// Parses `true` or a non-empty JSON list.
    pub fn from_json(json: &str) -> Option<Groups> {
        match serde_json::from_str::<Value>(json).ok()? {
            Value::Bool(true) => Some(Groups {
                all: true,
                list: Vec::new(),
                json: "true".into(),
            }),
            Value::Array(list) if !list.is_empty() => Some(Groups {
                json: Value::Array(list.clone()).to_string().into(),
                all: false,
                list,
            }),
            _ => None,
        }
    }

    /// Strict-equality intersection of two lists; objects and arrays never match, as in JS.
    pub fn intersects(&self, other: &Groups) -> bool {
        self.list
            .iter()
            .any(|a| !a.is_object() && !a.is_array() && other.list.iter().any(|b| a == b))
    }
}

/// What a connection gets once authenticated.
pub(crate) struct Authed {
    pub channel: String,
    pub channel_json: std::sync::Arc<str>,
    pub groups: Groups,
    pub cipher: Seal,
}

/// Why a frame could not be queued for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendFail {
    /// The connection is gone.
    Closed,
    /// Its outbound queue is over the limit; it is being disconnected.
    Slow,
}

/// One TCP connection.
pub(crate) struct Conn {
    pub id: String,
    pub ip: String,
    pub out: Arc<Outbound>,
    stage: Mutex<Vec<u8>>,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub kill: CancellationToken,
    pub slow: AtomicBool,
    pub authed: OnceLock<Authed>,
    owed: Mutex<HashMap<String, Owed>>,
    /// Frames this connection sends to channels on other servers, in order (cluster only).
    pub forwarder: OnceLock<tokio::sync::mpsc::UnboundedSender<super::cluster::Outgoing>>,
    /// Bytes sent to other servers and not answered yet; reading pauses while it is high.
    pub forward_backlog: std::sync::atomic::AtomicUsize,
}

/// A request routed to a connection and not answered yet.
pub(crate) struct Owed {
    pub requester: Weak<Conn>,
    pub id_json: String,
    pub encrypted: String,
    pub deadline: Instant,
}

/// Most unanswered requests remembered per connection; beyond it new ones are not tracked (they
/// still time out on the requester's side).
const MAX_OWED: usize = 65_536;

impl Conn {
    pub fn new(id: String, ip: String, out: Arc<Outbound>, kill: CancellationToken) -> Conn {
        Conn {
            id,
            ip,
            out,
            stage: Mutex::new(Vec::new()),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            kill,
            slow: AtomicBool::new(false),
            authed: OnceLock::new(),
            owed: Mutex::new(HashMap::new()),
            forwarder: OnceLock::new(),
            forward_backlog: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Records that this connection owes an answer to request `id_json` from `requester`.
    pub fn owe(&self, id_json: &str, requester: &Arc<Conn>, encrypted: &str, ttl: Duration) {
        let now = Instant::now();
        let mut owed = super::lock(&self.owed);
        if owed.len() >= 1024 && owed.len().is_multiple_of(256) {
            owed.retain(|_, o| o.deadline > now);
        }
        if owed.len() >= MAX_OWED {
            return;
        }
        owed.insert(
            id_json.to_string(),
            Owed {
                requester: Arc::downgrade(requester),
                id_json: id_json.to_string(),
                encrypted: encrypted.to_string(),
                deadline: now + ttl,
            },
        );
    }

    /// An update arrived: the request lives on.
    pub fn extend(&self, id_json: &str, ttl: Duration) {
        if let Some(o) = super::lock(&self.owed).get_mut(id_json) {
            o.deadline = o.deadline.max(Instant::now() + ttl);
        }
    }

    /// A terminal reply arrived.
    pub fn settle(&self, id_json: &str) {
        super::lock(&self.owed).remove(id_json);
    }

    /// Every request still owed and not expired.
    pub fn take_owed(&self) -> Vec<Owed> {
        let now = Instant::now();
        let mut owed = super::lock(&self.owed);
        owed.drain()
            .map(|(_, o)| o)
            .filter(|o| o.deadline > now)
            .collect()
    }

    /// Adds a frame to this connection's staging buffer: frames routed while their senders
    /// still have complete lines to read go out together, one write per read chunk instead of
    /// one per frame. Returns true when the buffer was empty, so the caller flushes it later.
    pub fn stage(&self, frame: &[u8], max: usize) -> Result<bool, SendFail> {
        let mut stage = super::lock(&self.stage);
        if self.too_slow(stage.len(), frame.len(), max) {
            return Err(SendFail::Slow);
        }
        if self.kill.is_cancelled() {
            return Err(SendFail::Closed);
        }
        let first = stage.is_empty();
        if stage.capacity() == 0 {
            // A buffer this connection already wrote: its pages are in place. An idle
            // connection holds none (flush_stage leaves the stage empty).
            *stage = self.out.take_spare();
        }
        stage.extend_from_slice(frame);
        Ok(first)
    }

    /// Whether `n` more bytes would put more than `max` in front of a peer that already has
    /// bytes waiting (queued plus `staged`); if so it is marked slow and disconnected. A single
    /// frame larger than `max` still goes to a peer that keeps up.
    fn too_slow(&self, staged: usize, n: usize, max: usize) -> bool {
        let waiting = self.out.queued() + staged;
        if waiting > 0 && waiting + n > max {
            self.slow.store(true, Ordering::Relaxed);
            self.kill.cancel();
            return true;
        }
        false
    }

    /// Writes what was staged.
    pub fn flush_stage(&self) {
        let staged = std::mem::take(&mut *super::lock(&self.stage));
        if !staged.is_empty() {
            // A connection that went away meanwhile answers its owed requests on its own.
            let _ = self.out.push(Bytes::from(staged));
        }
    }

    /// Writes or queues bytes for this connection. A queue already holding more than `max`
    /// bytes means the peer is not reading: it is marked slow and disconnected rather than let
    /// memory grow.
    pub fn send(&self, bytes: Bytes, max: usize) -> Result<(), SendFail> {
        if self.too_slow(0, bytes.len(), max) {
            return Err(SendFail::Slow);
        }
        self.out.push(bytes).map_err(|_| SendFail::Closed)
    }
}

/// Every connection of one server.
#[derive(Default)]
pub(crate) struct Registry {
    conns: HashMap<String, Arc<Conn>>,
    channels: HashMap<String, Arc<Conn>>,
}

impl Registry {
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn insert(&mut self, conn: Arc<Conn>) {
        self.conns.insert(conn.id.clone(), conn);
    }

    /// Removes a connection and the channel it holds.
    pub fn remove(&mut self, conn: &Conn) {
        self.conns.remove(&conn.id);
        if let Some(a) = conn.authed.get() {
            if self
                .channels
                .get(&a.channel)
                .is_some_and(|c| c.id == conn.id)
            {
                self.channels.remove(&a.channel);
            }
        }
    }

    /// Gives `channel` to `conn` unless another connection holds it (`auth_channel`).
    pub fn claim(&mut self, conn: &Arc<Conn>, channel: &str) -> bool {
        if self.channels.contains_key(channel) || !self.conns.contains_key(&conn.id) {
            return false;
        }
        self.channels.insert(channel.to_string(), conn.clone());
        true
    }

    /// The authenticated connection on `channel`.
    pub fn lookup(&self, channel: &str) -> Option<Arc<Conn>> {
        self.channels.get(channel).cloned()
    }

    /// (connections, authenticated, bytes queued in total, largest queue).
    pub fn gauges(&self) -> (u64, u64, u64, u64) {
        let (mut total, mut max) = (0u64, 0u64);
        for c in self.conns.values() {
            let q = c.out.queued() as u64;
            total += q;
            max = max.max(q);
        }
        (
            self.conns.len() as u64,
            self.channels.len() as u64,
            total,
            max,
        )
    }

    /// Every connection, for `getClients()`.
    pub fn clients_json(&self) -> String {
        let mut out = String::from("[");
        for (i, c) in self.conns.values().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let (channel, groups) = match c.authed.get() {
                Some(a) => (&*a.channel_json, &*a.groups.json),
                None => ("null", "[]"),
            };
            let stats = format!(
                "{{\"sent\":{},\"received\":{}}}",
                c.sent.load(Ordering::Relaxed),
                c.received.load(Ordering::Relaxed)
            );
            out.push_str(
                &Payload::new()
                    .str("id", &c.id)
                    .str("ip", &c.ip)
                    .raw("channel", channel)
                    .raw("groups", groups)
                    .raw("stats", &stats)
                    .done(),
            );
        }
        out.push(']');
        out
    }
}
