//! Servers joined over NATS. Every channel held by a local client is served on the subject
//! `ricochet.ch.<hex(channel)>`: a probe (`?`) there means "is this channel taken?" (cluster-wide
//! uniqueness), anything else is a frame routed from another server, answered with `ok` or the
//! error code the ingress server must reply with. A frame for a channel no local client holds is
//! sent there as a NATS request; *no responders* means no server holds it (then the unrouted
//! callback or `message_norecipient`). Bodies cross NATS decrypted (the ingress server decrypts
//! with the sender's key, the egress server encrypts with the recipient's), so each client's key
//! stays on its own server. When a server dies or loses NATS, its subscriptions vanish with its
//! NATS connection, which frees its channels.

use super::events::Payload;
use super::registry::{Conn, Groups};
use super::router::{deliver_remote, Deferred};
use super::Shared;
use crate::codes::{self, Code};
use crate::wire::message::Envelope;
use async_nats::StatusCode;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use std::time::Instant;
use tokio::sync::mpsc;

/// How long a login waits for NATS to confirm its channel's subscription (a busy NATS server
/// delays the login rather than leave the client unreachable across the cluster).
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a probe for a channel waits for its holder.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Unanswered bytes a connection may have in flight to other servers before its reading pauses.
pub const MAX_FORWARD_BACKLOG: usize = 4 * 1024 * 1024;
/// How long a forwarded frame waits for the egress server's answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// NATS keepalive: a server that vanished without closing its socket loses its channels after
/// about two missed pings.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);

/// The subject serving `channel`.
pub fn subject(channel: &str) -> String {
    format!("ricochet.ch.{}", hex::encode(channel.as_bytes()))
}

/// A server's NATS connection.
pub(crate) struct Cluster {
    nats: async_nats::Client,
}

/// What forwarding a frame to the cluster gave.
pub(crate) enum Forwarded {
    /// Delivered by another server.
    Delivered,
    /// The egress server refused it with this code.
    Refused(Code),
    /// No server holds the channel.
    NoOne,
}

impl Cluster {
    /// Connects (retrying until NATS answers) and reports NATS state as `clusterConnected` /
    /// `clusterDisconnected` events.
    pub async fn connect(shared: Weak<Shared>, url: &str, name: &str) -> Result<Cluster, String> {
        let events = shared.clone();
        let nats = async_nats::ConnectOptions::new()
            .name(name)
            .ping_interval(PING_INTERVAL)
            .request_timeout(Some(FORWARD_TIMEOUT))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |ev| {
                let events = events.clone();
                async move {
                    let Some(shared) = events.upgrade() else {
                        return;
                    };
                    match ev {
                        async_nats::Event::Connected => {
                            shared.emit("clusterConnected", Payload::new().done())
                        }
                        async_nats::Event::Disconnected => {
                            shared.emit("clusterDisconnected", Payload::new().done())
                        }
                        _ => {}
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| e.to_string())?;
        // Give the first connection a moment, so a server that reports `listening` is already
        // in the cluster when NATS is up; when it is not, the server starts anyway and joins
        // once NATS answers.
        for _ in 0..40 {
            if nats.connection_state() == async_nats::connection::State::Connected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Cluster { nats })
    }

    /// Whether another server holds `channel`. When NATS is unreachable the answer is "no": local
    /// service goes on during an outage.
    pub async fn held_elsewhere(&self, channel: &str) -> bool {
        let probe = self
            .nats
            .request(subject(channel), Bytes::from_static(b"?"));
        matches!(tokio::time::timeout(PROBE_TIMEOUT, probe).await, Ok(Ok(_)))
    }

    /// Subscribes to `channel`'s subject and waits until NATS has it, so frames other servers
    /// route right after the login reply are not missed.
    ///
    /// async-nats' `flush()` only empties the socket buffer; NATS itself may not have processed
    /// the subscription yet, and a frame from another server then gets "no responders"
    /// (`message_norecipient`). A request on this connection to a subject nobody serves comes
    /// back (as "no responders") only after NATS has handled everything sent before it.
    pub async fn subscribe(&self, channel: &str) -> Option<async_nats::Subscriber> {
        let sub = self.nats.subscribe(subject(channel)).await.ok()?;
        let round_trip = self.nats.request(self.nats.new_inbox(), Bytes::new());
        let _ = tokio::time::timeout(SUBSCRIBE_TIMEOUT, round_trip).await;
        Some(sub)
    }

    /// Serves a channel for the cluster while `conn` holds it.
    pub async fn serve(
        &self,
        shared: Arc<Shared>,
        conn: Arc<Conn>,
        mut sub: async_nats::Subscriber,
    ) {
        loop {
            let msg = tokio::select! {
                _ = conn.kill.cancelled() => break,
                m = sub.next() => match m { Some(m) => m, None => break },
            };
            let Some(reply) = msg.reply else { continue };
            let answer: &[u8] = if msg.payload.as_ref() == b"?" {
                b"1"
            } else {
                match deliver_remote(&shared, &conn, &msg.payload) {
                    Ok(()) => b"ok",
                    Err(code) => code.name.as_bytes(),
                }
            };
            let _ = self
                .nats
                .publish(reply, Bytes::copy_from_slice(answer))
                .await;
        }
    }

    /// Starts the per-connection forwarder. Frames are published one after the other (so a
    /// sender's frames cross the cluster in order) with a reply subject in this connection's
    /// inbox; answers (`ok`, an error code, or NATS's *no responders* status) are matched by
    /// sequence number, and frames unanswered after the forward timeout count as failed.
    pub fn forwarder(
        self: &Arc<Self>,
        shared: Arc<Shared>,
        sender: Arc<Conn>,
    ) -> mpsc::UnboundedSender<Outgoing> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
        let nats = self.nats.clone();
        let tracker = shared.tracker.clone();
        tracker.spawn(async move {
            let inbox = nats.new_inbox();
            let Ok(mut replies) = nats.subscribe(format!("{inbox}.*")).await else {
                return;
            };
            let mut pending: BTreeMap<u64, (Instant, Outgoing)> = BTreeMap::new();
            let mut seq: u64 = 0;
            let mut sweep = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = sender.kill.cancelled() => break,
                    next = rx.recv() => {
                        let Some(out) = next else { break };
                        seq += 1;
                        let reply = format!("{inbox}.{seq}");
                        let published = nats
                            .publish_with_reply(subject(&out.to), reply, out.payload.clone())
                            .await;
                        if published.is_err() {
                            sender.forward_backlog.fetch_sub(out.payload.len(), Ordering::Relaxed);
                            settle(&shared, &sender, Forwarded::Refused(codes::CLIENT_SEND), out).await;
                            continue;
                        }
                        pending.insert(seq, (Instant::now(), out));
                    }
                    Some(msg) = replies.next() => {
                        let n = msg.subject.rsplit('.').next().and_then(|t| t.parse::<u64>().ok());
                        let Some((_, out)) = n.and_then(|n| pending.remove(&n)) else { continue };
                        sender.forward_backlog.fetch_sub(out.payload.len(), Ordering::Relaxed);
                        let res = if msg.status == Some(StatusCode::NO_RESPONDERS) {
                            Forwarded::NoOne
                        } else if msg.payload.as_ref() == b"ok" {
                            Forwarded::Delivered
                        } else {
                            Forwarded::Refused(
                                codes::lookup(&String::from_utf8_lossy(&msg.payload))
                                    .unwrap_or(codes::MESSAGE_NORECIPIENT),
                            )
                        };
                        settle(&shared, &sender, res, out).await;
                    }
                    _ = sweep.tick() => {
                        let expired: Vec<u64> = pending
                            .iter()
                            .filter(|(_, (at, _))| at.elapsed() > FORWARD_TIMEOUT)
                            .map(|(k, _)| *k)
                            .collect();
                        for k in expired {
                            if let Some((_, out)) = pending.remove(&k) {
                                sender.forward_backlog.fetch_sub(out.payload.len(), Ordering::Relaxed);
                                settle(&shared, &sender, Forwarded::Refused(codes::CLIENT_SEND), out).await;
                            }
                        }
                    }
                }
            }
        });
        tx
    }
}

/// A frame on its way to another server.
pub(crate) struct Outgoing {
    pub to: String,
    pub payload: Bytes,
    /// For the report if it is refused or nobody holds the channel.
    pub later: Deferred,
}

async fn settle(shared: &Arc<Shared>, sender: &Arc<Conn>, res: Forwarded, out: Outgoing) {
    let Some(me) = sender.authed.get() else {
        return;
    };
    match res {
        Forwarded::Delivered => {
            sender
                .sent
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Forwarded::Refused(code) => out.later.answer(shared, sender, me, code),
        Forwarded::NoOne => {
            super::router::unrouted_or_norecipient(shared, sender, me, out.later).await
        }
    }
}

/// The payload of a forwarded frame: the sender's groups, LF, the frame with its body in clear
/// (`plain` when it was encrypted), encoded straight into one buffer.
pub(crate) fn payload(groups: &Groups, env: &Envelope<'_>, plain: Option<&str>) -> Bytes {
    let mut p =
        Vec::with_capacity(groups.json.len() + 256 + env.body().map_or(0, |b| b.get().len()));
    p.extend_from_slice(groups.json.as_bytes());
    p.push(b'\n');
    env.encode_into(&mut p, plain.map(str::as_bytes));
    // The frame goes without its LF: the egress server adds its own when it writes.
    if p.last() == Some(&b'\n') {
        p.pop();
    }
    Bytes::from(p)
}
